"""``wsgi2asgi.testing``: in-process clients, a live server and ``assert_same_responses``.

The composite under test is the kind a team deploys: a Starlette API, a Flask app and a
Starlette site mounted by our router, each with its own lifespan and state.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.sync.client import connect

from adapters.flask import flask_app
from wsgi2asgi.exceptions import (
    ClientDisconnected,
    LifespanFailed,
    WebSocketClosed,
    WebSocketRejected,
)
from wsgi2asgi.routing import Mount, Router
from wsgi2asgi.shadow import Shadow
from wsgi2asgi.testing import (
    AsyncTestClient,
    LiveServer,
    TestClient,
    assert_same_responses,
)
from wsgi2asgi.typing import ASGIApp, Receive, Scope, Send

ROOT = Path(__file__).resolve().parent.parent


def api(log: list[str], label: str = "api") -> Starlette:
    """A Starlette app: lifespan logs and stores ``pool``; HTTP, streaming and WebSockets."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
        log.append(f"start {label}")
        yield {"pool": f"pool of {label}"}
        log.append(f"stop {label}")

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.state.pool)

    async def where(request: Request) -> JSONResponse:
        scope = request.scope
        return JSONResponse(
            {
                "path": scope["path"],
                "root_path": scope["root_path"],
                "raw_path": scope["raw_path"].decode(),
                "url": str(request.url_for("where")),
                "cookies": request.cookies,
            }
        )

    async def login(request: Request) -> PlainTextResponse:
        response = PlainTextResponse("in")
        response.set_cookie("user", "ada", path=request.scope["root_path"] or "/")
        return response

    async def boom(request: Request) -> Response:
        raise RuntimeError("the view broke")

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol=(websocket.scope["subprotocols"] or [None])[0])
        user = websocket.cookies.get("user", "anonymous")
        async for text in websocket.iter_text():
            if text == "bye":
                await websocket.close(4001, "bye to you")
                return
            await websocket.send_text(f"{label} {user} {text}".upper())
        log.append("ws disconnected")

    async def refuse(websocket: WebSocket) -> None:
        await websocket.close()

    return Starlette(
        routes=[
            Route("/", home),
            Route("/where", where, name="where"),
            Route("/login", login),
            Route("/boom", boom),
            WebSocketRoute("/ws", ws),
            WebSocketRoute("/refuse", refuse),
        ],
        lifespan=lifespan,
    )


def legacy_flask() -> Flask:
    app = Flask("legacy")
    app.secret_key = "test-only"

    @app.get("/visits")
    def visits() -> str:
        session["visits"] = session.get("visits", 0) + 1
        return str(session["visits"])

    return app


def site(log: list[str]) -> Router:
    return Router(
        [
            Mount("/api", api(log, "api")),
            Mount("/flask", flask_app(legacy_flask())),
            Mount("", api(log, "root")),
        ]
    )


# -- the in-process clients ------------------------------------------------------------------


def test_client_runs_the_lifespan_of_the_whole_tree_around_the_block() -> None:
    log: list[str] = []
    with TestClient(site(log)) as client:
        assert log == ["start api", "start root"]
        # Each request gets the state of the app it reaches, as under our server.
        assert client.get("/api/").text == "pool of api"
        assert client.get("/").text == "pool of root"
    assert log == ["start api", "start root", "stop root", "stop api"]


async def test_async_client_runs_the_lifespan_of_the_whole_tree_around_the_block() -> None:
    log: list[str] = []
    async with AsyncTestClient(site(log)) as client:
        assert log == ["start api", "start root"]
        assert (await client.get("/api/")).text == "pool of api"
        assert (await client.get("/")).text == "pool of root"
    assert log == ["start api", "start root", "stop root", "stop api"]


def test_client_lifespan_failure_is_raised_on_entering() -> None:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield

    app = Router([Mount("/db", Starlette(lifespan=lifespan))])
    with pytest.raises(LifespanFailed, match="no database"):
        with TestClient(app):
            pass


def test_client_copies_the_lifespan_state_into_each_request() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["started"] = True
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = json.dumps(sorted(scope["state"])).encode()
        scope["state"]["leaked"] = True  # a request's own copy: the next one must not see it
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    with TestClient(app) as client:
        assert client.get("/").json() == ["started"]
        assert client.get("/").json() == ["started"]
        assert client.state == {"started": True}


def test_client_keeps_cookies_scoped_to_their_path() -> None:
    log: list[str] = []
    with TestClient(site(log)) as client:
        assert [client.get("/flask/visits").text for _ in range(3)] == ["1", "2", "3"]
        assert client.cookies.jar  # Flask's session cookie, Path=/flask
        (cookie,) = [c for c in client.cookies.jar if c.name == "session"]
        assert cookie.path == "/flask"
        client.get("/api/login")
        assert client.get("/api/where").json()["cookies"] == {"user": "ada"}
        assert client.get("/where").json()["cookies"] == {}  # neither /flask's nor /api's
    with TestClient(site(log)) as fresh:
        assert fresh.get("/flask/visits").text == "1"


@pytest.mark.parametrize("root_path", ["", "/site"])
def test_client_follows_the_root_path_rules_of_our_server(root_path: str) -> None:
    log: list[str] = []
    with TestClient(site(log), root_path=root_path) as client:
        seen = client.get("/api/where").json()
    # ASGI: path includes root_path; the mount adds its prefix to root_path.
    assert seen["path"] == f"{root_path}/api/where"
    assert seen["raw_path"] == f"{root_path}/api/where"
    assert seen["root_path"] == f"{root_path}/api"
    assert seen["url"] == f"http://testserver{root_path}/api/where"


def test_client_raises_the_apps_exception_or_answers_500() -> None:
    log: list[str] = []
    with TestClient(site(log)) as client:
        with pytest.raises(RuntimeError, match="the view broke"):
            client.get("/api/boom")
    with TestClient(site(log), raise_app_exceptions=False) as client:
        assert client.get("/api/boom").status_code == 500


def test_client_streams_and_closing_the_response_disconnects_the_app() -> None:
    gone = threading.Event()

    async def endless(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        n = 0
        try:
            while True:
                n += 1
                chunk = f"event {n}\n".encode()
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except OSError:  # ASGI 2.4: send raises OSError once the client is gone
            gone.set()

    with TestClient(endless, lifespan="off") as client:
        with client.stream("GET", "/events") as response:
            lines = response.iter_lines()
            assert [next(lines) for _ in range(3)] == ["event 1", "event 2", "event 3"]
        assert gone.is_set()  # closing the response waited for the app to end


async def test_async_client_times_out_on_an_app_that_never_answers() -> None:
    never = asyncio.Event()
    cancelled: list[bool] = []

    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async with AsyncTestClient(silent, lifespan="off") as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/", timeout=0.2)
    assert cancelled == [True]


# -- WebSockets ------------------------------------------------------------------------------


def test_client_websocket_session_with_cookies_and_subprotocol() -> None:
    log: list[str] = []
    with TestClient(site(log)) as client:
        client.get("/api/login")  # sets user=ada for /api
        with client.websocket_connect("/api/ws", subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            ws.send_text("hello")
            assert ws.receive_text() == "API ADA HELLO"
        with client.websocket_connect("/ws") as ws:  # the root app: no cookie for it
            ws.send_text("hi")
            assert ws.receive_text() == "ROOT ANONYMOUS HI"
    # Leaving the block disconnected each session: the app saw websocket.disconnect.
    assert log.count("ws disconnected") == 2


def test_client_websocket_closed_by_the_app_or_refused() -> None:
    log: list[str] = []
    with TestClient(site(log)) as client:
        with client.websocket_connect("/api/ws") as ws:
            ws.send_text("bye")
            with pytest.raises(WebSocketClosed) as closed:
                ws.receive_text()
        assert (closed.value.code, closed.value.reason) == (4001, "bye to you")
        with pytest.raises(WebSocketRejected) as refused:
            with client.websocket_connect("/api/refuse"):
                pass
        assert refused.value.status == 403


async def test_async_client_websocket_session() -> None:
    log: list[str] = []
    async with AsyncTestClient(site(log)) as client:
        async with client.websocket_connect("/api/ws") as ws:
            await ws.send_text("one")
            assert await ws.receive_text() == "API ANONYMOUS ONE"
            await ws.send_json({"n": 2})
            assert await ws.receive_text() == 'API ANONYMOUS {"N": 2}'
            await ws.close(1001)
    assert log.count("ws disconnected") == 1


async def test_websocket_send_after_the_app_closed_raises_client_disconnected() -> None:
    errors: list[BaseException] = []

    async def closes_then_sends(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4000})
        try:  # as on our server: nothing can be sent after a close
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:
            errors.append(exc)

    async with AsyncTestClient(closes_then_sends, lifespan="off") as client:
        async with client.websocket_connect("/ws") as ws:
            with pytest.raises(WebSocketClosed):
                await ws.receive_text()
    assert [type(e) for e in errors] == [ClientDisconnected]


async def test_websocket_denial_response_is_a_rejection_with_status_and_body() -> None:
    async def deny(scope: Scope, receive: Receive, send: Send) -> None:
        assert "websocket.http.response" in scope["extensions"]
        await receive()
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": b"log in first"})

    async with AsyncTestClient(deny, lifespan="off") as client:
        with pytest.raises(WebSocketRejected) as refused:
            async with client.websocket_connect("/ws"):
                pass
    assert (refused.value.status, refused.value.body) == (401, b"log in first")


# -- the pytest plugin, used here as a user would ----------------------------------------------


@pytest.fixture
def wsgi2asgi_app() -> ASGIApp:
    return site([])


def test_plugin_client_fixture(wsgi2asgi_client: TestClient) -> None:
    assert wsgi2asgi_client.get("/api/").text == "pool of api"
    assert wsgi2asgi_client.get("/flask/visits").text == "1"


def test_plugin_live_server_fixture(wsgi2asgi_live_server: LiveServer) -> None:
    url = wsgi2asgi_live_server.url
    assert url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{url}/api/").text == "pool of api"
    with connect(f"{wsgi2asgi_live_server.ws_url}/api/ws") as ws:
        ws.send("over a socket")
        assert ws.recv(timeout=5) == "API ANONYMOUS OVER A SOCKET"


PLUGIN_USER_TESTS = """
import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


@pytest.fixture
def wsgi2asgi_app():
    return Starlette(routes=[Route("/", lambda request: PlainTextResponse("hi"))])


def test_in_process(wsgi2asgi_client):
    assert wsgi2asgi_client.get("/").text == "hi"


def test_over_a_socket(wsgi2asgi_live_server):
    assert httpx.get(wsgi2asgi_live_server.url + "/").text == "hi"
"""

FORGOT_THE_APP = """
def test_forgot(wsgi2asgi_client):
    pass
"""


def run_pytest(directory: Path, name: str, source: str) -> subprocess.CompletedProcess[str]:
    (directory / name).write_text(textwrap.dedent(source))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name]
    return subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=120)


def test_plugin_is_loaded_by_installing_the_package(tmp_path: Path) -> None:
    # A project of its own (no conftest, no -p): the pytest11 entry point loads the plugin.
    result = run_pytest(tmp_path, "test_user.py", PLUGIN_USER_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_plugin_says_how_to_give_it_the_app(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "test_forgot.py", FORGOT_THE_APP)
    assert result.returncode == 1
    assert "define a fixture named 'wsgi2asgi_app' that returns your ASGI app" in result.stdout


def test_the_flask_in_django_plugin_example_passes_in_a_process_of_its_own() -> None:
    # Django's settings are process-wide: in the whole suite another module configures them
    # before the example's module runs, which then skips; here it runs alone, as a user's would.
    example = "tests/examples/test_flask_in_django_plugin.py"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", example]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout and "skipped" not in result.stdout, result.stdout


def test_plugin_import_is_cheap_and_loads_no_framework() -> None:
    code = (
        "import sys; import wsgi2asgi.pytest_plugin; "
        "print(sorted(m for m in ('httpx', 'django', 'flask', 'starlette', "
        "'wsgi2asgi.testing', 'wsgi2asgi.server') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip() == "[]", result.stderr


def test_testing_without_httpx_says_what_to_install() -> None:
    code = (
        "import sys\nsys.modules['httpx'] = None  # as if not installed\n"
        "try:\n    import wsgi2asgi.testing\nexcept ImportError as exc:\n    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip() == (
        "wsgi2asgi.testing needs httpx: pip install 'wsgi2asgi[testing]'"
    ), result.stderr


# -- the live server -------------------------------------------------------------------------


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_live_server_serves_the_composite_on_a_real_socket_and_stops_cleanly(loop: Any) -> None:
    log: list[str] = []
    server = LiveServer(site(log), loop=loop)
    with server:
        assert log == ["start api", "start root"]
        with httpx.Client(base_url=server.url) as client:
            assert [client.get("/flask/visits").text for _ in range(2)] == ["1", "2"]
            assert client.get("/api/where").json()["url"] == f"{server.url}/api/where"
    assert server.status == 0
    assert log == ["start api", "start root", "stop root", "stop api"]
    with pytest.raises(ConnectionRefusedError):  # the port is closed, not left half-open
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def test_live_server_startup_failure_is_raised() -> None:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield

    with pytest.raises(LifespanFailed, match="exit status 3"):
        LiveServer(Starlette(lifespan=lifespan), lifespan="on").start()


# -- assert_same_responses -------------------------------------------------------------------


def shop(version: str, *, price: str = "10", kind: str = "application/json") -> Starlette:
    async def item(request: Request) -> Response:
        body = f'{{"id": {request.path_params["id"]}, "price": {price}}}\n'
        return Response(body, media_type=kind)

    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(await request.body())

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"ok from {version}")

    return Starlette(
        routes=[
            Route("/items/{id:int}", item),
            Route("/echo", echo, methods=["POST"]),
            Route("/health", health),
        ]
    )


def test_assert_same_responses_passes_when_the_apps_agree() -> None:
    requests: list[Any] = [
        "GET /items/1",
        ("POST", "/echo", b"same body"),
        httpx.Request("GET", "http://testserver/items/2"),
        {"method": "GET", "path": "/health"},
    ]
    assert_same_responses(shop("v1"), shop("v2"), requests, ignore=[r"v\d"])


def test_assert_same_responses_fails_with_a_readable_diff() -> None:
    migrated = shop("v2", price="12", kind="text/plain")
    with pytest.raises(AssertionError) as failed:
        assert_same_responses(shop("v1"), migrated, ["GET /items/1", "GET /nowhere", "/health"])
    message = str(failed.value)
    assert message.startswith("2 of 3 requests answered differently (legacy != migrated):")
    assert "GET /items/1:" in message
    assert "content-type: ['application/json'] != ['text/plain; charset=utf-8']" in message
    assert '-{"id": 1, "price": 10}' in message
    assert '+{"id": 1, "price": 12}' in message
    assert "GET /health:" in message  # "ok from v1" != "ok from v2"
    assert "GET /nowhere" not in message  # both 404


async def test_assert_same_responses_replays_a_shadow_report() -> None:
    legacy, migrated = shop("v1"), shop("v2")  # /health differs, /items/7 does not
    shadow = Shadow(legacy, migrated)
    async with AsyncTestClient(shadow) as client:
        for path in ("/health", "/items/7"):
            await client.get(path)
        await shadow.drain()
    report = shadow.report()
    assert [d["route"] for d in report["differences"]] == ["GET /health"]
    assert_same_responses(legacy, shop("v1"), report)  # the fixed candidate agrees
    with pytest.raises(AssertionError, match="1 of 1 requests answered differently"):
        assert_same_responses(legacy, migrated, report)
    with pytest.raises(AssertionError, match="GET /health"):
        assert_same_responses(legacy, migrated, list(shadow.stats.differences))


def test_assert_same_responses_wants_a_list_of_requests() -> None:
    with pytest.raises(TypeError, match=r"a list of requests, not one: \['GET /health'\]"):
        assert_same_responses(shop("v1"), shop("v2"), "GET /health")


def test_assert_same_responses_refuses_a_route_template_it_cannot_replay() -> None:
    report = {"differences": [{"route": "GET /items/{id:int}", "problems": [], "diff": ""}]}
    with pytest.raises(ValueError, match="route template"):
        assert_same_responses(shop("v1"), shop("v2"), report)


def test_live_server_fixture_and_client_agree(
    wsgi2asgi_client: TestClient, wsgi2asgi_live_server: LiveServer
) -> None:
    # The same app, in process and over a socket: the same answers (cookies aside).
    with httpx.Client(base_url=wsgi2asgi_live_server.url) as live:
        for path in ("/api/", "/flask/visits", "/nope"):
            in_process, real = wsgi2asgi_client.get(path), live.get(path)
            assert (in_process.status_code, in_process.text) == (real.status_code, real.text)
