"""``wsgi_to_asgi``: PEP 3333 apps as ASGI apps — streaming, errors, close(), backpressure."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import socket
import threading
from collections.abc import Iterator, MutableMapping
from typing import Any
from wsgiref.validate import validator

import httpx
import pytest
import uvicorn

from tests.apps.flask_app import create_app
from tests.loopback import await_until, wait_until
from wsgi2asgi.exceptions import ClientDisconnected, WSGIContractError
from wsgi2asgi.streams import READ_AHEAD
from wsgi2asgi.wsgi import WSGIAdapter, wsgi_to_asgi

Environ = dict[str, Any]


_adapters: list[WSGIAdapter] = []


def adapt(app: Any, **options: Any) -> WSGIAdapter:
    """``wsgi_to_asgi``, with the adapter's threads stopped (and joined) after the test."""
    adapter = wsgi_to_asgi(app, **options)
    _adapters.append(adapter)
    return adapter


@pytest.fixture(autouse=True)
def _close_adapters() -> Iterator[None]:
    yield
    while _adapters:
        _adapters.pop().close()


# -- a hand-written ASGI harness: full control of receive/send timing --------------------------


class Harness:
    """Drive one ASGI http request; record what the app sends."""

    def __init__(self, body_chunks: list[bytes] | None = None, method: str = "GET") -> None:
        chunks = body_chunks or []
        self.incoming: list[dict[str, Any]] = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ] or [{"type": "http.request", "body": b"", "more_body": False}]
        self.length = sum(len(c) for c in chunks)
        self.method = method
        self.sent: list[dict[str, Any]] = []
        self.receive_calls = 0
        self.disconnect = asyncio.Event()
        self.send_gate: asyncio.Event | None = None
        self.extra_headers: list[tuple[bytes, bytes]] = []

    def scope(self) -> dict[str, Any]:
        headers = [(b"host", b"test"), *self.extra_headers]
        if self.length:
            headers.append((b"content-length", str(self.length).encode()))
        return {
            "type": "http",
            "http_version": "1.1",
            "method": self.method,
            "scheme": "http",
            "path": "/",
            "raw_path": b"/",
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 1234),
        }

    async def receive(self) -> dict[str, Any]:
        self.receive_calls += 1
        if self.incoming:
            return self.incoming.pop(0)
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if self.send_gate is not None:
            await self.send_gate.wait()
        self.sent.append(dict(message))

    async def run(self, app: Any) -> None:
        await app(self.scope(), self.receive, self.send)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


def simple_app(environ: Environ, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


async def test_single_chunk_response_is_one_body_message() -> None:
    harness = Harness()
    await harness.run(adapt(simple_app))
    assert harness.sent == [
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")],
        },
        {"type": "http.response.body", "body": b"hello", "more_body": False},
    ]


async def test_validated_app_streams_request_and_response() -> None:
    def echo(environ: Environ, start_response: Any) -> Iterator[bytes]:
        data = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        yield data[:3]
        yield data[3:]

    harness = Harness([b"abc", b"def"], method="POST")
    await harness.run(adapt(validator(echo)))
    assert harness.status == 200
    assert harness.body == b"abcdef"
    assert harness.sent[-1]["more_body"] is False


class Closing:
    """A response iterable that records its close() and can fail on demand."""

    def __init__(self, chunks: list[bytes], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = threading.Event()
        self.yielded = 0

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise RuntimeError("boom in iteration")
            self.yielded += 1
            yield chunk

    def close(self) -> None:
        self.closed.set()


def closing_app(body: Closing, headers: list[tuple[str, str]] | None = None) -> Any:
    def app(environ: Environ, start_response: Any) -> Closing:
        start_response("200 OK", headers or [("Content-Type", "text/plain")])
        return body

    return app


async def test_close_is_called_on_success() -> None:
    body = Closing([b"a", b"b"])
    harness = Harness()
    await harness.run(adapt(closing_app(body)))
    assert body.closed.wait(5)
    assert harness.body == b"ab"


async def test_error_before_first_chunk_is_a_500_and_close_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = Closing([b"a"], fail_at=0)
    harness = Harness()
    await harness.run(adapt(closing_app(body)))
    assert harness.status == 500
    assert harness.body == b"Internal Server Error"
    assert body.closed.wait(5)
    assert "boom in iteration" in caplog.text


async def test_error_after_the_response_started_propagates_and_close_runs() -> None:
    body = Closing([b"a", b"b", b"c"], fail_at=2)
    harness = Harness()
    with pytest.raises(RuntimeError, match="boom in iteration"):
        await harness.run(adapt(closing_app(body)))
    assert harness.status == 200
    assert body.closed.wait(5)


async def test_exception_in_app_before_start_response_is_a_500() -> None:
    def broken(environ: Environ, start_response: Any) -> list[bytes]:
        raise ValueError("broken view")

    harness = Harness()
    await harness.run(adapt(broken))
    assert harness.status == 500


async def test_exception_in_close_is_logged_and_response_stays_whole(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BadClose(Closing):
        def close(self) -> None:
            raise RuntimeError("close failed")

    harness = Harness()
    await harness.run(adapt(closing_app(BadClose([b"ok"]))))
    assert harness.body == b"ok"
    assert await await_until(lambda: "close failed" in caplog.text)  # logged once close() ran


async def test_app_returning_without_start_response_is_a_500() -> None:
    def lazy(environ: Environ, start_response: Any) -> list[bytes]:
        return []

    harness = Harness()
    await harness.run(adapt(lazy))
    assert harness.status == 500


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Bad", "a\r\nSet-Cookie: evil=1")],
        [("Bad Name", "v")],
        [("X-Bell", "evil\x07")],  # PEP 3333: no control characters at all
        [("X-Del", "evil\x7f")],
    ],
    ids=["crlf", "name", "control", "del"],
)
async def test_header_injection_from_the_app_is_never_sent(headers: list[tuple[str, str]]) -> None:
    def injecting(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", headers)
        return [b"x"]

    harness = Harness()
    await harness.run(adapt(injecting))
    assert harness.status == 500
    assert all(b"evil" not in value for _, value in harness.sent[0]["headers"])


async def test_body_longer_than_content_length_is_truncated_and_iteration_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = Closing([b"123", b"45678", b"never"])
    harness = Harness()
    await harness.run(adapt(closing_app(body, [("Content-Length", "5")])))
    assert harness.body == b"12345"
    assert harness.sent[-1]["more_body"] is False
    assert body.yielded == 2  # not advanced past the declared length
    assert body.closed.wait(5)
    assert "longer than its Content-Length" in caplog.text


async def test_body_exactly_content_length_stops_iterating() -> None:
    body = Closing([b"0123", b"4567", b"89"])
    harness = Harness()
    await harness.run(adapt(closing_app(body, [("Content-Length", "8")])))
    assert harness.body == b"01234567"
    assert body.yielded == 2
    assert body.closed.wait(5)


async def test_write_after_content_length_is_dropped() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Length", "3")])
        write(b"abc")
        write(b"def")
        return []

    harness = Harness()
    await harness.run(adapt(app))
    assert harness.body == b"abc"


async def test_body_shorter_than_content_length_aborts() -> None:
    body = Closing([b"123", b"4"])
    harness = Harness()
    with pytest.raises(Exception, match="shorter than its Content-Length"):
        await harness.run(adapt(closing_app(body, [("Content-Length", "10")])))
    assert harness.status == 200
    assert all(m.get("more_body", True) for m in harness.sent[1:])  # never "complete"
    assert body.closed.wait(5)


async def test_write_callable_streams_before_the_iterable() -> None:
    def imperative(environ: Environ, start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"first ")
        write(b"second ")
        return [b"third"]

    harness = Harness()
    await harness.run(adapt(validator(imperative)))
    assert harness.body == b"first second third"


async def test_start_response_exc_info_after_headers_sent_reraises() -> None:
    seen: list[str] = []

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        write = start_response("200 OK", [])
        write(b"partial")
        try:
            raise KeyError("late")
        except KeyError:
            import sys

            try:
                start_response("500 Error", [], sys.exc_info())
            except KeyError:
                seen.append("re-raised")
                raise
        yield b""

    harness = Harness()
    with pytest.raises(KeyError):
        await harness.run(adapt(app))
    assert seen == ["re-raised"]


async def test_start_response_exc_info_before_headers_replaces_status() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        try:
            raise KeyError("early")
        except KeyError:
            import sys

            start_response("503 Service Unavailable", [("Retry-After", "1")], sys.exc_info())
        return [b"later"]

    harness = Harness()
    await harness.run(adapt(app))
    assert harness.status == 503


async def test_client_disconnect_stops_iteration_and_close_runs() -> None:
    produced = threading.Event()
    body_chunks: list[bytes] = []

    class Endless(Closing):
        def __iter__(self) -> Iterator[bytes]:
            while True:
                self.yielded += 1
                produced.set()
                yield b"x" * 1024

    body = Endless(body_chunks)
    harness = Harness()
    task = asyncio.create_task(harness.run(adapt(closing_app(body))))
    assert await asyncio.to_thread(produced.wait, 5)  # the app is streaming
    harness.disconnect.set()
    await asyncio.wait_for(task, 5)
    assert await asyncio.to_thread(body.closed.wait, 5)
    count = body.yielded
    await asyncio.sleep(0.05)  # kept: that nothing more is produced for a while is the test
    assert body.yielded == count  # iteration has stopped


async def test_request_body_is_pulled_only_as_the_app_reads() -> None:
    ahead: list[int] = []
    harness = Harness([b"x" * 65536 for _ in range(50)], method="POST")

    def reader(environ: Environ, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        total = 0
        while chunk := stream.read(65536):
            total += len(chunk)
            ahead.append(harness.receive_calls * 65536 - total)
        start_response("200 OK", [])
        return [str(total).encode()]

    await harness.run(adapt(reader))
    assert harness.body == str(50 * 65536).encode()
    # Bytes taken from the client beyond what the app read: what the loop received ahead
    # (READ_AHEAD) and what the last read took from there but the app has not read yet.
    assert max(ahead) <= 2 * READ_AHEAD


async def test_slow_client_pauses_the_app() -> None:
    body = Closing([b"x" * 65536 for _ in range(200)])
    harness = Harness()
    harness.send_gate = asyncio.Event()
    task = asyncio.create_task(harness.run(adapt(closing_app(body), high_water=256 * 1024)))
    # The app has produced high_water's worth (4 chunks) while the client reads nothing...
    assert await await_until(lambda: body.yielded >= 4)
    # ...and then nothing much more: kept, a window in which it could run ahead is the test.
    await asyncio.sleep(0.2)
    paused_at = body.yielded
    assert paused_at < 10  # at most ~high_water bytes queued ahead of the client
    harness.send_gate.set()
    await asyncio.wait_for(task, 10)
    assert body.yielded == 200
    assert len(harness.body) == 200 * 65536


async def test_input_readline_readlines_and_iteration() -> None:
    def lines(environ: Environ, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        first = stream.readline()
        limited = stream.readline(2)
        rest = stream.readlines()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr([first, limited, rest]).encode()]

    harness = Harness([b"one\ntw", b"o\nthree\n", b"four"], method="POST")
    await harness.run(adapt(validator(lines)))
    assert harness.body == repr([b"one\n", b"tw", [b"o\n", b"three\n", b"four"]]).encode()


async def test_input_iteration_and_read_at_the_end() -> None:
    def lines(environ: Environ, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        seen = list(stream)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr([seen, stream.read(10), stream.read(1), stream.readline()]).encode()]

    harness = Harness([b"a\nb", b"\nc"], method="POST")
    await harness.run(adapt(validator(lines)))
    assert harness.body == repr([[b"a\n", b"b\n", b"c"], b"", b"", b""]).encode()


async def test_file_wrapper_streams_the_file_and_closes_it() -> None:
    class TrackedFile(io.BytesIO):
        closed_by_wrapper = False

        def close(self) -> None:
            TrackedFile.closed_by_wrapper = True
            super().close()

    def download(environ: Environ, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](TrackedFile(b"0123456789"), 4)

    harness = Harness()
    await harness.run(adapt(validator(download)))
    assert harness.body == b"0123456789"
    assert await await_until(lambda: TrackedFile.closed_by_wrapper)  # close() runs after


async def test_input_never_reads_past_content_length() -> None:
    harness = Harness([b"abc"], method="POST")
    harness.incoming[0]["more_body"] = True  # the server would send more: the app must not see it
    harness.incoming.append({"type": "http.request", "body": b"SMUGGLED", "more_body": False})

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        data = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [data]

    await harness.run(adapt(app))
    assert harness.body == b"abc"


async def test_lifespan_completes_and_websocket_is_refused() -> None:
    adapter = adapt(simple_app)
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await adapter({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    sent.clear()
    messages[:] = [{"type": "websocket.connect"}]
    await adapter({"type": "websocket", "path": "/"}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1000}]


async def test_each_request_runs_on_its_own_thread() -> None:
    # asgiref runs every request on ONE thread: two requests meeting here would time out.
    barrier = threading.Barrier(2, timeout=5)
    names: list[str] = []

    def meet(environ: Environ, start_response: Any) -> list[bytes]:
        barrier.wait()
        names.append(threading.current_thread().name)
        start_response("200 OK", [])
        return [b"met"]

    adapter = adapt(meet, max_threads=2)
    harnesses = [Harness(), Harness()]
    await asyncio.gather(*(h.run(adapter) for h in harnesses))
    assert [h.body for h in harnesses] == [b"met", b"met"]
    assert len(set(names)) == 2


async def test_app_starts_before_the_whole_body_has_arrived() -> None:
    started = threading.Event()
    second = asyncio.Event()
    messages = [
        {"type": "http.request", "body": b"first", "more_body": True},
        {"type": "http.request", "body": b"second", "more_body": False},
    ]
    harness = Harness([b"first", b"second"], method="POST")

    async def receive() -> dict[str, Any]:
        if len(messages) == 1:
            await second.wait()  # the client has not sent this yet
        return messages.pop(0)

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        first = environ["wsgi.input"].read(5)
        started.set()
        rest = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [first + b"+" + rest]

    task = asyncio.create_task(adapt(app)(harness.scope(), receive, harness.send))
    assert await asyncio.to_thread(started.wait, 5)
    second.set()
    await asyncio.wait_for(task, 5)
    assert harness.body == b"first+second"


async def test_disconnect_while_reading_the_body_raises_client_disconnected() -> None:
    seen: list[BaseException] = []
    failed = threading.Event()
    body = Closing([])
    harness = Harness([b"partial", b"never sent"], method="POST")
    harness.incoming[1:] = []  # the client goes away after the first chunk
    harness.disconnect.set()

    def app(environ: Environ, start_response: Any) -> Closing:
        try:
            environ["wsgi.input"].read()
        except OSError as exc:
            seen.append(exc)
            failed.set()
            raise
        return body

    await harness.run(adapt(app))
    assert await asyncio.to_thread(failed.wait, 5)
    assert len(seen) == 1 and isinstance(seen[0], ClientDisconnected)
    assert harness.sent == []  # nobody to answer


async def test_disconnect_is_noticed_while_streaming_with_the_body_unread() -> None:
    # The app never reads the body; only receive() can say the client left, and servers
    # (uvicorn) silently drop what is sent after that: the app must still stop.
    class Endless(Closing):
        def __iter__(self) -> Iterator[bytes]:
            while True:
                self.yielded += 1
                yield b"x" * 1024

    body = Endless([])
    harness = Harness([b"unread" * 1000], method="POST")
    task = asyncio.create_task(harness.run(adapt(closing_app(body))))
    assert await await_until(lambda: body.yielded >= 10)  # streaming
    harness.disconnect.set()
    await asyncio.wait_for(task, 5)
    assert await asyncio.to_thread(body.closed.wait, 5)


async def test_head_sends_no_body_and_stops_iterating() -> None:
    body = Closing([b"a" * 10, b"b" * 10, b"c" * 10])
    harness = Harness(method="HEAD")
    await harness.run(adapt(closing_app(body, [("Content-Length", "30")])))
    assert harness.status == 200
    assert (b"content-length", b"30") in harness.sent[0]["headers"]
    assert harness.body == b""
    assert body.yielded == 1
    assert body.closed.wait(5)


async def test_small_chunks_queued_together_are_coalesced() -> None:
    body = Closing([b"%d," % i for i in range(100)])
    harness = Harness()
    harness.send_gate = asyncio.Event()
    task = asyncio.create_task(harness.run(adapt(closing_app(body))))
    await asyncio.to_thread(body.closed.wait, 5)  # everything is queued, nothing sent yet
    harness.send_gate.set()
    await asyncio.wait_for(task, 5)
    assert harness.body == b"".join(b"%d," % i for i in range(100))
    assert len(harness.sent) < 10


@pytest.mark.parametrize(("limit", "status"), [(5, 400), (None, 200)])
async def test_duplicate_header_limit(limit: int | None, status: int) -> None:
    harness = Harness()
    harness.extra_headers = [(b"x-dup", b"v")] * 10
    await harness.run(adapt(simple_app, duplicate_header_limit=limit))
    assert harness.status == status
    if status == 400:
        assert harness.body == b"Bad Request: Too many duplicate headers"


async def test_too_many_header_lines_is_a_400() -> None:
    harness = Harness()
    harness.extra_headers = [(b"x-%d" % i, b"v") for i in range(20)]
    await harness.run(adapt(simple_app, max_headers=10))
    assert harness.status == 400


async def test_refused_start_response_is_logged_even_when_the_app_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        try:
            start_response("200 OK", [("X-Bad", "a\nb")])
        except WSGIContractError:
            start_response("200 OK", [("X-Good", "ok")])
        return [b"recovered"]

    harness = Harness()
    await harness.run(adapt(app))
    assert harness.body == b"recovered"
    assert "start_response refused" in caplog.text


def test_options_are_validated() -> None:
    with pytest.raises(ValueError):
        wsgi_to_asgi(simple_app, max_threads=0)
    with pytest.raises(ValueError):
        wsgi_to_asgi(simple_app, high_water=0)


async def test_thread_pool_is_bounded_and_waiting_requests_do_not_block_the_loop() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()
    release = threading.Event()

    def slow(environ: Environ, start_response: Any) -> list[bytes]:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        release.wait(5)
        with lock:
            active -= 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    adapter = adapt(slow, max_threads=2)
    harnesses = [Harness() for _ in range(6)]
    tasks = [asyncio.create_task(h.run(adapter)) for h in harnesses]
    # Both threads are busy and four requests wait for one: the loop still runs this
    # coroutine (and is the one that releases the workers).
    assert await await_until(lambda: active == 2)
    await asyncio.sleep(0.05)  # kept: that no third worker starts meanwhile is the test
    assert peak == 2
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert peak == 2
    assert all(h.body == b"done" for h in harnesses)


# -- real Flask app through httpx.ASGITransport ------------------------------------------------


@pytest.fixture
async def flask_client() -> Any:
    transport = httpx.ASGITransport(app=adapt(create_app()))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_flask_form_post(flask_client: httpx.AsyncClient) -> None:
    response = await flask_client.post("/form", data={"name": "Ada", "tag": ["a", "b"]})
    assert response.json() == {"name": "Ada", "tags": ["a", "b"]}


async def test_flask_multipart_upload(flask_client: httpx.AsyncClient) -> None:
    payload = bytes(range(256)) * 4096
    response = await flask_client.post(
        "/upload", files={"file": ("data.bin", payload)}, data={"note": "hi"}
    )
    assert response.json() == {"name": "data.bin", "size": len(payload), "note": "hi"}


async def test_flask_multiple_set_cookie_and_cookie_header(flask_client: httpx.AsyncClient) -> None:
    response = await flask_client.get("/cookies")
    assert len(response.headers.get_list("set-cookie")) == 2
    echoed = await flask_client.get("/echo-cookie", headers={"cookie": "x=1; y=2"})
    assert echoed.json() == {"x": "1", "y": "2"}


async def test_flask_redirect_error_and_stream(flask_client: httpx.AsyncClient) -> None:
    redirected = await flask_client.get("/go")
    assert redirected.status_code == 302
    assert redirected.headers["location"] == "/target"
    assert (await flask_client.get("/error")).status_code == 500
    streamed = await flask_client.get("/stream")
    assert streamed.text == "".join(f"{i}," for i in range(1000))
    head = await flask_client.head("/go")
    assert head.status_code == 302


# -- real Django app through httpx.ASGITransport -----------------------------------------------


@pytest.fixture
async def django_client() -> Any:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    from tests.apps import django_app

    django_app.configure()
    keys = ("ROOT_URLCONF", "ALLOWED_HOSTS", "MIDDLEWARE")
    overrides = {key: django_app.SETTINGS[key] for key in keys}
    with override_settings(**overrides):
        transport = httpx.ASGITransport(app=adapt(WSGIHandler()))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def test_django_form_and_multipart_upload(django_client: httpx.AsyncClient) -> None:
    response = await django_client.post("/form", data={"name": "Ada", "tag": ["a", "b"]})
    assert response.json() == {"name": "Ada", "tags": ["a", "b"]}
    payload = bytes(range(256)) * (4 * 4096)  # 4 MiB: Django spools it to a temporary file
    response = await django_client.post(
        "/upload", files={"file": ("big.bin", payload)}, data={"note": "n"}
    )
    assert response.json() == {"name": "big.bin", "size": len(payload), "note": "n"}


async def test_django_request_finished_fires_because_close_is_called(
    django_client: httpx.AsyncClient,
) -> None:
    # Django releases DB connections and temporary files in response.close() (the
    # request_finished signal); peers that never call close() leak them (werkzeug #1259).
    from django.core.signals import request_finished

    finished = threading.Event()

    def on_finished(**kwargs: Any) -> None:
        finished.set()

    request_finished.connect(on_finished)
    try:
        assert (await django_client.get("/stream")).status_code == 200
        assert await asyncio.to_thread(finished.wait, 5)
    finally:
        request_finished.disconnect(on_finished)


async def test_django_cookies_redirect_error_stream_and_head(
    django_client: httpx.AsyncClient,
) -> None:
    cookies = await django_client.get("/cookies")
    assert len(cookies.headers.get_list("set-cookie")) == 2
    echoed = await django_client.get("/echo", headers={"cookie": "x=1; y=2"})
    assert echoed.json()["cookies"] == {"x": "1", "y": "2"}
    redirected = await django_client.get("/go")
    assert (redirected.status_code, redirected.headers["location"]) == (302, "/target")
    assert (await django_client.get("/error")).status_code == 500
    streamed = await django_client.get("/stream")
    assert streamed.text == "".join(f"{i}," for i in range(1000))
    head = await django_client.head("/cookies")
    assert (head.status_code, head.content) == (200, b"")
    assert len(head.headers.get_list("set-cookie")) == 2


# -- a real server on loopback: uvicorn --------------------------------------------------------


@contextlib.contextmanager
def serve(app: Any, **options: Any) -> Iterator[str]:
    """Run ``app`` under a real uvicorn on a free loopback port; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        if not wait_until(lambda: server.started or not thread.is_alive()) or not server.started:
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def uvicorn_url() -> Iterator[str]:
    with serve(adapt(create_app())) as url:
        yield url


def test_keep_alive_sequential_requests_under_uvicorn(uvicorn_url: str) -> None:
    with httpx.Client(base_url=uvicorn_url) as client:
        for i in range(200):
            response = client.post("/form", data={"name": str(i)})
            assert response.status_code == 200
            assert response.json()["name"] == str(i)


async def test_100_concurrent_requests_under_uvicorn(uvicorn_url: str) -> None:
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=uvicorn_url, limits=limits, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post("/form", data={"name": str(i)}) for i in range(100))
        )
    assert [r.json()["name"] for r in responses] == [str(i) for i in range(100)]


UPLOAD_MIB = 512


async def test_large_streamed_upload_never_sits_in_memory_under_uvicorn(uvicorn_url: str) -> None:
    chunk = b"z" * (1024 * 1024)

    async def generate() -> Any:
        for _ in range(UPLOAD_MIB):
            yield chunk

    async with httpx.AsyncClient(base_url=uvicorn_url, timeout=60) as client:
        response = await client.post("/size", content=generate())
    result = response.json()
    assert result["size"] == UPLOAD_MIB * len(chunk)
    # The adapter held at most a read-ahead and a server message at any time, not the body.
    assert 0 < result["peak_buffered"] <= 2 * READ_AHEAD + 1024 * 1024


def test_root_path_and_percent_encoded_path_under_uvicorn() -> None:
    with serve(adapt(create_app()), root_path="/app") as url:
        with httpx.Client(base_url=url) as client:
            response = client.get("/environ", params={"q": "1"})
            environ = response.json()
            with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as sock:
                sock.sendall(
                    b"GET /a%2Fb/caf%C3%A9 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                )
                raw = b""
                while data := sock.recv(65536):
                    raw += data
    assert environ["SCRIPT_NAME"] == "/app"
    assert environ["PATH_INFO"] == "/environ"
    assert environ["QUERY_STRING"] == "q=1"
    assert isinstance(environ["SERVER_PORT"], str) and isinstance(environ["REMOTE_PORT"], str)
    assert raw.startswith(b"HTTP/1.1 404")  # routed by PATH_INFO "/a/b/caf\xc3\xa9"


def test_client_disconnect_stops_an_endless_response_under_uvicorn() -> None:
    closed = threading.Event()

    def endless(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        try:
            while True:
                yield b"x" * 4096
        finally:
            closed.set()

    with serve(adapt(endless)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            body = b"unread" * 20000
            head = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)
            sock.sendall(head + body)
            received = 0
            while received < 256 * 1024:
                received += len(sock.recv(65536))
        assert closed.wait(5)


def test_websocket_handshake_is_refused_with_403_under_uvicorn() -> None:
    handshake = (
        b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with serve(adapt(simple_app), ws="websockets-sansio") as url:
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as sock:
            sock.sendall(handshake)
            reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 403")


def test_adapter_repr_names_the_app() -> None:
    assert "max_threads=3" in repr(WSGIAdapter(simple_app, max_threads=3))


async def test_context_variables_of_the_request_reach_the_app() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [request_id.get("unset").encode()]

    adapter = adapt(app)
    harness = Harness()
    request_id.set("req-42")  # as tracing middleware in front of the adapter would
    await harness.run(adapter)
    assert harness.body == b"req-42"


async def test_http2_request_body_without_content_length_is_read() -> None:
    def echo(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["wsgi.input"].read()]

    harness = Harness([b"framed ", b"by HTTP/2"], method="POST")
    scope = harness.scope()
    scope["http_version"] = "2"
    scope["headers"] = [(name, value) for name, value in scope["headers"] if name == b"host"]
    await adapt(echo)(scope, harness.receive, harness.send)
    assert harness.body == b"framed by HTTP/2"


async def test_cancelled_request_releases_a_worker_waiting_for_the_body() -> None:
    # The server gives up on the request (cancels the ASGI task) while the app waits for body
    # bytes that will never come: the worker must not wait forever for receive().
    reading = threading.Event()
    outcome: list[BaseException] = []
    done = threading.Event()
    harness = Harness([b"partial", b"never sent"], method="POST")
    harness.incoming[1:] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        try:
            assert stream.read(7) == b"partial"  # here already
            reading.set()
            stream.read()  # waits for bytes that never come
        except BaseException as exc:
            outcome.append(exc)
            raise
        finally:
            done.set()
        return []

    task = asyncio.create_task(harness.run(adapt(app)))
    # The worker is in its last read(), or a few bytecodes from it (which then sees at once
    # that the call is over): either way the cancel must reach it.
    assert await asyncio.to_thread(reading.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(done.wait, 5)
    assert isinstance(outcome[0], ClientDisconnected)


def test__coalesce_merges_small_body_runs_only() -> None:
    from wsgi2asgi.streams import _coalesce

    def body(data: bytes, more: bool = True) -> tuple[dict[str, Any], int]:
        return {"type": "http.response.body", "body": data, "more_body": more}, len(data)

    start = ({"type": "http.response.start", "status": 200, "headers": []}, 0)
    big = b"x" * (64 * 1024)
    items: list[Any] = [start, body(b"a"), body(b"b"), body(big), body(b"c", more=False)]
    merged = _coalesce(items)
    assert merged == [
        start,
        ({"type": "http.response.body", "body": b"ab", "more_body": True}, 2),
        body(big),  # merging it would pass the limit: sent as it is
        body(b"c", more=False),
    ]
    items = [body(b"a"), body(b"b"), body(b"c", more=False)]
    assert _coalesce(items) == [body(b"abc", more=False)]


async def test_wsgi_errors_is_per_request_and_flushed_at_the_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        environ["wsgi.errors"].write("complete line\npartial line")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    adapter = adapt(validator(app))
    for _ in range(2):
        await Harness().run(adapter)

    def messages() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "wsgi2asgi.wsgi.errors"]

    assert await await_until(lambda: len(messages()) == 4)  # flushed as each call ends
    # A shared stream would have logged "partial linecomplete line".
    assert sorted(messages()) == ["complete line"] * 2 + ["partial line"] * 2


def test_requests_leave_no_live_objects_behind() -> None:
    """Flask through the adapter, with uploads, disconnects and errors: no leak."""
    import logging

    from tests.memory import assert_no_leak

    calls = _Calls()
    flask = adapt(calls.counted(create_app()))
    failing = adapt(calls.counted(_failing_app))

    async def one(i: int) -> None:
        kind = i % 4
        if kind == 0:
            await Harness().run(flask)
        elif kind == 1:
            harness = Harness([b"a=1&b=", b"2" * 2000], method="POST")
            harness.extra_headers = [(b"content-type", b"application/x-www-form-urlencoded")]
            await harness.run(flask)
        elif kind == 2:  # the client leaves while the body is still coming
            harness = Harness([b"x" * 100, b"y" * 100], method="POST")
            harness.incoming.pop()
            harness.disconnect.set()
            await harness.run(flask)
        else:  # an app error: a 500
            await Harness().run(failing)

    async def batch() -> None:
        for start in range(0, 600, 20):
            await asyncio.gather(*(one(i) for i in range(start, start + 20)))

    def run_round() -> None:
        asyncio.run(batch())
        # Workers whose client left finish after the ASGI call returned: a round ends when
        # all 600 WSGI calls have (their response's close() run).
        assert calls.wait_ended(600, timeout=30), f"{calls.ended} of 600 WSGI calls ended"
        calls.ended = 0

    # pytest keeps every log record of a test (with its traceback): not ours to count.
    logging.disable(logging.CRITICAL)
    try:
        assert_no_leak(run_round)
    finally:
        logging.disable(logging.NOTSET)


def _failing_app(environ: Environ, start_response: Any) -> list[bytes]:
    raise RuntimeError("boom")


class _Calls:
    """Counts the WSGI calls that ended: the app raised, or its response's close() ran."""

    def __init__(self) -> None:
        self.ended = 0
        self._changed = threading.Condition()

    def counted(self, app: Any) -> Any:
        def call(environ: Environ, start_response: Any) -> Any:
            try:
                result = app(environ, start_response)
            except BaseException:
                self._end()
                raise
            return _ThenCount(result, self._end)

        return call

    def _end(self) -> None:
        with self._changed:
            self.ended += 1
            self._changed.notify_all()

    def wait_ended(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.ended >= count, timeout)


class _ThenCount:
    """A response iterable whose close() closes the app's, then calls ``then``."""

    def __init__(self, result: Any, then: Any) -> None:
        self.result = result
        self.then = then

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.result)

    def close(self) -> None:
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
        finally:
            self.then()


async def test_the_asgi_call_returns_only_after_close_returned() -> None:
    # #12.7: the last body message goes out first (the client loses no time), but the ASGI
    # call returns only once close() has: the server's accounting (--limit-concurrency, the
    # graceful-shutdown drain) and an in-process client see the request's side effects done.
    closing, release = threading.Event(), threading.Event()
    order: list[str] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"done"

        def close(self) -> None:  # Django's request_finished, a generator's finally
            closing.set()
            release.wait(5)
            order.append("close() returned")

    def app(environ: Environ, start_response: Any) -> Body:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return Body()

    harness = Harness()
    task = asyncio.create_task(harness.run(adapt(app)))
    assert await asyncio.to_thread(closing.wait, 5)
    # The final body message is sent while close() still runs.
    assert await await_until(lambda: len(harness.sent) == 2)
    assert harness.sent[-1] == {"type": "http.response.body", "body": b"done", "more_body": False}
    done, _ = await asyncio.wait({task}, timeout=0.2)  # a close() that takes 200 ms
    assert not done, "the ASGI call returned while close() was running"
    release.set()
    await asyncio.wait_for(task, 5)
    order.append("ASGI call returned")
    assert order == ["close() returned", "ASGI call returned"]


def test_wsgi_to_asgi_takes_the_options_of_the_class_with_its_defaults() -> None:
    import inspect
    import typing

    from wsgi2asgi.wsgi import WSGIOptions

    # Each option and its default are written once, on WSGIAdapter; the function passes them on.
    keywords = inspect.signature(WSGIAdapter).parameters
    options = {n for n, p in keywords.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(typing.get_type_hints(WSGIOptions)) == options
    parameters = list(inspect.signature(wsgi_to_asgi).parameters.values())
    assert [p.kind for p in parameters] == [
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_KEYWORD,
    ]
    adapter = wsgi_to_asgi(simple_app, max_threads=3, duplicate_header_limit=None)
    assert (adapter.max_threads, adapter.duplicate_header_limit) == (3, None)
    assert wsgi_to_asgi(simple_app).high_water == keywords["high_water"].default


# -- hand-offs between the loop and the worker (#17) -------------------------------------------


def _count_from_workers(monkeypatch: pytest.MonkeyPatch, name: str) -> list[object]:
    """Record the calls of the running loop's method ``name`` made from other threads."""
    loop = asyncio.get_running_loop()
    original = getattr(loop, name)
    calls: list[object] = []

    def counting(callback: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            calls.append(callback)
        return original(callback, *args, **kwargs)

    monkeypatch.setattr(loop, name, counting)
    return calls


async def test_a_one_chunk_response_wakes_the_loop_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The body and the end of the call (nothing to close: a list) go back to the loop together:
    # one call_soon_threadsafe per request, where there were two (the body, then "closed").
    wakes = _count_from_workers(monkeypatch, "call_soon_threadsafe")
    adapter = adapt(simple_app)
    for _ in range(20):
        harness = Harness()
        await harness.run(adapter)
        assert harness.body == b"hello"
    assert len(wakes) <= 20


async def test_a_response_whole_in_one_burst_starts_no_watcher_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A GET answered in one burst (start and last body together) has nothing left to watch a
    # disconnect for: no task is made for it (one per request before).
    loop = asyncio.get_running_loop()
    original = loop.create_task
    created: list[object] = []

    def counting(coro: Any, **kwargs: Any) -> Any:
        created.append(coro)
        return original(coro, **kwargs)

    monkeypatch.setattr(loop, "create_task", counting)
    harness = Harness()
    await harness.run(adapt(simple_app))
    assert harness.body == b"hello"
    assert created == []


async def test_a_read_of_one_whole_message_returns_its_bytes_uncopied() -> None:
    # wsgi.input hands the server's bytes on as they are: a 64 KiB read of a 64 KiB message is
    # that message's bytes object (before: copied into a bytearray and out again).
    chunks = [b"a" * 65536, b"b" * 65536, b"c" * 100]
    harness = Harness(list(chunks), method="POST")
    seen: list[bytes] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        while data := stream.read(65536):
            seen.append(data)
        start_response("204 No Content", [])
        return []

    await harness.run(adapt(app))
    assert harness.status == 204
    assert [data is chunk for data, chunk in zip(seen, chunks, strict=True)] == [True] * 3
