"""WebSockets on the server, driven by the ``websockets`` client and raw sockets."""

from __future__ import annotations

import base64
import os
import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.server.conftest import Running, raw

Serve = Callable[..., Running]


firehose_outcomes: list[str] = []


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


def handshake(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
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


def test_invalid_handshake_is_400_and_never_reaches_the_app(server: Running) -> None:
    data = raw(
        server.port,
        b"GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )
    assert data.startswith(b"HTTP/1.1 400")


def test_reserved_opcode_closes_with_1002(server: Running) -> None:
    with handshake(server.port) as sock:
        sock.sendall(b"\x83\x80\x00\x00\x00\x00")  # FIN + reserved opcode 0x3, masked, empty
        assert close_code(sock) == 1002


def test_client_vanishing_while_the_app_sends_stops_the_app(server: Running) -> None:
    import time

    firehose_outcomes.clear()
    with connect(ws_url(server, "/firehose"), max_size=None) as ws:
        for _ in range(5):
            ws.recv(timeout=5)
        ws.socket.close()  # gone without a closing handshake
    deadline = time.monotonic() + 5
    while not firehose_outcomes and time.monotonic() < deadline:
        time.sleep(0.01)
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
    import asyncio
    import time

    seen: list[str] = []

    async def slow_to_accept(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        seen.append((await receive())["type"])
        await asyncio.sleep(0.3)  # the client leaves meanwhile
        try:
            await send({"type": "websocket.accept"})
        except OSError as exc:
            seen.append(type(exc).__name__)
            return
        seen.append((await receive())["type"])

    running = serve(slow_to_accept, lifespan="off")
    key = base64.b64encode(os.urandom(16))
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    # The connection is gone: accepting it raises (ASGI 2.4: an OSError), nothing hangs.
    assert seen == ["websocket.connect", "ClientDisconnected"]
