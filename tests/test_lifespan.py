from __future__ import annotations

import pytest

from wsgi2asgi.lifespan import LifespanDriver, LifespanFailed
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
