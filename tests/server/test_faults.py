"""Fault injection through the whole stack: our server → Router → adapters → app, on loopback.

Each fault has the outcome documented in ``docs/wsgi.md`` and ``docs/server.md``: a clean 500
while nothing was sent, an aborted connection once something was (never a truncated body passed
off as whole), every WSGI ``close()`` run, and the server healthy afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest

from tests.loopback import await_until, wait_until
from tests.servers import Running, raw
from wsgi2asgi.routing import Mount, Router
from wsgi2asgi.wsgi import wsgi_to_asgi

Serve = Callable[..., Running]
StartResponse = Callable[..., Any]


class Tracked:
    """A WSGI response iterable that can fail at a given chunk and records its close()."""

    closed: list[str] = []

    def __init__(self, name: str, fail_at: int | None) -> None:
        self.name = name
        self.fail_at = fail_at

    def __iter__(self) -> Iterator[bytes]:
        if self.name == "endless":
            while True:
                yield b"x" * 65536
        for index in range(3):
            if index == self.fail_at:
                raise RuntimeError(f"{self.name}: failing at chunk {index}")
            yield b"chunk%d;" % index

    def close(self) -> None:
        Tracked.closed.append(self.name)
        if self.name == "in-close":
            raise RuntimeError("close() fails")


hold = threading.Event()
held: list[str] = []  # one entry per call of /wsgi/held, made before it waits for ``hold``
left = threading.Event()  # the test's client has closed its connection


def faulty_wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Fails at the PEP 3333 point named by the path."""
    point = environ["PATH_INFO"].strip("/")
    if point == "before-start":
        raise RuntimeError("before start_response")
    if point == "held":
        held.append(point)
        hold.wait(10)
    start_response("200 OK", [("Content-Type", "text/plain")])
    fail_at = {"first-chunk": 0, "later-chunk": 2}.get(point)
    return Tracked(point, fail_at)


lifecycle: list[str] = []


def reading_wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Reads the whole body, then answers slowly: a client can vanish at every stage."""
    lifecycle.append("called")
    try:
        body = environ["wsgi.input"].read()
    except OSError as exc:  # ClientDisconnected
        lifecycle.append(f"read: {type(exc).__name__}")
        raise
    lifecycle.append("read")
    left.wait(5)  # the client leaves while the app works on the response (the test says when)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Tracked("read", None) if body else Tracked("read-empty", None)


asgi_outcomes: list[str] = []


async def faulty_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Fails before or after ``http.response.start`` as the path says."""
    if scope["type"] != "http":
        return
    point = scope["path"].rsplit("/", 1)[-1]
    if point == "endless":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"y" * 65536, "more_body": True})
        except OSError as exc:  # ClientDisconnected, as ASGI 2.4 says
            asgi_outcomes.append(type(exc).__name__)
            raise
    if point == "before-start":
        raise RuntimeError("before start")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    if point == "after-start":
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("after start")
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def stack(serve: Serve) -> Running:
    Tracked.closed.clear()
    asgi_outcomes.clear()
    lifecycle.clear()
    hold.clear()
    held.clear()
    left.clear()
    app = Router(
        [
            Mount("/wsgi", wsgi_to_asgi(faulty_wsgi, max_threads=2)),
            Mount("/read", wsgi_to_asgi(reading_wsgi, max_threads=2)),
            Mount("/asgi", faulty_asgi),
        ]
    )
    return serve(app, lifespan="off")


def closed_eventually(expected: list[str]) -> bool:
    """Whether the iterables named were closed: close() runs on the request's worker thread,
    which may finish just after the client has its response."""
    return wait_until(lambda: sorted(Tracked.closed) == sorted(expected))


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.mark.parametrize("point", ["before-start", "first-chunk"])
def test_wsgi_failure_before_any_byte_is_a_500(stack: Running, point: str) -> None:
    response = raw(
        stack.port,
        b"GET /wsgi/%s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % point.encode(),
    )
    assert status_of(response) == 500
    assert b"chunk" not in response
    if point == "first-chunk":
        assert closed_eventually(["first-chunk"])


def test_wsgi_failure_mid_body_aborts_and_close_runs(stack: Running) -> None:
    with httpx.Client(base_url=stack.url) as client, pytest.raises(httpx.RemoteProtocolError):
        client.get("/wsgi/later-chunk")
    response = raw(
        stack.port, b"GET /wsgi/later-chunk HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    assert b"chunk1;" in response and not response.endswith(b"0\r\n\r\n")  # no last chunk
    assert closed_eventually(["later-chunk", "later-chunk"])


def test_wsgi_failure_in_close_keeps_the_response_whole(stack: Running) -> None:
    response = httpx.get(stack.url + "/wsgi/in-close")
    assert response.status_code == 200
    assert response.text == "chunk0;chunk1;chunk2;"
    assert closed_eventually(["in-close"])


def test_asgi_failure_before_start_is_500_after_start_aborts(stack: Running) -> None:
    assert httpx.get(stack.url + "/asgi/before-start").status_code == 500
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(stack.url + "/asgi/after-start")
    assert httpx.get(stack.url + "/asgi/fine").text == "ok"


@pytest.mark.parametrize("mount", ["wsgi", "asgi"])
def test_client_vanishing_mid_response_stops_the_app(stack: Running, mount: str) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as sock:
        sock.sendall(b"GET /%s/endless HTTP/1.1\r\nHost: a\r\n\r\n" % mount.encode())
        received = 0
        while received < 300_000:  # the endless response is flowing
            received += len(sock.recv(65536))
    if mount == "wsgi":
        assert closed_eventually(["endless"])  # iteration stopped, close() ran
    else:
        assert wait_until(lambda: asgi_outcomes)
        assert asgi_outcomes == ["ClientDisconnected"]
    assert httpx.get(stack.url + "/asgi/fine").text == "ok"


HEAD_100 = b"POST /read/ HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n"


@pytest.mark.parametrize(
    ("stage", "sent", "expected"),
    [
        ("mid-head", HEAD_100[:30], []),
        ("after-head", HEAD_100 + b"\r\n", ["called", "read: ClientDisconnected"]),
        ("mid-body", HEAD_100 + b"\r\n" + b"x" * 50, ["called", "read: ClientDisconnected"]),
        (
            "awaiting-100-continue",
            HEAD_100 + b"Expect: 100-continue\r\n\r\n",
            ["called", "read: ClientDisconnected"],
        ),
        ("before-response", HEAD_100 + b"\r\n" + b"x" * 100, ["called", "read", "closed: read"]),
        # Reading is paused while a pipelined request waits, so the server learns of the
        # close only when it writes: the queued request may run or not, but ends either way.
        ("with-a-pipelined-request-queued", (HEAD_100 + b"\r\n" + b"x" * 100) * 2, None),
    ],
)
def test_client_vanishing_at_every_stage_frees_the_worker_and_runs_close(
    stack: Running, stage: str, sent: bytes, expected: list[str] | None
) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as sock:
        sock.sendall(sent)
        if stage == "awaiting-100-continue":
            assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        # Leave at the stage named: once the app is called (blocked reading), or once it has
        # read the whole body (working on the response); not on a timer.
        stage_reached = "read" if stage == "before-response" else "called"
        if expected is None or stage_reached in expected:
            assert wait_until(lambda: stage_reached in lifecycle, timeout=10)
    left.set()

    def ended() -> bool:
        # Every call of the app ended: its read raised ClientDisconnected or close() ran.
        calls = lifecycle.count("called")
        failed = lifecycle.count("read: ClientDisconnected")
        return calls == failed + len(Tracked.closed)

    def outcome() -> list[str]:
        return lifecycle + [f"closed: {name}" for name in Tracked.closed]

    def settled() -> bool:
        done = outcome() == expected if expected is not None else ended() and lifecycle
        return bool(done) and not (stack.server.state and stack.server.state.connections)

    wait_until(settled)  # the asserts below say what is missing
    if expected is not None:
        assert outcome() == expected
    assert ended() and (expected is not None or lifecycle[0] == "called")
    assert stack.server.state is not None and not stack.server.state.connections
    # Every worker thread the vanished client held has returned (ended()), and the route
    # still answers.
    with httpx.Client(base_url=stack.url, timeout=5) as client:
        assert client.post("/read/", content=b"abc").status_code == 200


def test_exhausted_wsgi_pool_queues_requests_without_blocking_asgi_routes(
    stack: Running,
) -> None:
    state = stack.server.state
    assert state is not None

    async def scenario() -> tuple[list[int], int]:
        async with httpx.AsyncClient(base_url=stack.url, timeout=20) as client:
            tasks = [asyncio.create_task(client.get("/wsgi/held")) for _ in range(6)]
            # Both pool threads busy (in the app), four requests queued for one.
            assert await await_until(lambda: len(held) == 2 and state.pool_waits == 4)
            # The event loop is free: ASGI routes answer while every WSGI thread is held.
            asgi = (await client.get("/asgi/fine")).status_code
            assert not any(task.done() for task in tasks)
            hold.set()
            return [r.status_code for r in await asyncio.gather(*tasks)], asgi

    statuses, asgi = asyncio.run(scenario())
    assert asgi == 200
    assert statuses == [200] * 6
    assert closed_eventually(["held"] * 6)


def test_server_is_healthy_after_every_fault(stack: Running) -> None:
    for path in ("before-start", "first-chunk", "later-chunk", "in-close"):
        raw(
            stack.port,
            b"GET /wsgi/%s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % path.encode(),
        )
    for path in ("before-start", "after-start"):
        raw(
            stack.port,
            b"GET /asgi/%s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % path.encode(),
        )
    with httpx.Client(base_url=stack.url) as client:
        assert client.get("/asgi/fine").text == "ok"
        assert client.get("/wsgi/fine").text == "chunk0;chunk1;chunk2;"
    assert closed_eventually(["first-chunk", "later-chunk", "in-close", "fine"])


def test_lifespan_failure_in_one_mounted_app_stops_the_others_and_the_server(
    serve: Serve,
) -> None:
    events: list[str] = []

    def lifespan_app(name: str, fail: bool) -> Any:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            assert scope["type"] == "lifespan"
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if fail:
                        await send({"type": "lifespan.startup.failed", "message": "no db"})
                        return
                    events.append(f"{name} started")
                    await send({"type": "lifespan.startup.complete"})
                else:
                    events.append(f"{name} stopped")
                    await send({"type": "lifespan.shutdown.complete"})
                    return

        return app

    router = Router([Mount("/a", lifespan_app("a", False)), Mount("/b", lifespan_app("b", True))])
    running = serve(router, lifespan="on")
    running.thread.join(10)
    assert not running.thread.is_alive()
    assert running.status == [3]
    assert events == ["a started", "a stopped"]


def test_the_stack_leaves_no_memory_behind_across_faults_and_disconnects(
    stack: Running,
) -> None:
    """Good requests, failing ones and clients that vanish, through the server: no leak."""
    import logging
    import socket

    from tests.memory import assert_no_leak

    paths = ["/asgi/fine", "/wsgi/fine", "/asgi/before-start", "/wsgi/first-chunk"]

    def run_round() -> None:
        with httpx.Client(base_url=stack.url) as client:
            for i in range(200):
                client.get(paths[i % len(paths)])
        for i in range(20):  # vanish mid-head and mid-body
            with socket.create_connection(("127.0.0.1", stack.port)) as sock:
                sock.sendall(
                    b"GET /asgi/fine HT"
                    if i % 2
                    else b"POST /wsgi/fine HTTP/1.1\r\nHost: a\r\nContent-Length: 99\r\n\r\nab"
                )
        # A request after them: connections are accepted in order, so once it is answered
        # the vanished ones have reached the server. Then the round ends with no work in
        # flight: no connection, no request task (a WSGI call's task ends after its close()).
        assert httpx.get(stack.url + "/asgi/fine", timeout=5).text == "ok"
        state = stack.server.state
        assert state is not None
        wait_until(lambda: not state.connections and not state.tasks)
        Tracked.closed.clear()

    logging.disable(logging.CRITICAL)
    try:
        # Six rounds: the median of what each adds still sees a leak (it grows every round),
        # and one or two rounds ending on a busy machine no longer decide the outcome.
        assert_no_leak(run_round, rounds=6)
    finally:
        logging.disable(logging.NOTSET)


def test_a_full_wsgi_pool_is_logged_and_counted(
    serve_one_loop: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    # #13.8: requests waiting for a WSGI thread were invisible (no log line, no counter).
    release = threading.Event()

    def blocking(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    caplog.set_level(logging.WARNING, logger="wsgi2asgi")
    running = serve_one_loop(blocking, lifespan="off", threads=1)
    state = running.server.state
    assert state is not None
    statuses: list[int] = []
    clients = [
        threading.Thread(
            target=lambda: statuses.append(httpx.get(running.url, timeout=10).status_code)
        )
        for _ in range(3)
    ]
    try:
        for client in clients:
            client.start()
        wait_until(lambda: state.pool_waits >= 2)  # one request runs, two wait for the thread
        assert state.pool_waits == 2
        warnings = [r for r in caplog.records if "waiting for" in r.getMessage()]
        assert len(warnings) == 1  # rate-limited: one line for the burst
        assert warnings[0].levelno == logging.WARNING
        assert "1 request waiting for" in warnings[0].getMessage()  # the queue's length then
    finally:
        release.set()
        for client in clients:
            client.join(10)
    assert statuses == [200, 200, 200]
