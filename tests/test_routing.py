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

from wsgi2asgi.lifespan import LifespanDriver, LifespanFailed
from wsgi2asgi.routing import Host, Mount, ProtocolRouter, Router, route_path
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


class Recorder:
    """A lifespan-speaking app that records its lifecycle into a shared log."""

    def __init__(self, name: str, log: list[str], fail: str | None = None) -> None:
        self.name, self.log, self.fail = name, log, fail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        if self.fail == "startup":
            await send({"type": "lifespan.startup.failed", "message": f"{self.name} broke"})
            return
        scope["state"][self.name] = True
        self.log.append(f"start {self.name}")
        await send({"type": "lifespan.startup.complete"})
        await receive()
        self.log.append(f"stop {self.name}")
        if self.fail == "shutdown":
            await send({"type": "lifespan.shutdown.failed", "message": f"{self.name} stuck"})
            return
        await send({"type": "lifespan.shutdown.complete"})


async def no_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        raise RuntimeError("I only speak http")


async def test_router_lifespan_reaches_every_app_in_order_and_back() -> None:
    log: list[str] = []
    inner = Router([Mount("/c", Recorder("c", log)), Mount("/d", no_lifespan)])
    app = Router(
        [Mount("/a", Recorder("a", log)), Mount("/b", inner), Mount("", Recorder("z", log))]
    )
    state: dict[str, Any] = {}
    driver = LifespanDriver(app, state=state, required=True)
    await driver.startup()
    # Startup in the listed order; state shared with every child.
    assert log == ["start a", "start c", "start z"]
    assert state == {"a": True, "c": True, "z": True}
    await driver.shutdown()
    assert log[3:] == ["stop z", "stop c", "stop a"]


async def test_router_lifespan_failure_names_the_mount_and_stops_the_started() -> None:
    log: list[str] = []
    app = Router(
        [
            Mount("/first", Recorder("first", log)),
            Mount("/broken", Recorder("broken", log, fail="startup")),
            Mount("", Recorder("never", log)),
        ]
    )
    driver = LifespanDriver(app, name="site", required=True)
    with pytest.raises(LifespanFailed) as info:
        await driver.startup()
    assert "/broken" in str(info.value)
    assert "broken broke" in str(info.value)
    assert log == ["start first", "stop first"]
    await driver.aclose()


async def test_router_lifespan_shutdown_failure_still_stops_all() -> None:
    log: list[str] = []
    app = Router(
        [Mount("/a", Recorder("a", log, fail="shutdown")), Mount("/b", Recorder("b", log))]
    )
    driver = LifespanDriver(app, required=True)
    await driver.startup()
    with pytest.raises(LifespanFailed, match="a stuck"):
        await driver.shutdown()
    # Equal-length prefixes keep their listed order; shutdown goes in reverse.
    assert log == ["start a", "start b", "stop b", "stop a"]


async def test_router_lifespan_same_app_mounted_twice_starts_once() -> None:
    log: list[str] = []
    shared = Recorder("shared", log)
    app = Router([Mount("/x", shared), Host("example.com", shared)])
    driver = LifespanDriver(app, required=True)
    await driver.startup()
    await driver.shutdown()
    assert log == ["start shared", "stop shared"]


async def test_starlette_lifespan_runs_when_mounted() -> None:
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
        events.append("up")
        yield {"db": "connected"}
        events.append("down")

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.state.db)

    api = Starlette(routes=[Route("/", home)], lifespan=lifespan)
    app = Router([Mount("/api", api)])
    state: dict[str, Any] = {}
    driver = LifespanDriver(app, state=state, required=True)
    await driver.startup()
    assert events == ["up"]
    assert state == {"db": "connected"}
    await driver.shutdown()
    assert events == ["up", "down"]
