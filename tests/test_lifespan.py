from __future__ import annotations

import logging

import pytest
from starlette.responses import Response

from wsgi2asgi.exceptions import LifespanFailed
from wsgi2asgi.lifespan import LifespanDriver
from wsgi2asgi.typing import Receive, Scope, Send


async def http_only(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        raise ValueError("unsupported scope")


async def returns_at_once(scope: Scope, receive: Receive, send: Send) -> None:
    return None


@pytest.mark.parametrize("app", [http_only, returns_at_once])
async def test_lifespan_driver_unsupported_app_is_skipped_in_auto(app: object) -> None:
    driver = LifespanDriver(app)  # type: ignore[arg-type]
    await driver.startup()
    assert driver.supported is False
    await driver.shutdown()  # nothing to do, and no error


async def test_lifespan_driver_unsupported_app_is_an_error_when_required() -> None:
    driver = LifespanDriver(http_only, name="/legacy", required=True)
    with pytest.raises(LifespanFailed, match="/legacy.*unsupported or crashed.*unsupported scope"):
        await driver.startup()
    await driver.aclose()


async def test_lifespan_driver_startup_failed_message() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    driver = LifespanDriver(app, name="site")
    with pytest.raises(LifespanFailed) as info:
        await driver.startup()
    assert info.value.name == "site"
    assert info.value.message == "no database"
    assert str(info.value) == "lifespan of site failed: no database"
    await driver.aclose()


async def test_lifespan_driver_app_crashing_in_shutdown_is_reported() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        raise RuntimeError("pool close failed")

    driver = LifespanDriver(app)
    await driver.startup()
    with pytest.raises(LifespanFailed, match="pool close failed"):
        await driver.shutdown()


async def test_lifespan_driver_state_is_given_to_app() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        scope["state"]["ready"] = 1
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    state: dict[str, object] = {}
    driver = LifespanDriver(app, state=state)
    await driver.startup()
    assert state == {"ready": 1}
    await driver.shutdown()


# -- #12.3: an app that ignores scope["type"] ----------------------------------------------------


async def test_lifespan_driver_app_answering_with_http_is_unsupported_in_auto(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A bare Starlette Response answers any scope, lifespan included, with http.response.start.
    driver = LifespanDriver(Response("hello"), name="/shop")
    with caplog.at_level(logging.DEBUG, logger="wsgi2asgi.lifespan"):
        await driver.startup()
        await driver.shutdown()  # nothing to do, and no error
    assert driver.supported is False
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "INFO",
            "ASGI 'lifespan' unsupported by /shop (it answered 'http.response.start'):"
            " serving it without lifespan",
        )
    ]


async def test_lifespan_driver_app_answering_with_http_is_an_error_when_required() -> None:
    driver = LifespanDriver(Response("hello"), name="/shop", required=True)
    with pytest.raises(LifespanFailed, match="/shop.*unsupported.*'http.response.start'"):
        await driver.startup()
    await driver.aclose()


# -- #12.4: an app that returns right after startup ----------------------------------------------


async def returns_after_startup(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "lifespan.startup.complete"})  # and returns: nothing to shut down


async def test_lifespan_driver_app_returning_after_startup_counts_as_shut_down() -> None:
    driver = LifespanDriver(returns_after_startup)
    await driver.startup()
    assert driver.supported is True
    await driver.shutdown()  # no LifespanFailed
