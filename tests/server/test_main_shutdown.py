"""Shutdown over the real server: what runs before the process exits, and what apps are told.

* A WSGI response's ``close()`` still running when the server is told to stop finishes before
  the server exits (#12.7): the request counts as in flight until ``close()`` returned.
* At the graceful-shutdown deadline every app is told, not cut (#13.9): an ASGI app waiting
  in ``receive()`` gets ``http.disconnect`` (``websocket.disconnect``), a WSGI response stops
  being iterated and its ``close()`` runs on its thread; after a short bounded grace the
  server exits anyway.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.loopback import websocket_upgrade
from tests.servers import Running
from wsgi2asgi.routing import Mount, Router
from wsgi2asgi.server.main import SHUTDOWN_GRACE
from wsgi2asgi.wsgi import wsgi_to_asgi

Serve = Callable[..., Running]
StartResponse = Callable[..., Any]


def stopped_within(running: Running, seconds: float) -> bool:
    """Ask the server to stop (as SIGTERM does); whether it exited within ``seconds``."""
    running.loop.call_soon_threadsafe(running.server.should_exit.set)
    running.thread.join(seconds)
    return not running.thread.is_alive()


def test_shutdown_waits_for_a_wsgi_close_still_running(serve: Serve) -> None:
    closing, release = threading.Event(), threading.Event()
    order: list[str] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"done"

        def close(self) -> None:  # a close() that takes a while: Django's request_finished
            closing.set()
            release.wait(10)
            order.append("close() returned")

    def app(environ: dict[str, Any], start_response: StartResponse) -> Body:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return Body()

    running = serve(app, lifespan="off")
    # The client has its whole response at once: close() runs after it.
    assert httpx.get(running.url, timeout=5).text == "done"
    assert closing.wait(5)
    assert not stopped_within(running, 0.3), "the server exited while close() was running"
    release.set()
    running.thread.join(10)
    assert not running.thread.is_alive()
    order.append("server exited")
    assert order == ["close() returned", "server exited"]
    assert running.status == [0]


told: list[str] = []  # what the ASGI apps got from receive() at the deadline, or "cancelled"
closed: list[str] = []  # the WSGI responses whose close() returned, with the thread it ran on


class Endless:
    """A WSGI response that never ends; its close() takes a while (a teardown's work)."""

    def __iter__(self) -> Iterator[bytes]:
        while True:
            yield b"x" * 65536

    def close(self) -> None:
        threading.Event().wait(0.2)  # the app's own work, e.g. a database teardown
        closed.append(threading.current_thread().name)


def endless_wsgi(environ: dict[str, Any], start_response: StartResponse) -> Endless:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Endless()


async def waiting_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Starts a stream, then waits in receive() (long polling, server-sent events)."""
    try:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": "streaming"})
        else:
            await receive()  # the (empty) request body
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"streaming", "more_body": True})
        told.append((await receive())["type"])
    except asyncio.CancelledError:
        told.append("cancelled")
        raise


def open_stream(port: int, request: bytes, first: bytes) -> socket.socket:
    """Send ``request``; return the socket once ``first`` has arrived (the client then reads
    no more)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(request)
    seen = b""
    while first not in seen:
        chunk = sock.recv(65536)
        assert chunk, seen[:200]
        seen += chunk
    return sock


@pytest.mark.parametrize("kind", ["http", "websocket"])
def test_at_the_deadline_apps_are_told_and_wsgi_close_runs(serve: Serve, kind: str) -> None:
    told.clear()
    closed.clear()
    app = Router(
        [Mount("/wsgi", wsgi_to_asgi(endless_wsgi, max_threads=2)), Mount("/asgi", waiting_asgi)]
    )
    running = serve(app, lifespan="off", timeout_graceful_shutdown=0.5)
    asgi_request = (
        websocket_upgrade(b"/asgi/")
        if kind == "websocket"
        else b"GET /asgi/ HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    streams = [
        open_stream(running.port, b"GET /wsgi/ HTTP/1.1\r\nHost: a\r\n\r\n", b"xxxx"),
        open_stream(running.port, asgi_request, b"streaming"),
    ]
    try:
        started = time.monotonic()
        assert stopped_within(running, 10)
        elapsed = time.monotonic() - started
    finally:
        for sock in streams:
            sock.close()
    assert told == [f"{kind}.disconnect"]  # not CancelledError
    assert len(closed) == 1 and closed[0].startswith("wsgi2asgi-wsgi")  # on the worker
    assert running.status == [0]
    assert elapsed < 0.5 + SHUTDOWN_GRACE + 2


def test_an_app_that_ignores_the_disconnect_is_cancelled_after_the_grace(serve: Serve) -> None:
    cancelled = threading.Event()

    async def deaf(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"streaming", "more_body": True})
        try:
            await asyncio.Event().wait()  # never receives, never sends: cannot be told
        except asyncio.CancelledError:
            cancelled.set()
            raise

    running = serve(deaf, lifespan="off", timeout_graceful_shutdown=0.2)
    with open_stream(running.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"streaming"):
        started = time.monotonic()
        assert stopped_within(running, 10)
        elapsed = time.monotonic() - started
    assert cancelled.is_set()
    assert running.status == [0]
    assert SHUTDOWN_GRACE <= elapsed < 0.2 + 2 * SHUTDOWN_GRACE + 2
