"""``asgi_to_wsgi``: ASGI apps served by WSGI servers, called directly and on loopback."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
import socketserver
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.validate import validator

import httpx
import pytest
from starlette.responses import PlainTextResponse

from tests import loopback
from tests.apps.starlette_app import make_starlette
from wsgi2asgi.asgi import ASGIAdapter, asgi_to_wsgi
from wsgi2asgi.exceptions import ASGIContractError

ROOT = Path(__file__).resolve().parents[1]
Message = dict[str, Any]
TEXT = [(b"content-type", b"text/plain")]
HEADERS = [("content-type", "text/plain")]


def environ(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    base.update(extra)
    return base


def call(app: Any, **extra: Any) -> tuple[str, list[tuple[str, str]], bytes]:
    """Call a WSGI app the way a server does: iterate the whole body, then close()."""
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    result = app(environ(**extra), start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return captured["status"], captured["headers"], body


def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return lambda data: None


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (a flag set on another thread) for up to 10 s; fail naming ``what``."""
    if not loopback.wait_until(condition, timeout=10):
        pytest.fail(f"timed out waiting for {what}")


def settle(adapter: ASGIAdapter) -> None:
    """Let the adapter's loop run everything that is ready (it cannot if a task never yields)."""
    loop_thread = adapter._loop_thread
    assert loop_thread is not None
    for _ in range(5):
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop_thread.loop).result(10)


def no_lifespan(app: Callable[..., Any]) -> Callable[..., Any]:
    """A plain ASGI app that answers lifespan like a server expects, then ``app`` for http."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await app(scope, receive, send)

    return wrapped


async def respond(send: Any, body: bytes = b"ok", status: int = 200, **start: Any) -> None:
    headers = start.pop("headers", [(b"content-type", b"text/plain")])
    await send({"type": "http.response.start", "status": status, "headers": headers, **start})
    await send({"type": "http.response.body", "body": body})


def test_starlette_under_the_validator_with_lifespan_state() -> None:
    events: list[str] = []
    with asgi_to_wsgi(make_starlette(events)) as adapter:
        assert events == ["startup"]
        status, headers, body = call(
            validator(adapter), SCRIPT_NAME="/api", PATH_INFO="/hello", REMOTE_ADDR="10.1.2.3"
        )
    assert events == ["startup", "shutdown"]
    assert status == "200 OK"
    assert ("content-type", "application/json") in headers
    assert json.loads(body) == {
        "path": "/api/hello",
        "root": "/api",
        "url": "http://testserver/api/hello",
        "db": "connected",
        "client": "10.1.2.3",
    }


def test_starlette_form_cookies_redirects_and_errors_under_the_validator() -> None:
    boundary = "XyZ"
    upload = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nn\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n{'1' * 5000}\r\n--{boundary}--\r\n"
    ).encode()
    with asgi_to_wsgi(make_starlette([])) as adapter:
        app = validator(adapter)
        status, _, body = call(
            app,
            REQUEST_METHOD="POST",
            PATH_INFO="/form",
            CONTENT_TYPE=f"multipart/form-data; boundary={boundary}",
            CONTENT_LENGTH=str(len(upload)),
            **{"wsgi.input": io.BytesIO(upload)},
        )
        assert (status, json.loads(body)) == ("200 OK", {"name": "n", "size": 5000})
        # Not under the validator: it wants a Content-Type even on a bodiless redirect.
        status, headers, _ = call(adapter, PATH_INFO="/cookies")
        assert status == "303 See Other"
        assert ("location", "/hello") in headers
        assert [value[:3] for name, value in headers if name == "set-cookie"] == ["a=1", "b=2"]
        _, _, body = call(app, PATH_INFO="/whoami", HTTP_COOKIE="a=1; b=2")
        assert json.loads(body) == {"a": "1", "b": "2"}
        assert call(app, PATH_INFO="/missing")[0] == "404 Not Found"
        assert call(app, PATH_INFO="/boom")[0] == "500 Internal Server Error"


# -- the request body ----------------------------------------------------------------------------


class RecordingInput(io.BytesIO):
    def __init__(self, data: bytes, fail: bool = False) -> None:
        super().__init__(data)
        self.sizes: list[int] = []
        self.fail = fail

    def read(self, size: int | None = -1) -> bytes:
        self.sizes.append(-1 if size is None else size)
        if self.fail:
            raise OSError("connection reset")
        return super().read(size)


def body_recorder() -> tuple[Callable[..., Any], list[Message]]:
    """An app that receives until the body ends (or a disconnect), then answers 200."""
    seen: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await respond(send, b"%d" % sum(len(m.get("body", b"")) for m in seen))

    return no_lifespan(app), seen


def test_request_body_streams_in_pieces_and_stops_at_content_length() -> None:
    payload = os.urandom(300_000)
    wsgi_input = RecordingInput(payload + b"NEXT REQUEST")
    app, seen = body_recorder()
    with asgi_to_wsgi(app) as adapter:
        status, _, body = call(
            validator(adapter),
            REQUEST_METHOD="POST",
            CONTENT_LENGTH=str(len(payload)),
            **{"wsgi.input": wsgi_input},
        )
    assert (status, body) == ("200 OK", b"300000")
    assert b"".join(m["body"] for m in seen) == payload
    assert [m["more_body"] for m in seen] == [True] * 4 + [False]
    assert max(wsgi_input.sizes) == 64 * 1024
    assert wsgi_input.tell() == len(payload)  # never read past CONTENT_LENGTH


def test_request_body_read_to_eof_when_input_is_terminated() -> None:
    app, seen = body_recorder()
    with asgi_to_wsgi(app) as adapter:
        status, _, body = call(
            adapter,
            REQUEST_METHOD="POST",
            **{"wsgi.input": io.BytesIO(b"x" * 70_000), "wsgi.input_terminated": True},
        )
    assert (status, body) == ("200 OK", b"70000")
    assert seen[-1] == {"type": "http.request", "body": b"", "more_body": False}


def test_request_body_is_empty_without_length_or_terminated_input() -> None:
    wsgi_input = RecordingInput(b"pipelined request bytes")
    app, seen = body_recorder()
    with asgi_to_wsgi(app) as adapter:
        call(validator(adapter), REQUEST_METHOD="POST", **{"wsgi.input": wsgi_input})
    assert seen == [{"type": "http.request", "body": b"", "more_body": False}]
    assert wsgi_input.sizes == []


@pytest.mark.parametrize("fail", [False, True], ids=["short", "read-error"])
def test_request_body_that_ends_short_is_a_disconnect(fail: bool) -> None:
    app, seen = body_recorder()
    with asgi_to_wsgi(app) as adapter:
        call(
            adapter,
            REQUEST_METHOD="POST",
            CONTENT_LENGTH="100",
            **{"wsgi.input": RecordingInput(b"x" * 10, fail=fail)},
        )
    assert seen[-1] == {"type": "http.disconnect"}
    assert all(m.get("more_body", True) for m in seen)  # never a "complete" short body


@pytest.mark.parametrize("length", ["abc", "-1", "+3", "1_0", " 3"])
def test_malformed_content_length_gets_400(length: str) -> None:
    app, seen = body_recorder()
    with asgi_to_wsgi(app) as adapter:
        status, _, _ = call(adapter, REQUEST_METHOD="POST", CONTENT_LENGTH=length)
    assert status == "400 Bad Request"
    assert seen == []


def test_receive_after_the_body_waits_for_the_end_of_the_response() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["more_body"] is False
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        waiter = asyncio.ensure_future(receive())
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        seen.append(f"done={waiter.done()}")
        await send({"type": "http.response.body", "body": b"b"})
        seen.append((await waiter)["type"])

    with asgi_to_wsgi(no_lifespan(app)) as adapter:
        assert call(validator(adapter))[2] == b"ab"
        wait_until(lambda: len(seen) == 2, "the app to finish")
    assert seen == ["done=False", "http.disconnect"]


# -- the response --------------------------------------------------------------------------------


def endless(sent: list[int], outcome: list[str]) -> Callable[..., Any]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
                sent.append(1)
        except OSError as exc:
            outcome.append(type(exc).__name__)
            outcome.append((await receive())["type"])
            raise

    return no_lifespan(app)


def test_endless_stream_is_streamed_with_backpressure_and_stops_on_close() -> None:
    sent: list[int] = []
    outcome: list[str] = []
    with asgi_to_wsgi(endless(sent, outcome)) as adapter:
        result = validator(adapter)(environ(), start_response)
        chunks = iter(result)
        assert [next(chunks) for _ in range(20)] == [b"x"] * 20
        settle(adapter)  # returns only if the app is waiting: send() blocked
        assert len(sent) <= 20 + 8
        result.close()  # type: ignore[attr-defined]
        wait_until(lambda: len(outcome) == 2, "the app to see the disconnect")
    assert outcome == ["ClientDisconnected", "http.disconnect"]


def test_response_closed_before_iteration_cancels_the_task_after_the_grace() -> None:
    outcome: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        try:
            await asyncio.Event().wait()  # a hanging app that never calls send() again
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    with asgi_to_wsgi(no_lifespan(app), disconnect_grace=0.01) as adapter:
        result = adapter(environ(), start_response)
        result.close()  # type: ignore[attr-defined]
        wait_until(lambda: outcome == ["cancelled"], "the task to be cancelled")


def test_large_download_streams_in_the_apps_chunks() -> None:
    chunk = os.urandom(256 * 1024)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        for _ in range(39):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": chunk})

    with asgi_to_wsgi(no_lifespan(app)) as adapter:
        result = validator(adapter)(environ(), start_response)
        try:
            sizes = [len(piece) for piece in result]
        finally:
            result.close()  # type: ignore[attr-defined]
    assert sizes == [len(chunk)] * 40


def test_head_response_has_no_body_but_keeps_its_headers() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await respond(send, b"hello", headers=[*TEXT, (b"content-length", b"5")])

    with asgi_to_wsgi(no_lifespan(app)) as adapter:
        status, headers, body = call(validator(adapter), REQUEST_METHOD="HEAD")
    assert (status, headers, body) == ("200 OK", [*HEADERS, ("content-length", "5")], b"")


def test_hop_by_hop_headers_are_dropped_and_trailers_ignored() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [*TEXT, (b"connection", b"close"), (b"transfer-encoding", b"chunked")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": b"x", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [], "more_trailers": False})

    with asgi_to_wsgi(no_lifespan(app)) as adapter:
        assert call(validator(adapter)) == ("201 Created", HEADERS, b"x")


# -- errors --------------------------------------------------------------------------------------


async def raises_first(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("before start")


async def returns_silently(scope: Any, receive: Any, send: Any) -> None:
    pass


async def body_first(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.body", "body": b"x"})


async def bad_header(scope: Any, receive: Any, send: Any) -> None:
    await respond(send, headers=[(b"x-injected", b"a\r\nSet-Cookie: evil=1")])


async def bad_status(scope: Any, receive: Any, send: Any) -> None:
    await respond(send, status=101)


async def unknown_message(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "websocket.accept"})


@pytest.mark.parametrize(
    ("app", "logged"),
    [
        (raises_first, "before start"),
        (returns_silently, "returned without a response"),
        (body_first, "before http.response.start"),
        (bad_header, "control character"),
        (bad_status, "invalid status 101"),
        (unknown_message, "unexpected ASGI message 'websocket.accept'"),
    ],
)
def test_failure_before_the_start_is_a_logged_500(
    app: Any, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    with asgi_to_wsgi(app, lifespan="off") as adapter:
        with caplog.at_level(logging.ERROR, logger="wsgi2asgi.asgi"):
            status, _, body = call(validator(adapter))
    assert (status, body) == ("500 Internal Server Error", b"Internal Server Error")
    text = caplog.text + "".join(str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    assert logged in text


def test_error_after_the_start_is_raised_from_the_iterable() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise ValueError("after start")

    with asgi_to_wsgi(app, lifespan="off") as adapter:
        with pytest.raises(ValueError, match="after start"):
            call(adapter)


def test_returning_with_the_body_unfinished_is_an_error_not_a_short_response() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})

    with asgi_to_wsgi(app, lifespan="off") as adapter:
        with pytest.raises(ASGIContractError, match="before the end of the response body"):
            call(adapter)


def test_error_after_the_response_ended_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await respond(send)
        raise RuntimeError("in a background task")

    with asgi_to_wsgi(app, lifespan="off") as adapter:
        with caplog.at_level(logging.ERROR, logger="wsgi2asgi.asgi"):
            assert call(adapter)[2] == b"ok"
            wait_until(lambda: "after the response ended" in caplog.text, "the log line")


# -- lifespan ------------------------------------------------------------------------------------


def lifespan_app(log: list[str], startup: Message | None, shutdown: Message | None) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            log.append("startup")
            scope["state"]["ready"] = True
            if startup is None:
                raise RuntimeError("no lifespan here")
            await send(startup)
            if startup["type"].endswith("failed"):
                return
            await receive()
            log.append("shutdown")
            if shutdown is not None:
                await send(shutdown)
            return
        log.append(f"request ready={scope['state'].get('ready')}")
        await respond(send)

    return app


COMPLETE = {"type": "lifespan.startup.complete"}


@pytest.mark.parametrize(
    ("mode", "startup", "status", "log"),
    [
        ("auto", COMPLETE, "200 OK", ["startup", "request ready=True", "shutdown"]),
        ("on", COMPLETE, "200 OK", ["startup", "request ready=True", "shutdown"]),
        ("off", COMPLETE, "200 OK", ["request ready=None"]),
        ("auto", None, "200 OK", ["startup", "request ready=True"]),
        ("on", None, "500 Internal Server Error", ["startup"]),
        (
            "auto",
            {"type": "lifespan.startup.failed", "message": "no database"},
            "500 Internal Server Error",
            ["startup"],
        ),
    ],
)
def test_lifespan_modes(mode: Any, startup: Message | None, status: str, log: list[str]) -> None:
    seen: list[str] = []
    shutdown = {"type": "lifespan.shutdown.complete"}
    with asgi_to_wsgi(lifespan_app(seen, startup, shutdown), lifespan=mode) as adapter:
        assert call(validator(adapter))[0] == status
    assert seen == log


def test_failed_startup_is_logged_once_and_every_request_gets_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failed = {"type": "lifespan.startup.failed", "message": "no database"}
    with caplog.at_level(logging.ERROR, logger="wsgi2asgi.asgi"):
        with asgi_to_wsgi(lifespan_app([], failed, None)) as adapter:
            statuses = {call(adapter)[0] for _ in range(3)}
    assert statuses == {"500 Internal Server Error"}
    logged = [r.getMessage() for r in caplog.records if "failed to start" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].startswith("ASGI app failed to start; every request will get 500: lifespan")
    assert logged[0].endswith("failed: no database")


def test_a_failed_startup_names_the_app_as_the_server_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # One way to name an app in logs: module:qualname, as `wsgi2asgi serve`'s startup line.
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    with caplog.at_level(logging.ERROR, logger="wsgi2asgi.asgi"):
        with asgi_to_wsgi(failing) as adapter:
            assert call(adapter)[0] == "500 Internal Server Error"
    name = f"{__name__}:test_a_failed_startup_names_the_app_as_the_server_does.<locals>.failing"
    assert f"lifespan of {name} failed: no database" in caplog.text


def test_startup_timeout_and_failed_shutdown_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def hangs(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.Event().wait()

    with caplog.at_level(logging.ERROR, logger="wsgi2asgi.asgi"):
        with asgi_to_wsgi(hangs, lifespan_timeout=0.05) as adapter:
            assert call(adapter)[0] == "500 Internal Server Error"
        assert "did not finish within 0.05 s" in caplog.text
        failed = {"type": "lifespan.shutdown.failed", "message": "disk full"}
        with asgi_to_wsgi(lifespan_app([], COMPLETE, failed)):
            pass
        assert "disk full" in caplog.text


def test_an_app_ignoring_the_scope_type_is_served_without_lifespan(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # #12.3: a bare Starlette Response answers the lifespan scope with http.response.start.
    bare = PlainTextResponse("hello")
    with caplog.at_level(logging.INFO, logger="wsgi2asgi"):
        with asgi_to_wsgi(bare) as adapter:
            statuses = {call(validator(adapter))[0] for _ in range(2)}
            assert call(adapter)[2] == b"hello"
    assert statuses == {"200 OK"}
    assert [r.levelname for r in caplog.records] == ["INFO"]
    assert "unsupported" in caplog.records[0].getMessage()
    with asgi_to_wsgi(bare, lifespan="on") as adapter:  # "on" still fails loudly
        assert call(adapter)[0] == "500 Internal Server Error"


def test_an_app_returning_after_startup_closes_without_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # #12.4: no lifespan.shutdown.complete, because the app returned right after startup.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            return
        await respond(send)

    with caplog.at_level(logging.WARNING, logger="wsgi2asgi"):
        with asgi_to_wsgi(app, lifespan="on") as adapter:
            assert call(validator(adapter))[0] == "200 OK"
    assert caplog.records == []


def test_concurrent_first_requests_wait_for_startup() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await asyncio.sleep(0.05)  # kept: a slow startup on purpose, the requests come in it
            scope["state"]["ready"] = "yes"
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await respond(send, scope["state"].get("ready", "no").encode())

    adapter = asgi_to_wsgi(app)
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: call(adapter)[2], range(8)))
    adapter.close()
    assert bodies == [b"yes"] * 8


def test_each_request_gets_its_own_copy_of_the_state() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["shared"] = []
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        scope["state"]["shared"].append(1)
        scope["state"]["own"] = scope["state"].get("own", 0) + 1
        await respond(send, json.dumps(scope["state"]).encode())

    with asgi_to_wsgi(app) as adapter:
        bodies = [json.loads(call(adapter)[2]) for _ in range(2)]
    assert bodies == [{"shared": [1], "own": 1}, {"shared": [1, 1], "own": 1}]


# -- life cycle, ASGI 2 --------------------------------------------------------------------------


def threads_started_since(before: set[threading.Thread]) -> list[threading.Thread]:
    """Threads alive now that were not in ``before``. Unlike a count, threads of earlier tests
    that end meanwhile (an idle pool thread retiring after 60 s) do not disturb it."""
    return [thread for thread in threading.enumerate() if thread not in before]


def test_close_stops_the_thread_and_later_requests_get_503() -> None:
    before = set(threading.enumerate())
    adapter = asgi_to_wsgi(make_starlette([]))
    assert threads_started_since(before) == []  # started lazily
    assert call(adapter, PATH_INFO="/hello")[0] == "200 OK"
    assert len(threads_started_since(before)) == 1
    adapter.close()
    adapter.close()
    assert threads_started_since(before) == []
    assert call(adapter, PATH_INFO="/hello")[0] == "503 Service Unavailable"
    with pytest.raises(RuntimeError, match="closed"):
        adapter.start()


def test_close_waits_for_requests_in_progress() -> None:
    order: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            order.append("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})

    adapter = asgi_to_wsgi(app)
    result = adapter(environ(), start_response)
    chunks = iter(result)
    assert next(chunks) == b"a"
    closer = threading.Thread(target=adapter.close)
    closer.start()
    time.sleep(0.05)  # kept: the window a wrong close() would run shutdown in too early
    order.append("response finished")
    assert list(chunks) == [b"b"]
    result.close()  # type: ignore[attr-defined]
    closer.join()
    assert order == ["response finished", "shutdown"]


def test_close_from_the_loop_is_refused() -> None:
    errors: list[str] = []
    holder: list[ASGIAdapter] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            holder[0].close()
        except RuntimeError as exc:
            errors.append(str(exc))
        await respond(send)

    adapter = asgi_to_wsgi(app, lifespan="off")
    holder.append(adapter)
    with adapter:
        assert call(adapter)[0] == "200 OK"
    assert errors == ["close() called from the adapter's own event loop"]


def test_a_loop_killed_by_the_app_answers_503_and_never_hangs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise KeyboardInterrupt  # escapes the task and stops the event loop

    adapter = asgi_to_wsgi(app, lifespan="off")
    with caplog.at_level(logging.ERROR, logger="wsgi2asgi.asgi"):
        assert call(adapter)[0] == "503 Service Unavailable"
        loop_thread = adapter._loop_thread
        assert loop_thread is not None
        loop_thread.thread.join(10)
        assert call(adapter)[0] == "503 Service Unavailable"
        adapter.close()
    assert "the ASGI event loop thread stopped" in caplog.text


def test_start_response_that_raises_ends_the_request() -> None:
    outcome: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
        except OSError as exc:
            outcome.append(type(exc).__name__)

    def refusing_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        raise ValueError("the server refuses these headers")

    with asgi_to_wsgi(app, lifespan="off") as adapter:
        with pytest.raises(ValueError, match="refuses"):
            adapter(environ(), refusing_start_response)
        wait_until(lambda: outcome == ["ClientDisconnected"], "the app to see the disconnect")


class ClassicApp:
    """An ASGI 2 app: the class is called with the scope, the instance with receive/send."""

    def __init__(self, scope: Any) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        if self.scope["type"] == "http":
            await respond(send, b"asgi2 class")


def asgi2_function(scope: Any) -> Callable[..., Any]:
    async def instance(receive: Any, send: Any) -> None:
        await respond(send, b"asgi2 function")

    return instance


def asgi3_via_lambda(scope: Any, receive: Any, send: Any) -> Any:
    return respond(send, b"asgi3 lambda")


@pytest.mark.parametrize(
    ("app", "body"),
    [
        (ClassicApp, b"asgi2 class"),
        (asgi2_function, b"asgi2 function"),
        (asgi3_via_lambda, b"asgi3 lambda"),
    ],
)
def test_asgi2_and_asgi3_callables(app: Any, body: bytes) -> None:
    with asgi_to_wsgi(app, lifespan="off") as adapter:
        assert call(validator(adapter)) == ("200 OK", [("content-type", "text/plain")], body)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="lifespan"):
        ASGIAdapter(raises_first, lifespan="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        ASGIAdapter(raises_first, close_timeout=-1)


def test_django_asgi_handler(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import io, json
        from django.conf import settings
        from django.http import HttpResponse, JsonResponse
        from django.urls import path

        def hello(request):
            return JsonResponse({"path": request.path, "script": request.META["SCRIPT_NAME"],
                                 "body": request.body.decode()})

        settings.configure(DEBUG=False, SECRET_KEY="x", ROOT_URLCONF=__name__,
                           ALLOWED_HOSTS=["*"], INSTALLED_APPS=[])
        urlpatterns = [path("hello", hello)]
        import django
        django.setup()
        from django.core.handlers.asgi import ASGIHandler
        from wsgiref.validate import validator
        from wsgi2asgi.asgi import asgi_to_wsgi

        def start_response(status, headers, exc_info=None):
            print(status)
            return lambda data: None

        with asgi_to_wsgi(ASGIHandler()) as adapter:
            environ = {"REQUEST_METHOD": "POST", "SCRIPT_NAME": "/dj", "PATH_INFO": "/hello",
                       "QUERY_STRING": "", "SERVER_NAME": "h", "SERVER_PORT": "80",
                       "SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_LENGTH": "2", "HTTP_HOST": "h",
                       "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
                       "wsgi.input": io.BytesIO(b"hi"), "wsgi.errors": io.StringIO(),
                       "wsgi.multithread": True, "wsgi.multiprocess": False,
                       "wsgi.run_once": False}
            result = validator(adapter)(environ, start_response)
            print(b"".join(result).decode())
            result.close()
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    status, body = done.stdout.splitlines()
    assert status == "200 OK"
    assert json.loads(body) == {"path": "/dj/hello", "script": "/dj", "body": "hi"}


# -- under real WSGI servers on loopback ---------------------------------------------------------


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the request threads


@pytest.fixture
def wsgiref_url() -> Iterator[str]:
    before = set(threading.enumerate())
    adapter = asgi_to_wsgi(make_starlette([]))
    server = make_server(
        "127.0.0.1", 0, adapter, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        adapter.close()
    assert threads_started_since(before) == []  # the request threads and the loop thread


def read_events_released_midway(base_url: str, key: str) -> list[str]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        with client.stream("GET", f"/ticks?key={key}") as response:
            lines = response.iter_lines()
            first = next(lines)
            with httpx.Client(base_url=base_url, timeout=30) as other:
                assert other.get(f"/release?key={key}").text == "released"
            return [first, *(line for line in lines if line)]


def test_wsgiref_streams_forms_cookies_and_redirects(wsgiref_url: str) -> None:
    assert read_events_released_midway(wsgiref_url, "a") == ["data: first", "data: second"]
    with httpx.Client(base_url=wsgiref_url) as client:
        with client.stream("GET", "/stream") as response:
            assert list(response.iter_lines()) == [f"line {i}" for i in range(5)]
        form = client.post("/form", data={"name": "n"}, files={"file": ("f.bin", b"1" * 5000)})
        assert form.json() == {"name": "n", "size": 5000}
        redirected = client.get("/cookies")
        assert redirected.status_code == 303
        assert len(redirected.headers.get_list("set-cookie")) == 2
        assert client.get("/whoami", headers={"cookie": "a=1"}).json() == {"a": "1"}
        assert client.get("/boom").status_code == 500
        assert client.post("/echo", content=b"hello").text == "5:hello"


@contextmanager
def gunicorn_server(*options: str, env: dict[str, str] | None = None) -> Iterator[str]:
    command = [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "16", "-w", "1"]
    # gunicorn serves on a socket bound here and handed over (fd://): no port to race for.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    target = ["-b", f"fd://{listener.fileno()}", "tests.apps.asgi_under_gunicorn:app"]
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a full pipe would block it
        with listener:  # closed here once gunicorn has its copy
            process = subprocess.Popen(
                [*command, *options, *target],
                cwd=ROOT,
                env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})),
                stdout=subprocess.DEVNULL,
                stderr=log,
                pass_fds=[listener.fileno()],
            )
        try:
            wait_for_gunicorn(process, port, log)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()  # the master stops its workers
            try:
                process.wait(15)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()


def wait_for_gunicorn(process: subprocess.Popen[bytes], port: int, log: Any) -> None:
    """Wait for gunicorn's first answer. The socket was listening before gunicorn started, so
    a request waits in its backlog until a worker accepts it: no retry; and if gunicorn dies,
    the socket closes with it and the request fails at once."""
    try:
        if httpx.get(f"http://127.0.0.1:{port}/hello", timeout=30).status_code == 200:
            return
    except httpx.TransportError:
        pass
    log.seek(0)
    pytest.fail(f"gunicorn did not serve (exit status {process.poll()}):\n{log.read().decode()}")


@pytest.fixture(scope="module")
def gunicorn_url() -> Iterator[str]:
    with gunicorn_server() as url:
        yield url


async def test_gunicorn_gthread_serves_100_concurrent_requests(gunicorn_url: str) -> None:
    async with httpx.AsyncClient(base_url=gunicorn_url, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post("/echo", content=f"request {i}".encode()) for i in range(100))
        )
    assert sorted(r.text for r in responses) == sorted(
        f"{len(f'request {i}')}:{f'request {i}'[:10]}" for i in range(100)
    )


def test_gunicorn_streams_incrementally(gunicorn_url: str) -> None:
    assert read_events_released_midway(gunicorn_url, "g") == ["data: first", "data: second"]
    with httpx.Client(base_url=gunicorn_url, timeout=30) as client:
        with client.stream("GET", "/stream?n=20000") as response:
            assert sum(1 for _ in response.iter_lines()) == 20000


def test_gunicorn_takes_large_uploads_with_length_and_chunked(gunicorn_url: str) -> None:
    payload = os.urandom(8 * 1024 * 1024)

    def chunked() -> Iterator[bytes]:
        for start in range(0, len(payload), 100_000):
            yield payload[start : start + 100_000]

    with httpx.Client(base_url=gunicorn_url, timeout=60) as client:
        with_length = client.post("/echo", content=payload)
        without_length = client.put("/echo", content=chunked())
    prefix = f"{len(payload)}:{payload[:10].decode('latin-1')}"
    assert with_length.text == prefix
    assert without_length.text == prefix


def test_gunicorn_preload_with_an_adapter_started_before_fork() -> None:
    with gunicorn_server("--preload", env={"ASGI_UNDER_GUNICORN_START": "1"}) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            hello = client.get("/hello")
            assert hello.json()["db"] == "connected"
            assert client.post("/echo", content=b"after fork").text == "10:after fork"


def test_requests_leave_no_memory_behind() -> None:
    """Starlette through the adapter, from 8 WSGI threads: JSON, bodies, streams, errors."""
    from tests.memory import assert_no_leak

    with asgi_to_wsgi(make_starlette([])) as adapter:

        def one(i: int) -> None:
            kind = i % 4
            if kind == 0:
                call(adapter, PATH_INFO="/hello")
            elif kind == 1:
                body = b"x" * 3000
                call(
                    adapter,
                    REQUEST_METHOD="POST",
                    PATH_INFO="/echo",
                    CONTENT_LENGTH=str(len(body)),
                    **{"wsgi.input": io.BytesIO(body)},
                )
            elif kind == 2:
                call(adapter, PATH_INFO="/stream", QUERY_STRING="n=20")
            else:  # the WSGI server stops iterating early and closes the response
                result = adapter(environ(PATH_INFO="/stream", QUERY_STRING="n=50"), start_response)
                next(iter(result))
                result.close()  # type: ignore[attr-defined]

        def run_round() -> None:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(one, range(400)))
            settle(adapter)

        logging.disable(logging.CRITICAL)
        try:
            assert_no_leak(run_round)
        finally:
            logging.disable(logging.NOTSET)


def test_asgi_to_wsgi_takes_the_options_of_the_class_with_its_defaults() -> None:
    import inspect
    import typing

    from wsgi2asgi.asgi import ASGIAdapter, ASGIOptions

    # Each option and its default are written once, on ASGIAdapter; the function passes them on.
    keywords = inspect.signature(ASGIAdapter).parameters
    options = {n for n, p in keywords.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(typing.get_type_hints(ASGIOptions)) == options
    parameters = list(inspect.signature(asgi_to_wsgi).parameters.values())
    assert [p.kind for p in parameters] == [
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_KEYWORD,
    ]
    adapter = asgi_to_wsgi(PlainTextResponse("x"), lifespan="off", close_timeout=2.0)
    assert (adapter.lifespan, adapter.close_timeout) == ("off", 2.0)
    assert adapter.lifespan_timeout == keywords["lifespan_timeout"].default
