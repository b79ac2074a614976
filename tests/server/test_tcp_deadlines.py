"""Deadlines on every connection, heads bounded however they arrive, and requests the app must
never see (issue #13): the real server on loopback, raw sockets; the deadlines and the reads of
a head on both event loops, what the parser decides on one.

Timeouts are set small so that each test takes about a second; every wait is a socket read or
an event with a bound, so a server that never closes fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.loopback import wait_until
from tests.servers import Running, raw

Serve = Callable[..., Running]

HEADER = 0.3  # --timeout-request-header in these tests
KEEP_ALIVE = 3.0  # --timeout-keep-alive: ten times longer, so the two are told apart


class Recorder:
    """An ASGI app that records each request's scope and answers with its method, headers and
    body; ``/slow`` answers after ``slow`` seconds."""

    def __init__(self, slow: float = 1.0) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.slow = slow

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.scopes.append(scope)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/slow":
            await asyncio.sleep(self.slow)  # the app's own slowness, not a test's wait
        headers = b"".join(b"%s=%s;" % pair for pair in scope["headers"])
        payload = b"%s %s %s" % (scope["method"].encode(), headers, body)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(payload))],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def idle(running: Running) -> bool:
    """Whether no connection of the server has a request running (the response sent is not
    the end of it: the server turns idle a moment later)."""
    state = running.server.state
    return state is not None and all(c.cycle is None for c in list(state.connections))


def connect(running: Running, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", running.port), timeout=timeout)


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length (bounded by the socket's timeout)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closes ``sock`` (reading and dropping what it sends); fails the
    test if it is still open after ``seconds``."""
    start = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            sock.settimeout(max(0.01, seconds - (time.monotonic() - start)))
    except TimeoutError:
        pytest.fail(f"the connection was still open after {seconds} s")
    except ConnectionResetError:
        pass
    return time.monotonic() - start


# -- #13.2 and #13.3: a deadline from the first moment -----------------------------------------


def test_a_silent_connection_is_closed_at_the_header_deadline(serve: Serve) -> None:
    # #13.2: a connection that sent nothing waits for a head: the header deadline runs from
    # accept() (it used to get the 20 s keep-alive timeout).
    running = serve(Recorder(), timeout_request_header=HEADER, timeout_keep_alive=KEEP_ALIVE)
    with connect(running) as sock:
        assert closed_within(sock, KEEP_ALIVE * 0.6) < KEEP_ALIVE * 0.6


def test_a_blank_line_on_a_fresh_connection_stops_no_timer(serve: Serve) -> None:
    # #13.3: "\r\n" cancelled the keep-alive timer and armed nothing (llhttp begins no message
    # for an empty line): the connection stayed open for good.
    running = serve(Recorder(), timeout_request_header=HEADER, timeout_keep_alive=KEEP_ALIVE)
    with connect(running) as sock:
        sock.sendall(b"\r\n")
        assert closed_within(sock, KEEP_ALIVE * 0.6) < KEEP_ALIVE * 0.6


def test_a_blank_line_on_a_kept_alive_connection_stops_no_timer(serve: Serve) -> None:
    # #13.3, the idle case: after a response, blank lines are not a head; the keep-alive clock
    # that runs from the response goes on running.
    app = Recorder()
    running = serve(app, timeout_request_header=HEADER, timeout_keep_alive=0.5)
    with connect(running) as sock:
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        assert wait_until(lambda: idle(running))  # the blank line comes to an idle connection
        sock.sendall(b"\r\n")
        closed_within(sock, 4.0)
    assert len(app.scopes) == 1


def test_a_head_begun_on_a_kept_alive_connection_has_the_header_deadline(serve: Serve) -> None:
    running = serve(Recorder(), timeout_request_header=HEADER, timeout_keep_alive=KEEP_ALIVE)
    with connect(running) as sock:
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        assert wait_until(lambda: idle(running))
        sock.sendall(b"GET /b HTTP/1.1\r\nHo")
        assert closed_within(sock, KEEP_ALIVE * 0.6) < KEEP_ALIVE * 0.6


# -- #13.4: an unfinished head behind a slow response ------------------------------------------


def trickle_until_closed(sock: socket.socket, seconds: float) -> float:
    """Send a header line every 50 ms until the server closes; the seconds that took."""
    start = time.monotonic()
    sock.settimeout(0.05)
    while time.monotonic() - start < seconds:
        try:
            sock.sendall(b"X-Trickle: 1\r\n")
            if sock.recv(1) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue  # still open: one more line
        except OSError:
            return time.monotonic() - start  # closed while sending
    pytest.fail(f"the trickled head was still open after {seconds} s")


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickling"])
def test_an_unfinished_head_behind_a_slow_response_is_timed_out(
    serve: Serve, trickle: bool
) -> None:
    # #13.4: the head pipelined behind /slow never completes. Its clock starts when the server
    # turns to it (the response before it is complete), so the slow response is never cut; from
    # then on it has the header deadline like any head, trickling or not.
    app = Recorder(slow=4 * HEADER)
    running = serve(app, timeout_request_header=HEADER, timeout_keep_alive=KEEP_ALIVE)
    with connect(running) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")  # whole: not cut
        if trickle:
            assert trickle_until_closed(sock, KEEP_ALIVE) < KEEP_ALIVE * 0.6
        else:
            assert closed_within(sock, KEEP_ALIVE * 0.6) < KEEP_ALIVE * 0.6
    assert [scope["path"] for scope in app.scopes] == ["/slow"]


# -- #13.1: a header line that never ends --------------------------------------------------------


def get_answered_within(running: Running, seconds: float) -> float:
    start = time.monotonic()
    with connect(running, timeout=seconds) as sock:
        sock.sendall(b"GET /other HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
    return time.monotonic() - start


class EndlessHeader(threading.Thread):
    """A client sending ``total`` bytes of one header line in ``piece``-byte writes."""

    def __init__(self, running: Running, piece: int, total: int = 10 << 20) -> None:
        super().__init__(daemon=True)
        self.running, self.piece, self.total = running, piece, total
        self.sent = 0
        self.halfway = threading.Event()  # a quarter of it sent (or the server stopped it)
        self.answer = b""

    def run(self) -> None:
        with connect(self.running, timeout=20) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            data = b"b" * self.piece
            try:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
                while self.sent < self.total:
                    sock.sendall(data)
                    self.sent += len(data)
                    if self.sent >= self.total // 4:
                        self.halfway.set()
            except OSError:
                pass  # the server answered and closed
            finally:
                self.halfway.set()
            try:
                while chunk := sock.recv(65536):
                    self.answer += chunk
            except OSError:
                pass


@pytest.mark.parametrize("piece", [1024, 256 << 10])
def test_an_endless_header_line_gets_431_and_never_stalls_other_clients(
    serve: Serve, piece: int
) -> None:
    # #13.1: 10 MiB of one header line. Before: no 431, the line kept whole and re-copied on
    # every 2 KiB of it (quadratic), and another client's GET waited for seconds.
    running = serve(Recorder(), lifespan="off")  # the default head limit, 64 KiB
    client = EndlessHeader(running, piece)
    client.start()
    assert client.halfway.wait(20)
    assert get_answered_within(running, 2.0) < 2.0
    client.join(20)
    assert not client.is_alive()
    assert client.answer.startswith(b"HTTP/1.1 431"), client.answer[:80]
    assert b"connection: close" in client.answer


def test_a_long_header_line_within_a_large_limit_costs_no_quadratic_time(serve: Serve) -> None:
    # With a limit raised to take it, a 10 MiB header line in 1 KiB writes: every piece of it
    # used to re-copy the line so far (httptools joins a field cut between two feeds with
    # ``bytes +=``): 12 s on asyncio, 2 s on uvloop here before; about 0.2 s now.
    running = serve(Recorder(), lifespan="off", max_header_size=64 << 20)
    with connect(running, timeout=20) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        piece = b"b" * 1024
        for _ in range(10 * 1024):
            sock.sendall(piece)
        sock.sendall(b"\r\n\r\n")
        answer = read_response(sock)
        elapsed = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 200") and len(answer) > 10 << 20
    assert elapsed < 1.5


# -- #13.6: CONNECT -------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [b"/", b"http://a.example/", b"a.example:443"])
def test_connect_is_refused_closed_and_never_reaches_the_app(
    serve_one_loop: Serve, target: bytes
) -> None:
    # #13.6: CONNECT reached the app, and llhttp (taking it for an upgrade) parsed its body as
    # the next request.
    app = Recorder()
    running = serve_one_loop(app, lifespan="off")
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n"
    data = raw(
        running.port,
        b"CONNECT %s HTTP/1.1\r\nHost: a.example\r\nContent-Length: %d\r\n\r\n%s%s"
        % (target, len(smuggled), smuggled, smuggled),
    )
    assert data.startswith((b"HTTP/1.1 400", b"HTTP/1.1 405")), data[:80]
    assert b"connection: close" in data and data.count(b"HTTP/1.1") == 1
    assert app.scopes == []


# -- #13.7: trailers ------------------------------------------------------------------------------

TRAILED = (
    b"POST /t HTTP/1.1\r\nHost: good.example\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\nX-Injected: 1\r\nHost: evil.example\r\n\r\n"
)


def test_trailer_fields_stay_out_of_the_asgi_scope(serve_one_loop: Serve) -> None:
    # #13.7: the trailers were appended to the very list the scope holds: a second Host, past
    # the one-Host check.
    app = Recorder()
    running = serve_one_loop(app, lifespan="off")
    data = raw(running.port, TRAILED + b"GET /end HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert data.count(b"HTTP/1.1 200") == 2
    assert app.scopes[0]["headers"] == [
        (b"host", b"good.example"),
        (b"transfer-encoding", b"chunked"),
    ]
    assert b"evil" not in data and b"injected" not in data


def test_trailer_fields_stay_out_of_the_wsgi_environ(serve_one_loop: Serve) -> None:
    seen: list[dict[str, Any]] = []

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read()
        seen.append({k: v for k, v in environ.items() if k.startswith("HTTP_")})
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    running = serve_one_loop(wsgi)
    closing = TRAILED.replace(b"chunked\r\n", b"chunked\r\nConnection: close\r\n", 1)
    data = raw(running.port, closing)
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello")
    assert seen[0]["HTTP_HOST"] == "good.example"
    assert "HTTP_X_INJECTED" not in seen[0]
