from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import NoMatchFound, Route

from wsgi2asgi.fallback import Fallback
from wsgi2asgi.lifespan import LifespanDriver
from wsgi2asgi.typing import Receive, Scope, Send


async def new_home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("new home", headers={"x-served-by": "new"})


async def new_echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(b"new:" + await request.body())


async def legacy_any(request: Request) -> Response:
    body = await request.body()
    return PlainTextResponse(
        f"legacy {request.method} {request.url.path} {body.decode()}",
        headers={"x-served-by": "legacy"},
    )


new_app = Starlette(routes=[Route("/", new_home), Route("/moved", new_echo, methods=["POST"])])
legacy_app = Starlette(
    routes=[Route("/{path:path}", legacy_any, methods=["GET", "POST", "PUT", "DELETE"])]
)


async def call(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(method, url, **kwargs)


async def test_fallback_serves_new_routes_from_primary() -> None:
    response = await call(Fallback(new_app, legacy_app), "GET", "/")
    assert response.text == "new home"
    assert response.headers["x-served-by"] == "new"


async def test_fallback_serves_unmoved_routes_from_legacy_with_body_replayed() -> None:
    app = Fallback(new_app, legacy_app)
    response = await call(app, "POST", "/not-moved-yet", content=b"payload")
    assert response.status_code == 200
    assert response.text == "legacy POST /not-moved-yet payload"
    # Nothing of the discarded 404 leaked: one set of headers, the legacy one.
    assert response.headers.get_list("x-served-by") == ["legacy"]
    assert "content-length" in response.headers
    assert int(response.headers["content-length"]) == len(response.content)


async def test_fallback_moved_route_gets_body_once() -> None:
    response = await call(Fallback(new_app, legacy_app), "POST", "/moved", content=b"abc")
    assert response.text == "new:abc"


async def test_fallback_configured_statuses() -> None:
    # Starlette answers 405 for a known path with the wrong method.
    only_404 = await call(Fallback(new_app, legacy_app), "DELETE", "/moved")
    assert only_404.status_code == 405
    both = await call(Fallback(new_app, legacy_app, statuses={404, 405}), "DELETE", "/moved")
    assert both.text == "legacy DELETE /moved "


async def test_fallback_large_body_cannot_replay_sends_primary_answer() -> None:
    app = Fallback(new_app, legacy_app, max_replay_bytes=10)
    response = await call(app, "POST", "/elsewhere", content=b"x" * 100)
    # Starlette's 404 does not read the body, so it stays replayable ...
    assert response.text.startswith("legacy POST /elsewhere")

    async def reads_then_404(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"gone"})

    # ... but a primary that read more than the replay budget keeps its answer.
    app = Fallback(reads_then_404, legacy_app, max_replay_bytes=10)
    response = await call(app, "POST", "/elsewhere", content=b"x" * 100)
    assert response.status_code == 404
    assert response.text == "gone"


async def test_fallback_primary_error_is_not_hidden() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise ZeroDivisionError("bug in the new code")

    with pytest.raises(ZeroDivisionError):
        await call(Fallback(broken, legacy_app), "GET", "/")


async def test_fallback_websocket_closed_before_accept_falls_back() -> None:
    async def refuses(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.close", "code": 1000})

    async def accepts(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    inbox = [{"type": "websocket.connect"}]
    sent: list[Any] = []

    async def receive() -> Any:
        return inbox.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    await Fallback(refuses, accepts)({"type": "websocket", "path": "/ws"}, receive, send)
    assert sent == [{"type": "websocket.accept"}, {"type": "websocket.close", "code": 1000}]


async def test_fallback_lifespan_reaches_both() -> None:
    log: list[str] = []

    def recorder(name: str) -> Any:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            log.append(f"start {name}")
            await send({"type": "lifespan.startup.complete"})
            await receive()
            log.append(f"stop {name}")
            await send({"type": "lifespan.shutdown.complete"})

        return app

    driver = LifespanDriver(Fallback(recorder("new"), recorder("legacy")), required=True)
    await driver.startup()
    await driver.shutdown()
    assert log == ["start new", "start legacy", "stop legacy", "stop new"]


def test_url_path_for_tries_primary_then_fallback() -> None:
    def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse("")

    new = Starlette(routes=[Route("/new", endpoint, name="new")])
    old = Starlette(routes=[Route("/old", endpoint, name="old")])
    app = Fallback(new, old)
    assert str(app.url_path_for("new")) == "/new"
    assert str(app.url_path_for("old")) == "/old"
    with pytest.raises(NoMatchFound):
        app.url_path_for("neither")


def pool_app(label: str, paths: list[str]) -> Starlette:
    """A Starlette app whose lifespan stores ``pool`` and whose routes answer with it."""
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
        yield {"pool": label}

    async def pool(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.state.pool)

    return Starlette(routes=[Route(p, pool) for p in paths], lifespan=lifespan)


def test_fallback_each_app_gets_its_own_lifespan_state() -> None:
    from tests.servers import start_server
    from wsgi2asgi.routing import Mount, Router

    new = pool_app("new", ["/moved"])
    legacy = pool_app("legacy", ["/moved", "/old"])
    app = Router([Mount("/site", Fallback(new, legacy)), Mount("/direct", legacy)])
    running = start_server(app, lifespan="on")
    try:
        with httpx.Client(base_url=running.url) as client:
            assert client.get("/site/moved").text == "new"
            assert client.get("/site/old").text == "legacy"
            assert client.get("/direct/old").text == "legacy"
    finally:
        assert running.stop() == 0


async def test_fallback_raises_on_unknown_scope_type() -> None:
    called: list[str] = []

    async def anything(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(scope["type"])

    async def receive() -> Any:
        raise AssertionError("not called")

    async def send(message: Any) -> None:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="'foo'"):
        await Fallback(anything, anything)({"type": "foo"}, receive, send)
    assert called == []
