"""``wsgi2asgi.testing.client``: the in-process clients (``TestClient``, ``AsyncTestClient``)
run the lifespan of the whole tree, keep cookies and follow ``root_path`` as our server does.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from tests.apps.testing_site import site
from wsgi2asgi.exceptions import LifespanFailed
from wsgi2asgi.routing import Mount, Router
from wsgi2asgi.testing import AsyncTestClient, TestClient
from wsgi2asgi.typing import Receive, Scope, Send

ROOT = Path(__file__).resolve().parents[2]


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


def test_testing_without_httpx_says_what_to_install() -> None:
    code = (
        "import sys\nsys.modules['httpx'] = None  # as if not installed\n"
        "try:\n    import wsgi2asgi.testing\nexcept ImportError as exc:\n    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip() == (
        "wsgi2asgi.testing needs httpx: pip install 'wsgi2asgi[testing]'"
    ), result.stderr
