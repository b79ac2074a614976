"""WebSockets on the server, driven by the ``websockets`` client and raw sockets."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.loopback import wait_until, websocket_frame, websocket_upgrade
from tests.servers import Running, on_loop, raw
from wsgi2asgi.server.websocket import SessionState

Serve = Callable[..., Running]


firehose_outcomes: list[str] = []
firehose_stopped = threading.Event()


async def ws_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    path = scope["path"]
    message = await receive()
    assert message["type"] == "websocket.connect"
    if path == "/deny":
        await send({"type": "websocket.close", "code": 1000})
        return
    if path == "/teapot":
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 418,
                "headers": [(b"x-why", b"tea")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"short and stout"})
        return
    subprotocol = scope["subprotocols"][0] if scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    if path == "/close-4000":
        await send({"type": "websocket.close", "code": 4000, "reason": "bye"})
        return
    if path == "/firehose":  # sends as fast as it can, never waiting for the client
        try:
            while True:
                await send({"type": "websocket.send", "bytes": b"z" * 65536})
        except OSError as exc:  # ClientDisconnected, as ASGI 2.4 says
            firehose_outcomes.append(type(exc).__name__)
            firehose_stopped.set()
            raise
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"].upper()})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"][::-1]})


@pytest.fixture
def server(serve: Serve) -> Running:
    return serve(ws_app, lifespan="off", ws_max_size=1024)


def ws_url(server: Running, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def test_text_and_binary_echo(server: Running) -> None:
    with connect(ws_url(server, "/echo")) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "HELLO"
        ws.send(b"\x01\x02\x03")
        assert ws.recv(timeout=5) == b"\x03\x02\x01"


def test_subprotocol_is_negotiated(server: Running) -> None:
    with connect(ws_url(server, "/echo"), subprotocols=["chat.v2"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat.v2"


def test_close_before_accept_is_403(server: Running) -> None:
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(server, "/deny"))
    assert info.value.response.status_code == 403


def test_denial_response_is_sent_as_is(server: Running) -> None:
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(server, "/teapot"))
    assert info.value.response.status_code == 418
    assert info.value.response.headers["x-why"] == "tea"


def test_app_close_code_reaches_the_client(server: Running) -> None:
    with connect(ws_url(server, "/close-4000")) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4000


def test_oversized_message_closes_with_1009(server: Running) -> None:
    with connect(ws_url(server, "/echo"), max_size=None) as ws:
        ws.send("x" * 2048)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


def handshake(port: int, *, sndbuf: int | None = None) -> socket.socket:
    """Connect and upgrade; ``sndbuf`` caps the client's kernel send buffer."""
    sock = socket.socket()
    sock.settimeout(5)
    if sndbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)  # before connecting
    sock.connect(("127.0.0.1", port))
    sock.sendall(websocket_upgrade())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 101")
    return sock


def close_code(sock: socket.socket) -> int:
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    # The server's close frame: 0x88, length, 2-byte code.
    index = data.find(b"\x88")
    assert index >= 0, data
    return int(struct.unpack("!H", data[index + 2 : index + 4])[0])


def test_unmasked_client_frame_closes_with_1002(server: Running) -> None:
    with handshake(server.port) as sock:
        sock.sendall(b"\x81\x02hi")  # FIN + text, NOT masked: forbidden from clients
        assert close_code(sock) == 1002


def test_invalid_utf8_text_closes_with_1007(server: Running) -> None:
    with handshake(server.port) as sock:
        mask = b"\x00\x00\x00\x00"
        sock.sendall(b"\x81\x82" + mask + b"\xff\xfe")
        assert close_code(sock) == 1007


@pytest.mark.parametrize(
    "extra",
    [
        b"",  # no key, no version
        b"Sec-WebSocket-Version: 13\r\n",  # no key
        b"Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n",  # 5 bytes, not 16
        b"Sec-WebSocket-Key: not base64!\r\nSec-WebSocket-Version: 13\r\n",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n",
    ],
    ids=["nothing", "no-key", "short-key", "not-base64", "version-8"],
)
def test_invalid_handshake_is_400_and_never_reaches_the_app(serve: Serve, extra: bytes) -> None:
    calls: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    running = serve(app, lifespan="off")
    data = raw(
        running.port,
        b"GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + extra
        + b"\r\n",
    )
    assert data.startswith(b"HTTP/1.1 400")
    assert calls == []


def test_reserved_opcode_closes_with_1002(server: Running) -> None:
    with handshake(server.port) as sock:
        sock.sendall(b"\x83\x80\x00\x00\x00\x00")  # FIN + reserved opcode 0x3, masked, empty
        assert close_code(sock) == 1002


def test_client_vanishing_while_the_app_sends_stops_the_app(server: Running) -> None:
    firehose_outcomes.clear()
    firehose_stopped.clear()
    with connect(ws_url(server, "/firehose"), max_size=None) as ws:
        for _ in range(5):
            ws.recv(timeout=5)
        ws.socket.close()  # gone without a closing handshake
    assert firehose_stopped.wait(5)
    assert firehose_outcomes == ["ClientDisconnected"]
    with connect(ws_url(server, "/echo")) as ws:
        ws.send("alive")
        assert ws.recv(timeout=5) == "ALIVE"


def test_client_vanishing_mid_frame_leaves_the_server_healthy(server: Running) -> None:
    with handshake(server.port) as sock:
        sock.sendall(b"\x81\x85\x00\x00")  # half a frame header, then gone
    with connect(ws_url(server, "/echo")) as ws:
        ws.send("still")
        assert ws.recv(timeout=5) == "STILL"


def test_client_vanishing_before_the_app_accepts_gives_the_app_a_disconnect(
    serve: Serve,
) -> None:
    seen: list[str] = []
    connected, done = threading.Event(), threading.Event()
    left = asyncio.Event()

    async def slow_to_accept(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        try:
            seen.append((await receive())["type"])
            connected.set()
            await asyncio.wait_for(left.wait(), 10)  # the client leaves meanwhile
            try:
                await send({"type": "websocket.accept"})
            except OSError as exc:
                seen.append(type(exc).__name__)
                return
            seen.append((await receive())["type"])
        finally:
            done.set()

    running = serve(slow_to_accept, lifespan="off")
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        sock.sendall(websocket_upgrade(b"/ws"))
        assert connected.wait(5)
        pending = on_loop(running, lambda: session(running))
    # The server has seen the connection go; only then does the app try to accept it.
    assert wait_until(lambda: on_loop(running, lambda: pending.state is SessionState.CLOSED))
    running.loop.call_soon_threadsafe(left.set)
    assert done.wait(5)
    # The connection is gone: accepting it raises (ASGI 2.4: an OSError), nothing hangs.
    assert seen == ["websocket.connect", "ClientDisconnected"]


# -- flow control on input: what the server holds stays bounded ----------------------------------

#: The most one read from a socket returns, on asyncio (256 KiB) and uvloop (250 KiB).
READ_SIZE = 256 * 1024


def server_text(sock: socket.socket, data: bytes = b"") -> str:
    """Read one short unfragmented text frame from the server (``data``: what came before)."""
    while len(data) < 2 or len(data) < 2 + data[1]:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    assert data[0] == 0x81 and data[1] < 126, data[:2]
    return data[2 : 2 + data[1]].decode()


def session(running: Running) -> Any:
    """The one WebSocket session on the server (call it on the server's loop)."""
    assert running.server.state is not None
    found = [c.upgraded for c in running.server.state.connections if c.upgraded is not None]
    assert len(found) == 1, found
    return found[0]


def send_until_paused(
    sock: socket.socket,
    data: bytes,
    running: Running,
    paused: Callable[[Any], bool] = lambda session: bool(session.reading_paused),
) -> int:
    """Send until the socket blocks with the session ``paused``; return the bytes sent.

    A send that times out while the server still reads only means the server was slow: the
    loop then goes on, so the result does not depend on timing. All of ``data`` going through
    means the server never paused: the test fails.
    """
    view = memoryview(data)
    sent = 0
    sock.settimeout(0.5)
    while sent < len(view):
        try:
            sent += sock.send(view[sent:])
        except TimeoutError:
            if on_loop(running, lambda: paused(session(running))):
                return sent
    raise AssertionError(f"all {sent} bytes went through: the server never paused reading")


def kernel_buffers(sock: socket.socket, running: Running) -> int:
    """What the two kernels can hold for this connection: our send and its receive buffer."""

    def server_rcvbuf() -> int:
        peer = session(running).connection.transport.get_extra_info("socket")
        return int(peer.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)) + on_loop(
        running, server_rcvbuf
    )


def test_an_app_not_reading_pauses_the_client_and_loses_no_message(serve: Serve) -> None:
    count, size, max_queue = 200, 64 * 1024, 8
    release = asyncio.Event()

    async def reads_later(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        await asyncio.wait_for(release.wait(), 30)  # not reading meanwhile
        seen = [await receive() for _ in range(count)]
        ok = [m.get("bytes") == i.to_bytes(4, "big") * (size // 4) for i, m in enumerate(seen)]
        await send({"type": "websocket.send", "text": f"{sum(ok)} in order"})
        await receive()

    running = serve(reads_later, lifespan="off", ws_max_queue=max_queue)
    frames = [websocket_frame(0x2, i.to_bytes(4, "big") * (size // 4)) for i in range(count)]
    data = b"".join(frames)
    with handshake(running.port, sndbuf=64 * 1024) as sock:
        sent = send_until_paused(sock, data, running)
        queued = on_loop(running, lambda: len(session(running).incoming))
        # The queue filled and then reading stopped; what one read brought in on top of that
        # was still queued (none is ever dropped).
        assert max_queue <= queued <= max_queue + READ_SIZE // size + 1
        # Everything else the client sent is in a kernel, not in the server's memory.
        assert sent <= queued * len(frames[0]) + READ_SIZE + kernel_buffers(sock, running)
        assert sent < len(data)
        running.loop.call_soon_threadsafe(release.set)
        sock.settimeout(10)
        sock.sendall(data[sent:])
        text = server_text(sock)
    assert text == f"{count} in order"


def test_a_ping_flood_from_a_client_not_reading_pauses_it(server: Running) -> None:
    pings = websocket_frame(0x9, b"p" * 125) * 512  # 66 KiB of pings per send
    with handshake(server.port, sndbuf=64 * 1024) as sock:
        # Paused because our pongs fill the write buffer (the app is waiting to receive).
        sent = send_until_paused(  # at most 33 MiB
            sock,
            pings * 500,
            server,
            lambda s: s.reading_paused and not s.connection.writable.is_set(),
        )
        buffered = on_loop(
            server, lambda: session(server).connection.transport.get_write_buffer_size()
        )
        # At most the high-water mark (64 KiB) plus the pongs for one read.
        assert buffered <= 64 * 1024 + READ_SIZE
        assert sent < len(pings) * 500
    with connect(ws_url(server, "/echo")) as ws:
        ws.send("alive")
        assert ws.recv(timeout=5) == "ALIVE"


def test_frames_sent_before_the_accept_wait_and_arrive_in_order(serve: Serve) -> None:
    connected, release = threading.Event(), asyncio.Event()

    async def accepts_later(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        connected.set()
        await asyncio.wait_for(release.wait(), 10)
        await send({"type": "websocket.accept"})
        texts = [(await receive())["text"] for _ in range(3)]
        await send({"type": "websocket.send", "text": ",".join(texts)})
        await receive()

    running = serve(accepts_later, lifespan="off")
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        sock.sendall(websocket_upgrade())
        assert connected.wait(5)
        # Too early (RFC 6455 §4.1: the client must wait for the 101), but not lost.
        early = b"".join(websocket_frame(0x1, t) for t in (b"one", b"two", b"three"))
        sock.sendall(early)

        def held() -> tuple[int, bool]:
            return len(session(running).pending), session(running).reading_paused

        wait_until(lambda: on_loop(running, held)[0] > 0)
        # The server has them, and stopped reading: nothing more piles up before the accept.
        assert on_loop(running, held) == (len(early), True)
        running.loop.call_soon_threadsafe(release.set)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        assert data.startswith(b"HTTP/1.1 101")
        text = server_text(sock, data.partition(b"\r\n\r\n")[2])
    assert text == "one,two,three"


def test_shutdown_with_a_full_queue_still_closes_the_connection(
    serve: Serve,
) -> None:
    gone = threading.Event()

    async def never_reads(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        # Never receives. It ends once the test saw its connection end: shutdown waits for
        # the apps still running, whether or not their connection is gone.
        await asyncio.to_thread(gone.wait, 30)

    # A graceful-shutdown timeout far beyond the socket timeout: only the handshake ends this.
    running = serve(never_reads, lifespan="off", ws_max_queue=2, timeout_graceful_shutdown=600)
    message = websocket_frame(0x2, b"m" * 65536)
    with handshake(running.port, sndbuf=64 * 1024) as sock:
        sent = send_until_paused(sock, message * 200, running)
        stopping = threading.Thread(target=running.stop)
        stopping.start()
        sock.settimeout(10)
        # The server's 1001 comes through, and the full queue no longer stops the server from
        # reading: what it reads next (the rest of our message, our reply) ends the connection,
        # long before the graceful-shutdown timeout.
        data = b""
        while len(data) < 4:
            data += sock.recv(4096)
        assert data[0] == 0x88 and struct.unpack("!H", data[2:4]) == (1001,), data
        try:
            sock.sendall(message[sent % len(message) :] + websocket_frame(0x8, data[2:4]))
            while sock.recv(65536):
                pass
        except ConnectionResetError:
            pass  # closed with our unread messages still in its kernel buffer
        gone.set()
        stopping.join(10)
        assert not stopping.is_alive()


# -- keepalive: a client that vanished without a FIN is found ------------------------------------


def test_a_silent_client_is_pinged_then_closed_with_1011(serve: Serve) -> None:
    codes: list[int] = []
    disconnected = threading.Event()

    async def waits(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        codes.append((await receive())["code"])  # nothing comes but the disconnect
        disconnected.set()

    running = serve(waits, lifespan="off", ws_ping_interval=0.1, ws_ping_timeout=0.2)
    with handshake(running.port) as sock:  # a raw socket: it never answers the ping
        data = b""
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except ConnectionResetError:
            pass
    assert data[:2] == b"\x89\x04"  # the ping, 4 bytes of payload
    close = data[6:]
    assert close[0] == 0x88 and struct.unpack("!H", close[2:4]) == (1011,), data
    assert disconnected.wait(5)
    assert codes == [1011]


def test_a_client_answering_pings_stays_connected(serve: Serve) -> None:
    running = serve(ws_app, lifespan="off", ws_ping_interval=0.05, ws_ping_timeout=2.0)
    with connect(ws_url(running, "/echo")) as ws:  # answers pings from its own thread
        time.sleep(0.5)  # kept: staying connected while ~ten pings come is what is tested
        ws.send("still here")
        assert ws.recv(timeout=5) == "STILL HERE"


def test_sessions_count_against_the_concurrency_limit(serve: Serve) -> None:
    running = serve(ws_app, lifespan="off", limit_concurrency=1)
    with connect(ws_url(running, "/echo")) as ws:
        ws.send("one")
        assert ws.recv(timeout=5) == "ONE"
        with pytest.raises(InvalidStatus) as info:
            connect(ws_url(running, "/echo"))
        assert info.value.response.status_code == 503

    def idle() -> bool:
        return running.server.state is not None and running.server.state.active == 0

    # The first session's task ends after its close: then it no longer counts.
    assert wait_until(lambda: on_loop(running, idle))
    with connect(ws_url(running, "/echo")) as ws:
        ws.send("two")
        assert ws.recv(timeout=5) == "TWO"
