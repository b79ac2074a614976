"""Deadlines on every connection, heads bounded however they arrive, and requests the app must
never see (issue #13): the real server on loopback, raw sockets, both event loops.

Timeouts are set small so that each test takes about a second; every wait is a socket read or
an event with a bound, so a server that never closes fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.server.conftest import Running, raw

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


# -- #13.6: CONNECT -------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [b"/", b"http://a.example/", b"a.example:443"])
def test_connect_is_refused_closed_and_never_reaches_the_app(serve: Serve, target: bytes) -> None:
    # #13.6: CONNECT reached the app, and llhttp (taking it for an upgrade) parsed its body as
    # the next request.
    app = Recorder()
    running = serve(app, lifespan="off")
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n"
    data = raw(
        running.port,
        b"CONNECT %s HTTP/1.1\r\nHost: a.example\r\nContent-Length: %d\r\n\r\n%s%s"
        % (target, len(smuggled), smuggled, smuggled),
    )
    assert data.startswith((b"HTTP/1.1 400", b"HTTP/1.1 405")), data[:80]
    assert b"connection: close" in data and data.count(b"HTTP/1.1") == 1
    assert app.scopes == []
