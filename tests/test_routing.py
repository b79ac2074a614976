from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from wsgi2asgi.routing import Host, Mount, ProtocolRouter, Router, not_found, route_path
from wsgi2asgi.typing import Receive, Scope, Send


def echo_app(label: str) -> Any:
    """A raw ASGI app answering with its label and the scope's path fields as JSON."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = json.dumps(
            {
                "app": label,
                "path": scope["path"],
                "root_path": scope.get("root_path", ""),
                "raw_path": scope.get("raw_path", b"").decode("latin-1"),
                "route_path": route_path(scope),
            }
        ).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


async def get(app: Any, url: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(url, **kwargs)


@pytest.mark.parametrize(
    ("url", "label", "root_path", "rest"),
    [
        ("/flask", "flask", "/flask", ""),
        ("/flask/", "flask", "/flask", "/"),
        ("/flask/login", "flask", "/flask", "/login"),
        ("/flaskfoo", "root", "", "/flaskfoo"),
        ("/api/v2/items", "api-v2", "/api/v2", "/items"),
        ("/api/v1", "api", "/api", "/v1"),
        ("/", "root", "", "/"),
    ],
)
async def test_router_mount_longest_prefix_segment_aware(
    url: str, label: str, root_path: str, rest: str
) -> None:
    app = Router(
        [
            Mount("", echo_app("root")),
            Mount("/api", echo_app("api")),
            Mount("/flask", echo_app("flask")),
            Mount("/api/v2/", echo_app("api-v2")),
        ]
    )
    data = (await get(app, url)).json()
    assert data["app"] == label
    assert data["root_path"] == root_path
    # ASGI www.rst: path includes root_path; the mount never rewrites it.
    assert data["path"] == url
    assert data["route_path"] == rest


async def test_router_nested_routers_accumulate_root_path() -> None:
    inner = Router([Mount("/b", echo_app("leaf"))])
    app = Router([Mount("/a", Router([Mount("/x", inner)]))])
    data = (await get(app, "/a/x/b/c%2Fd")).json()
    assert data["app"] == "leaf"
    assert data["root_path"] == "/a/x/b"
    assert data["path"] == "/a/x/b/c/d"
    assert data["raw_path"] == "/a/x/b/c%2Fd"


async def test_router_non_ascii_path_survives() -> None:
    app = Router([Mount("/café", echo_app("cafe"))])
    data = (await get(app, "/caf%C3%A9/men%C3%BC")).json()
    assert data["app"] == "cafe"
    assert data["root_path"] == "/café"
    assert data["route_path"] == "/menü"


async def test_router_no_match_is_plain_404() -> None:
    response = await get(Router([Mount("/a", echo_app("a"))]), "/b")
    assert response.status_code == 404
    assert response.text == "Not Found"
    assert response.headers["content-type"].startswith("text/plain")


async def test_router_default_app_gets_unmatched() -> None:
    app = Router([Mount("/a", echo_app("a"))], default=echo_app("legacy"))
    data = (await get(app, "/b/c")).json()
    assert data == {
        "app": "legacy",
        "path": "/b/c",
        "root_path": "",
        "raw_path": "/b/c",
        "route_path": "/b/c",
    }


def test_mount_rejects_relative_prefix() -> None:
    with pytest.raises(ValueError, match="start with '/'"):
        Mount("api", echo_app("x"))


@pytest.mark.parametrize(
    ("host", "label"),
    [
        ("example.com", "exact"),
        ("EXAMPLE.com:8000", "exact"),
        ("api.example.com", "wild"),
        ("a.b.example.com", "wild"),
        ("admin.test:9000", "port"),
        ("admin.test:9001", "fallthrough"),
        ("other.org", "fallthrough"),
        ("[::1]:9000", "v6"),
    ],
)
async def test_host_patterns(host: str, label: str) -> None:
    app = Router(
        [
            Host("example.com", echo_app("exact")),
            Host("*.example.com", echo_app("wild")),
            Host("admin.test:9000", echo_app("port")),
            Host("[::1]", echo_app("v6")),
            Mount("", echo_app("fallthrough")),
        ]
    )
    data = (await get(app, "/", headers={"host": host})).json()
    assert data["app"] == label


def test_host_rejects_bad_port() -> None:
    with pytest.raises(ValueError, match="port"):
        Host("example.com:http", echo_app("x"))


async def test_starlette_app_mounted_builds_urls_under_prefix() -> None:
    async def home(request: Request) -> JSONResponse:
        return JSONResponse({"url": str(request.url_for("item", id=3)), "path": request.url.path})

    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"item {request.path_params['id']}")

    async def go(request: Request) -> RedirectResponse:
        return RedirectResponse(request.url_for("home"))

    api = Starlette(
        routes=[
            Route("/", home, name="home"),
            Route("/items/{id:int}", item, name="item"),
            Route("/go", go),
        ]
    )
    app = Router([Mount("/api", api), Mount("", echo_app("site"))])
    assert (await get(app, "/api/")).json() == {
        "url": "http://testserver/api/items/3",
        "path": "/api/",
    }
    assert (await get(app, "/api/items/3")).text == "item 3"
    redirect = await get(app, "/api/go")
    assert redirect.status_code == 307
    assert redirect.headers["location"] == "http://testserver/api/"


async def test_protocol_router_dispatches_by_type() -> None:
    seen: list[str] = []

    async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])
        await send({"type": "websocket.close", "code": 1000})

    app = ProtocolRouter({"http": echo_app("http"), "websocket": ws_app})
    assert (await get(app, "/x")).json()["app"] == "http"
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await app({"type": "websocket", "path": "/", "headers": []}, receive, send)
    assert seen == ["websocket"]
    assert sent == [{"type": "websocket.close", "code": 1000}]


async def test_router_websocket_no_match_closes() -> None:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/nowhere", "root_path": "", "headers": []}
    await Router([Mount("/a", echo_app("a"))])(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1000}]


async def test_router_websocket_reaches_mounted_starlette() -> None:
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.url.path)
        await websocket.close()

    app = Router([Mount("/api", Starlette(routes=[WebSocketRoute("/ws", ws)]))])
    inbox = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
    sent: list[Any] = []

    async def receive() -> Any:
        return inbox.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/api/ws",
        "raw_path": b"/api/ws",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "scheme": "ws",
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == "/api/ws"


# -- issue #12: router, mounts, hosts ------------------------------------------------------------


async def test_router_old_style_scope_is_normalised_at_entry() -> None:
    # httpx's ASGITransport(root_path=...) sends the older convention (daphne, hypercorn
    # --root-path): path without root_path.
    async def item(request: Request) -> JSONResponse:
        return JSONResponse({"path": request.url.path, "url": str(request.url_for("item", id=3))})

    api = Starlette(routes=[Route("/items/{id}", item, name="item")])
    app = Router([Mount("/api", api), Mount("/raw", echo_app("raw"))])
    transport = httpx.ASGITransport(app=app, root_path="/site")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/api/items/3")
        raw = (await client.get("/raw/a%2Fb")).json()
    assert response.status_code == 200, response.text
    assert response.json() == {
        "path": "/site/api/items/3",
        "url": "http://testserver/site/api/items/3",
    }
    assert raw == {
        "app": "raw",
        "path": "/site/raw/a/b",
        "root_path": "/site/raw",
        "raw_path": "/site/raw/a%2Fb",
        "route_path": "/a/b",
    }


async def test_router_old_style_scope_reaches_flask_under_the_prefix() -> None:
    from flask import Flask, request

    from adapters.flask import flask_app

    flask = Flask("old_style")

    @flask.get("/hello")
    def hello() -> dict[str, str]:
        return {"script_name": request.script_root, "path": request.path}

    app = Router([Mount("/api", flask_app(flask))])
    transport = httpx.ASGITransport(app=app, root_path="/site")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/api/hello")
    assert response.status_code == 200, response.text
    assert response.json() == {"script_name": "/site/api", "path": "/hello"}


@pytest.mark.parametrize(
    ("root_path", "path", "label", "child_root"),
    [
        ("/site/", "/site/api/x", "api", "/site/api"),
        ("/", "/api/x", "api", "/api"),
        ("/site/", "/api/x", "api", "/site/api"),  # trailing slash and old-style together
    ],
)
async def test_router_root_path_trailing_slash_is_stripped(
    root_path: str, path: str, label: str, child_root: str
) -> None:
    app = Router([Mount("/api", echo_app("api")), Mount("", echo_app("root"))])
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "root_path": root_path}
    scope |= {"raw_path": path.encode(), "query_string": b"", "headers": []}
    await app(scope, receive, send)
    data = json.loads(sent[1]["body"])
    assert (data["app"], data["root_path"], data["route_path"]) == (label, child_root, "/x")
    assert data["path"] == child_root + "/x"
    assert data["raw_path"] == child_root + "/x"


async def call_raw(app: Any, scope: dict[str, Any]) -> list[Any]:
    """Call ``app`` with ``scope`` and return the messages it sent."""
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        if scope["type"] == "websocket":
            return {"type": "websocket.connect"}
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    base = {"path": "/", "raw_path": b"/", "root_path": "", "query_string": b"", "headers": []}
    await app(base | scope, receive, send)
    return sent


async def test_router_404_on_head_has_no_body() -> None:
    app = Router([Mount("/a", echo_app("a"))])
    sent = await call_raw(app, {"type": "http", "method": "HEAD", "path": "/b"})
    assert sent[0]["status"] == 404
    assert (b"content-length", b"9") in sent[0]["headers"]
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b""
    get = await call_raw(app, {"type": "http", "method": "GET", "path": "/b"})
    assert get[1]["body"] == b"Not Found"


@pytest.mark.parametrize(
    ("host", "label"),
    [
        ("admin.example.test.", "admin"),
        ("ADMIN.example.test.:8000", "admin"),
        ("api.example.test.", "wild"),
        ("admin.example.test..", "fallthrough"),  # one dot is the FQDN root; two is no name
    ],
)
async def test_host_trailing_dot_is_the_same_name(host: str, label: str) -> None:
    app = Router(
        [
            Host("admin.example.test", echo_app("admin")),
            Host("*.example.test.", echo_app("wild")),
            Mount("", echo_app("fallthrough")),
        ]
    )
    data = (await get(app, "/", headers={"host": host})).json()
    assert data["app"] == label


@pytest.mark.parametrize(
    "routes",
    [
        [Mount("/a", echo_app("1")), Mount("/a", echo_app("2"))],
        [Mount("/a/", echo_app("1")), Mount("/a", echo_app("2"))],
        [Mount("", echo_app("1")), Mount("/", echo_app("2"))],
        [Host("a.test", echo_app("1")), Host("A.test.", echo_app("2"))],
    ],
)
def test_router_rejects_a_route_that_could_never_be_reached(routes: list[Any]) -> None:
    with pytest.raises(ValueError, match="never"):
        Router(routes)


async def test_router_raises_on_unknown_scope_type() -> None:
    called: list[str] = []

    async def anything(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(scope["type"])

    with pytest.raises(ValueError, match="'foo'"):
        await call_raw(Router([Mount("", anything)]), {"type": "foo"})
    with pytest.raises(ValueError, match="'foo'"):
        await call_raw(ProtocolRouter({"http": anything}), {"type": "foo"})
    assert called == []


FOREIGN_KEYS = ("router", "app_root_path", "route", "endpoint", "path_remaining")


async def test_mount_strips_other_routers_private_keys() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await not_found(scope, receive, send)

    routed = Router([Mount("/m", app), Host("h.test", app)], default=app)
    foreign = {key: object() for key in FOREIGN_KEYS}
    foreign |= {"path_params": {"x": 1}, "url_route": {"kwargs": {}}}
    for extra in ({"path": "/m/x"}, {"headers": [(b"host", b"h.test")]}, {"path": "/other"}):
        scope = {"type": "http", "method": "GET", **foreign, **extra}
        await call_raw(routed, scope)
    assert len(seen) == 3
    for scope in seen:
        assert not set(FOREIGN_KEYS) & set(scope)
        # Data, not routing state: left for the app.
        assert scope["path_params"] == {"x": 1} and "url_route" in scope


async def test_starlette_below_a_plain_mount_below_starlette_reverses_its_own_names() -> None:
    from starlette.routing import Mount as StarletteMount

    async def inner_item(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.url_for("item", id=3)))

    async def outer_item(request: Request) -> PlainTextResponse:
        return PlainTextResponse("outer")

    inner = Starlette(routes=[Route("/items/{id}", inner_item, name="item")])
    outer = Starlette(
        routes=[
            Route("/item/{id}", outer_item, name="item"),  # the same name, outside
            StarletteMount("/outer", app=Router([Mount("/inner", inner)])),
        ]
    )
    response = await get(outer, "/outer/inner/items/3")
    assert response.text == "http://testserver/outer/inner/items/3"
