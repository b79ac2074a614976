"""``wsgi2asgi.shadow``: clients see only the primary; the candidate is replayed and compared."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.apps.shadow_apps import GatedCandidate, flask_candidate, make_primary
from tests.servers import start_server
from wsgi2asgi.cli import main as cli_main
from wsgi2asgi.lifespan import LifespanDriver
from wsgi2asgi.shadow import Shadow, format_report
from wsgi2asgi.testing import AsyncTestClient
from wsgi2asgi.typing import ASGIApp, Receive, Scope, Send

ROOT = Path(__file__).resolve().parent.parent


def client(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def shadow_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsgi2asgi.shadow"]


async def crash(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("candidate exploded")


async def test_shadow_equal_answers_counted_equal(caplog: pytest.LogCaptureFixture) -> None:
    shadow = Shadow(make_primary(), flask_candidate())
    async with client(shadow) as c:
        response = await c.get("/hello")
    await shadow.drain()

    assert response.text == "hello\nworld\n"
    stats = shadow.stats
    assert (stats.compared, stats.equal, stats.different, stats.skipped) == (1, 1, 0, 0)
    assert shadow.report()["routes"]["GET /hello"]["equal"] == 1
    assert shadow_records(caplog) == []


async def test_shadow_changed_body_reported_with_diff(caplog: pytest.LogCaptureFixture) -> None:
    shadow = Shadow(make_primary(), flask_candidate(greeting="howdy"))
    async with client(shadow) as c:
        response = await c.get("/hello")
    await shadow.drain()

    assert response.text == "hello\nworld\n"
    assert (shadow.stats.compared, shadow.stats.different) == (1, 1)
    [difference] = shadow.stats.differences
    assert difference.problems == ["body differs"]
    assert "-hello\n+howdy\n world" in difference.diff
    [record] = shadow_records(caplog)
    assert record.levelno == logging.WARNING
    assert "GET /hello differs: body differs" in record.getMessage()
    assert "+howdy" in record.getMessage()


async def test_shadow_ignore_normalises_bodies_and_route_template() -> None:
    strict = Shadow(make_primary(), flask_candidate())
    lenient = Shadow(make_primary(), flask_candidate(), ignore=[r'"at":\s*[0-9.]+'])
    for shadow in (strict, lenient):
        async with client(shadow) as c:
            await c.get("/items/7")
        await shadow.drain()

    assert strict.stats.different == 1  # the timestamps differ
    assert lenient.stats.equal == 1
    assert list(lenient.stats.routes) == ["GET /items/{id:int}"]


async def test_shadow_status_and_header_differences_reported() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/html")]
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello\nworld\n"})

    shadow = Shadow(make_primary(), broken)
    async with client(shadow) as c:
        await c.get("/hello")
    await shadow.drain()

    assert shadow.stats.differences[0].problems == [
        "status 200 != 500",
        "content-type: [b'text/plain; charset=utf-8'] != [b'text/html']",
    ]


async def test_shadow_crashing_candidate_invisible_to_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with client(make_primary()) as c:
        alone = await c.get("/echo", params={"q": "1"})
    shadow = Shadow(make_primary(), crash)
    async with client(shadow) as c:
        shadowed = await c.get("/echo", params={"q": "1"})
    await shadow.drain()

    assert (shadowed.status_code, shadowed.headers, shadowed.content) == (
        alone.status_code,
        alone.headers,
        alone.content,
    )
    assert (shadow.stats.candidate_errors, shadow.stats.compared) == (1, 0)
    assert "RuntimeError: candidate exploded" in shadow_records(caplog)[0].getMessage()


async def test_shadow_slow_candidate_does_not_delay_primary() -> None:
    candidate = GatedCandidate()
    shadow = Shadow(make_primary(), candidate)
    async with client(shadow) as c:
        response = await c.get("/hello")  # returns while the candidate waits at its gate
    assert response.text == "hello\nworld\n"
    await asyncio.wait_for(candidate.called.wait(), timeout=10)  # the replay runs after
    assert candidate.calls == ["/hello"]
    assert shadow.stats.compared == 0

    candidate.gate.set()
    await shadow.drain()
    assert shadow.stats.equal == 1


async def test_shadow_hanging_candidate_times_out_as_error() -> None:
    candidate = GatedCandidate()  # the gate never opens
    shadow = Shadow(make_primary(), candidate, timeout=0.05)
    async with client(shadow) as c:
        assert (await c.get("/hello")).status_code == 200
    await shadow.drain()

    assert shadow.stats.candidate_errors == 1


async def test_shadow_full_concurrency_skips() -> None:
    candidate = GatedCandidate()
    shadow = Shadow(make_primary(), candidate, max_concurrency=1)
    async with client(shadow) as c:
        await c.get("/hello")
        await c.get("/hello")
    candidate.gate.set()
    await shadow.drain()

    assert (shadow.stats.equal, shadow.stats.skipped) == (1, 1)
    assert shadow.stats.skipped_reasons == {"busy": 1}


async def test_shadow_max_pending_passes_requests_through_unrecorded() -> None:
    candidate = GatedCandidate()
    shadow = Shadow(make_primary(), candidate, max_pending=1)
    entered, release = asyncio.Event(), asyncio.Event()
    primary = shadow.primary

    async def held_primary(scope: Scope, receive: Receive, send: Send) -> None:
        if not entered.is_set():  # the first request waits inside the primary
            entered.set()
            await release.wait()
        await primary(scope, receive, send)

    shadow.primary = held_primary
    async with client(shadow) as c:
        held = asyncio.create_task(c.get("/hello"))
        await entered.wait()  # one request is being recorded: the next one is not
        passed = await c.get("/hello")
        release.set()
        assert (await held).text == passed.text == "hello\nworld\n"
    candidate.gate.set()
    await shadow.drain()

    assert candidate.calls == ["/hello"]
    assert (shadow.stats.equal, shadow.stats.skipped) == (1, 1)
    assert shadow.stats.routes["GET /hello"]["skipped"] == 1
    assert shadow.stats.skipped_reasons == {"busy": 1}


async def test_shadow_post_not_shadowed_by_default() -> None:
    candidate = GatedCandidate()
    candidate.gate.set()
    shadow = Shadow(make_primary(), candidate)
    async with client(shadow) as c:
        response = await c.post("/echo", content=b"payload")
    await shadow.drain()

    assert response.text == "payload"
    assert candidate.calls == []
    assert shadow.report()["routes"] == {}


async def test_shadow_post_replays_recorded_body_when_selected() -> None:
    shadow = Shadow(make_primary(), flask_candidate(), methods=["POST"])
    async with client(shadow) as c:
        await c.post("/echo", content=b"payload")
    await shadow.drain()

    assert (shadow.stats.equal, shadow.stats.different) == (1, 0)


async def test_shadow_large_body_skipped() -> None:
    candidate = GatedCandidate()
    shadow = Shadow(make_primary(), candidate, methods=["POST"], max_body=10)
    async with client(shadow) as c:
        response = await c.post("/echo", content=b"x" * 100)
    await shadow.drain()

    assert response.content == b"x" * 100  # the client still gets everything
    assert candidate.calls == []
    assert shadow.stats.skipped_reasons == {"request body too large": 1}


async def test_shadow_paths_prefixes_and_predicate_select() -> None:
    by_prefix = Shadow(make_primary(), flask_candidate(), paths=["/items/"])
    by_predicate = Shadow(make_primary(), flask_candidate(), paths=lambda p: p == "/hello")
    for shadow in (by_prefix, by_predicate):
        async with client(shadow) as c:
            await c.get("/hello")
            await c.get("/items/1")
        await shadow.drain()

    assert list(by_prefix.stats.routes) == ["GET /items/{id:int}"]
    assert list(by_predicate.stats.routes) == ["GET /hello"]


async def test_shadow_lifespan_reaches_both_apps() -> None:
    events: list[str] = []
    candidate_events: list[str] = []
    shadow = Shadow(make_primary(events), make_primary(candidate_events))
    driver = LifespanDriver(shadow)
    await driver.startup()
    await driver.shutdown()

    assert events == ["primary startup", "primary shutdown"]
    assert candidate_events == ["primary startup", "primary shutdown"]


async def test_shadow_lifespan_shutdown_waits_for_replays() -> None:
    candidate = GatedCandidate()
    shadow = Shadow(make_primary(), candidate)
    async with AsyncTestClient(shadow) as c:
        await c.get("/hello")
        await asyncio.wait_for(candidate.called.wait(), timeout=10)
        asyncio.get_running_loop().call_soon(candidate.gate.set)
    # Leaving ran lifespan shutdown: it waited for the gated replay to be compared.
    assert shadow.stats.equal == 1


async def test_shadow_websocket_goes_to_primary_only() -> None:
    seen: list[str] = []

    def app(name: str) -> ASGIApp:
        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(name)
            await send({"type": "websocket.close", "code": 1000})

        return serve

    shadow = Shadow(app("primary"), app("candidate"))
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    await shadow({"type": "websocket", "path": "/ws", "headers": []}, receive, send)
    await shadow.drain()
    assert seen == ["primary"]
    assert sent == [{"type": "websocket.close", "code": 1000}]


async def test_shadow_report_path_serves_json() -> None:
    shadow = Shadow(make_primary(), flask_candidate("howdy"), report_path="/__shadow__")
    async with client(shadow) as c:
        await c.get("/hello")
        await shadow.drain()
        report = (await c.get("/__shadow__")).json()

    assert (report["compared"], report["different"]) == (1, 1)
    assert report["differences"][0]["route"] == "GET /hello"


@pytest.fixture
def served_shadow() -> Iterator[tuple[str, Shadow, asyncio.AbstractEventLoop]]:
    shadow = Shadow(make_primary(), flask_candidate("howdy"), report_path="/__shadow__")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(shadow, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve([sock]),))
    thread.start()
    try:
        while not server.started and thread.is_alive():
            threading.Event().wait(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", shadow, loop
    finally:
        server.should_exit = True
        thread.join()
        loop.close()
        sock.close()


def test_shadow_report_command_summarises_and_exits_1_on_differences(
    served_shadow: tuple[str, Shadow, asyncio.AbstractEventLoop],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, shadow, loop = served_shadow
    with httpx.Client() as http:
        assert http.get(f"{url}/hello").text == "hello\nworld\n"
        assert http.get(f"{url}/items/3").status_code == 200
    asyncio.run_coroutine_threadsafe(shadow.drain(), loop).result(timeout=30)

    status = cli_main(["shadow-report", f"{url}/__shadow__", "--timeout", "10"])

    out = capsys.readouterr().out
    assert status == 1
    assert out.startswith("shadow: compared 2  equal 0  different 2")
    assert re.search(r"GET /hello\s+0\s+1\s+0\s+0", out)
    assert "+howdy" in out


def test_shadow_report_command_unreachable_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now

    status = cli_main(["shadow-report", f"http://127.0.0.1:{port}/", "--timeout", "5"])

    assert status == 2
    assert "wsgi2asgi shadow-report: error:" in capsys.readouterr().err


def test_format_report_without_differences() -> None:
    text = format_report({"compared": 1, "equal": 1, "routes": {}, "differences": []})

    assert text == "shadow: compared 1  equal 1  different 0  candidate_errors 0  skipped 0"
    assert json.loads(json.dumps({"text": text}))["text"] == text


async def test_paths_are_relative_to_the_mount() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from wsgi2asgi.routing import Mount, Router

    def answer(request: object) -> PlainTextResponse:
        return PlainTextResponse("same")

    site = Starlette(routes=[Route("/stream", answer)])
    shadow = Shadow(site, site, paths=["/stream"])
    app = Router([Mount("/flask", shadow)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/flask/stream")).text == "same"
    await shadow.drain()
    assert shadow.stats.compared == 1 and shadow.stats.equal == 1


# -- shadow-report against what is not a report (#12.21) -----------------------------------------


def not_a_report_site() -> Starlette:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def lookalike(request: Request) -> Response:
        return JSONResponse({**dict.fromkeys(COUNTERS, 0), "routes": ["/a"]})

    async def listing(request: Request) -> Response:
        return JSONResponse([1, 2, 3])

    async def page(request: Request) -> Response:
        return HTMLResponse("<!doctype html><title>Shop</title><h1>Welcome</h1>")

    async def empty_report(request: Request) -> Response:
        return JSONResponse(Shadow(make_primary(), make_primary()).report())

    routes = [Route("/health", health), Route("/list", listing), Route("/", page)]
    routes.append(Route("/lookalike", lookalike))
    return Starlette(routes=[*routes, Route("/__shadow__", empty_report)])


@pytest.fixture(scope="module")
def not_a_report_url() -> Iterator[str]:
    running = start_server(not_a_report_site())
    try:
        yield running.url
    finally:
        running.stop()


def shadow_report_cli(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsgi2asgi", "shadow-report", url, "--timeout", "10"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


COUNTERS = ("compared", "equal", "different", "candidate_errors", "skipped")


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/health", "its JSON has no compared, equal, different, candidate_errors, skipped"),
        ("/list", "its JSON is a list, not an object"),
        ("/lookalike", "its JSON has routes that are not a report's"),
        ("/", "it is text/html; charset=utf-8, not JSON"),
    ],
)
def test_shadow_report_command_refuses_what_is_not_a_report(
    not_a_report_url: str, path: str, why: str
) -> None:
    result = shadow_report_cli(f"{not_a_report_url}{path}")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"wsgi2asgi shadow-report: error: {not_a_report_url}{path} is not a shadow report ({why})"
    ]


def test_shadow_report_command_reads_a_real_empty_report(not_a_report_url: str) -> None:
    result = shadow_report_cli(f"{not_a_report_url}/__shadow__")

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("shadow: compared 0  equal 0  different 0")


def starlette_with_pool(label: str) -> Starlette:
    """A Starlette app whose lifespan stores ``pool`` in state and whose ``/`` answers it."""
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
        yield {"pool": f"pool of {label}"}

    async def home(request: Request) -> Response:
        return Response(request.state.pool)

    return Starlette(routes=[Route("/", home)], lifespan=lifespan)


async def test_shadow_lifespan_state_is_per_app() -> None:
    # Both apps store "pool": the client sees the primary's, the replay reaches the candidate's
    # (so the two answers differ), and neither overwrote the other.
    shadow = Shadow(starlette_with_pool("primary"), starlette_with_pool("candidate"))
    # The client runs the lifespan and copies its state into each request, as a server does.
    async with AsyncTestClient(shadow, lifespan="on") as c:
        assert (await c.get("/")).text == "pool of primary"
    # Leaving ran lifespan shutdown, which waits for the replays in flight.
    assert shadow.stats.different == 1
    (difference,) = shadow.stats.differences
    assert "+pool of candidate" in difference.diff
