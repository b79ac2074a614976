"""Our server run in-process on loopback for the tests, and a raw-socket client.

Example::

    running = start_server(app, loop="uvloop")
    reply = raw(running.port, request_bytes)  # everything read until the server closes
    running.stop()

The ``serve`` fixture (``tests/server/conftest.py``) starts them on both event loops and stops
them after the test.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.loopback import wait_until
from wsgi2asgi.server.config import Config
from wsgi2asgi.server.main import Server


@dataclass
class Running:
    """A server running in a background thread."""

    server: Server
    loop: asyncio.AbstractEventLoop
    port: int
    thread: threading.Thread
    status: list[int]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        self.loop.call_soon_threadsafe(self.server.should_exit.set)
        self.thread.join(45)  # beyond the default 30 s graceful-shutdown timeout
        assert not self.thread.is_alive(), "server did not stop"
        return self.status[0] if self.status else -1


def start_server(app: Any, *, loop: str = "asyncio", **options: Any) -> Running:
    """Serve ``app`` on a thread, on an ``asyncio`` or a ``uvloop`` event loop."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options.setdefault("access_log", False)
    server = Server(Config(app=app, **options))
    ready = threading.Event()
    holder: dict[str, Any] = {}
    status: list[int] = []

    async def main() -> None:
        holder["loop"] = asyncio.get_running_loop()
        ready.set()
        status.append(await server.serve(sockets=[sock]))

    if loop == "uvloop":
        import uvloop

        target = lambda: uvloop.run(main())  # noqa: E731
    else:
        target = lambda: asyncio.run(main())  # noqa: E731
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    ready.wait(10)
    running = Running(server, holder["loop"], port, thread, status)
    wait_until(lambda: server.started.is_set() or status)  # listening, or failed to start
    return running  # the server owns the listening socket and closes it when it stops


def on_loop(running: Running, read: Callable[[], Any]) -> Any:
    """Call ``read`` on the server's event loop (its state is not safe to read elsewhere)."""

    async def call() -> Any:
        return read()

    return asyncio.run_coroutine_threadsafe(call(), running.loop).result(5)


@contextmanager
def servers(loop: str) -> Iterator[Callable[..., Running]]:
    """Start servers on ``loop`` within the block; those still running at its end are stopped.

    Example::

        with servers("uvloop") as serve:
            running = serve(app, timeout_keep_alive=1.0)
    """
    started: list[Running] = []

    def run(app: Any, **options: Any) -> Running:
        running = start_server(app, loop=loop, **options)
        started.append(running)
        return running

    yield run
    for running in started:
        if running.thread.is_alive():
            running.stop()


def raw(port: int, data: bytes, *, timeout: float = 5.0, shut: bool = False) -> bytes:
    """Send ``data`` on a fresh connection; return everything read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            chunks.append(b"<timeout>")
        return b"".join(chunks)
