"""The write deadline (``--timeout-write``): a client that never reads its response (#13.5).

Without it, such a client held its connection for ever, and with a WSGI app a worker thread
too: two of them stopped every other request of a two-thread pool. With it, a connection whose
response makes no progress for ``timeout_write`` seconds is closed; the app is told (WSGI: its
``close()`` runs; ASGI: ``http.disconnect``, and ``send()`` raises).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from tests.loopback import wait_until
from tests.servers import Running

Serve = Callable[..., Running]
StartResponse = Callable[..., Any]

CHUNK = b"x" * 65536


def reset_by_the_server(sock: socket.socket) -> bool:
    """Whether the connection is over for the client without it reading a byte (up to 5 s).

    A plain close() of a socket with unsent data leaves the kernel sending it (and the client
    waiting) for minutes: the server must reset the connection, dropping what is queued.
    """
    # TCP_INFO's first byte is the state; 1 is TCP_ESTABLISHED (linux/tcp_states.h).
    return wait_until(lambda: sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 1)


def read_to_the_end(sock: socket.socket) -> bool:
    """Whether the server closed the connection (read what it sent, up to 10 s)."""
    sock.settimeout(10)
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass  # aborted with bytes still on their way
    except TimeoutError:
        return False
    return True


def never_read(port: int, target: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # fills sooner
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % target)
    return sock


def test_clients_that_never_read_free_their_wsgi_threads(serve: Serve) -> None:
    called: list[str] = []
    closed: list[str] = []
    both_called = threading.Event()

    class Large:
        def __iter__(self) -> Iterator[bytes]:
            for _ in range(1024):  # 64 MiB
                yield CHUNK

        def close(self) -> None:
            closed.append(threading.current_thread().name)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        if environ["PATH_INFO"] == "/large":
            called.append("large")
            if len(called) == 2:
                both_called.set()
            return Large()
        return [b"small"]

    running = serve(app, lifespan="off", threads=2, timeout_write=0.5)
    stalled = [never_read(running.port, b"/large") for _ in range(2)]
    try:
        assert both_called.wait(5)  # both threads of the pool are theirs
        response = httpx.get(running.url + "/small", timeout=10)
        assert response.text == "small"
        wait_until(lambda: len(closed) >= 2)
        assert len(closed) == 2 and all(name.startswith("wsgi2asgi-wsgi") for name in closed)
        assert all(reset_by_the_server(sock) for sock in stalled)
        assert all(read_to_the_end(sock) for sock in stalled)
    finally:
        for sock in stalled:
            sock.close()


def test_a_client_that_never_reads_an_asgi_stream_is_disconnected(serve: Serve) -> None:
    outcomes: list[str] = []
    ended = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        except OSError as exc:  # ClientDisconnected (ASGI 2.4)
            outcomes.append(type(exc).__name__)
            outcomes.append((await receive())["type"])
            ended.set()

    running = serve(app, lifespan="off", timeout_write=0.5)
    with never_read(running.port, b"/") as sock:
        assert ended.wait(10)
        assert reset_by_the_server(sock)
    assert outcomes == ["ClientDisconnected", "http.disconnect"]


def test_a_slow_reader_making_progress_is_not_cut(serve: Serve) -> None:
    # The kernel's send queue holds megabytes: it drains for a while before the transport's
    # own buffer moves, so the server's writes stay paused longer than the deadline although
    # the client reads all the time. That is progress, and must not be cut.
    size = 64 * 1024 * 128  # 8 MiB: more than the kernel's queues hold

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", str(size))])
        for _ in range(128):
            yield CHUNK

    running = serve(app, lifespan="off", timeout_write=0.3)
    received = 0
    with never_read(running.port, b"/") as sock:
        sock.settimeout(10)
        while received < size and (chunk := sock.recv(65536)):
            received += len(chunk)
            threading.Event().wait(0.02)  # a pace (about 3 MiB/s), not a synchronisation
    assert received > size  # the whole body (and its head)
