"""``adapters.starlette``: a Starlette app mounted by our router, alone or inside Starlette."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount as StarletteMount
from starlette.routing import NoMatchFound, Route, WebSocketRoute
from starlette.websockets import WebSocket

from adapters.starlette import StarletteApp, starlette_app
from wsgi2asgi.exceptions import WebSocketClosed
from wsgi2asgi.routing import Mount, Router
from wsgi2asgi.testing import AsyncTestClient


def make_api(events: list[str] | None = None) -> Starlette:
    async def item(request: Request) -> Response:
        return JSONResponse(
            {
                "url": str(request.url_for("item", id=request.path_params["id"])),
                "base": str(request.base_url),
                "root_path": request.scope["root_path"],
                "path": request.url.path,
            }
        )

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(f"{websocket.scope['root_path']} {text}")
        await websocket.close()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if events is not None:
            events.append("startup")
        yield
        if events is not None:
            events.append("shutdown")

    return Starlette(
        routes=[Route("/items/{id}", item, name="item"), WebSocketRoute("/ws", echo)],
        lifespan=lifespan,
    )


async def get_json(app: Any, path: str) -> Any:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def test_starlette_app_under_router_builds_urls_with_prefix() -> None:
    app = Router([Mount("/api", starlette_app(make_api()))])
    body = await get_json(app, "/api/items/7")
    assert body == {
        "url": "http://testserver/api/items/7",
        "base": "http://testserver/api/",
        "root_path": "/api",
        "path": "/api/items/7",
    }


@pytest.mark.parametrize("wrap", [starlette_app, lambda app: app], ids=["adapter", "bare"])
async def test_starlette_inside_router_inside_starlette_builds_full_urls(wrap: Any) -> None:
    inner = Router([Mount("/inner", wrap(make_api()))])
    outer = Starlette(routes=[StarletteMount("/outer", app=inner)])
    body = await get_json(outer, "/outer/inner/items/3")
    assert body["url"] == "http://testserver/outer/inner/items/3"
    assert body["root_path"] == "/outer/inner"
    assert body["path"] == "/outer/inner/items/3"


async def test_outer_starlette_reverses_names_through_our_router() -> None:
    async def home(request: Request) -> Response:
        return PlainTextResponse(str(request.url_for("item", id=5)))

    inner = Router([Mount("/inner", starlette_app(make_api()))])
    outer = Starlette(routes=[StarletteMount("/outer", app=inner), Route("/", home)])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/")
    assert response.text == "http://testserver/outer/inner/items/5"


def test_unknown_name_is_starlettes_no_match_found() -> None:
    router = Router([Mount("/a", starlette_app(make_api())), Mount("/b", lambda *a: None)])
    with pytest.raises(NoMatchFound):
        router.url_path_for("missing")
    assert str(router.url_path_for("item", id=1)) == "/a/items/1"


async def test_starlette_lifespan_and_websocket_through_router() -> None:
    events: list[str] = []
    app = Router([Mount("/api", starlette_app(make_api(events)))])
    async with AsyncTestClient(app) as client:
        assert events == ["startup"]
        async with client.websocket_connect("/api/ws") as ws:
            await ws.send_text("hi")
            assert await ws.receive_text() == "/api hi"
            with pytest.raises(WebSocketClosed) as closed:
                await ws.receive_text()
            assert closed.value.code == 1000
    assert events == ["startup", "shutdown"]


async def test_adapter_leaves_lifespan_scope_untouched() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)

    async def receive() -> dict[str, Any]:
        raise AssertionError("not called")

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("not called")

    scope = {"type": "lifespan", "router": object()}
    await StarletteApp(app)(scope, receive, send)
    assert seen == [scope]
