"""One WebSocket session with a fake connection: no sockets, the states driven by an app.

The client's frames are made with ``websockets``' own framing (masked, as a client's must be)
and fed with ``data_received`` as ``tcp.py`` would; what the session writes is read back with
``websockets``' parser.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.frames import Frame, Opcode

from wsgi2asgi.exceptions import ASGIContractError, ClientDisconnected, InternalError
from wsgi2asgi.server import Config
from wsgi2asgi.server.framing import ServerHeaders
from wsgi2asgi.server.http11 import Limits, Request, RequestParser
from wsgi2asgi.server.websocket import SessionState, WebSocketSession

HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def unused_app(scope: Any, receive: Any, send: Any) -> None:
    """The app ``Config`` is given; the session is run with the test's own."""


class FakeConnection:
    """What a session needs from its connection (``websocket.WebSocketConnection``)."""

    def __init__(self) -> None:
        self.config = Config(app=unused_app, ws_ping_interval=None)
        self.loop = asyncio.get_running_loop()
        self.writable = asyncio.Event()
        self.writable.set()
        self.closing = False
        self.access_log = False
        self.server_headers = ServerHeaders()
        self.written = bytearray()
        self.reading = True
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closing = self.closed = True

    def gone(self) -> bool:
        return self.closed


def new_session() -> tuple[WebSocketSession, FakeConnection]:
    request = RequestParser(Limits()).feed(HANDSHAKE)[0]
    assert isinstance(request, Request)
    scope: dict[str, Any] = {"type": "http", "scheme": "http", "path": "/ws"}
    connection = FakeConnection()
    return WebSocketSession(connection, request, scope), connection


def client_frame(opcode: Opcode, data: bytes) -> bytes:
    """A masked frame, as a client sends it."""
    return Frame(opcode, data).serialize(mask=True, extensions=[])


async def test_session_states_from_handshake_to_close() -> None:
    session, connection = new_session()
    seen: list[SessionState] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        seen.append(session.state)
        await send({"type": "websocket.accept"})
        seen.append(session.state)
        message = await receive()
        await send({"type": "websocket.send", "text": message["text"].upper()})
        await send({"type": "websocket.close", "code": 4000})
        seen.append(session.state)
        assert await receive() == {"type": "websocket.disconnect", "code": 4000}

    # RFC 6455 §4.1: a frame before the server's answer waits, with reading paused, until
    # the accept replays it.
    session.data_received(client_frame(Opcode.TEXT, b"hi"))
    assert not connection.reading and session.state is SessionState.CONNECTING
    await session.run(app)
    assert seen == [SessionState.CONNECTING, SessionState.ACCEPTED, SessionState.CLOSED]
    assert connection.written.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    frames = connection.written.split(b"\r\n\r\n", 1)[1]
    assert frames == b"\x81\x02HI" + b"\x88\x02\x0f\xa0"  # the echo, then close 4000
    assert connection.closed


async def test_a_close_before_the_accept_is_a_403() -> None:
    session, connection = new_session()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close"})
        with pytest.raises(ClientDisconnected):
            await send({"type": "websocket.accept"})

    await session.run(app)
    assert session.state is SessionState.CLOSED
    assert connection.written.startswith(b"HTTP/1.1 403 ")


async def test_a_denial_response_is_its_own_state() -> None:
    session, connection = new_session()
    seen: list[SessionState] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        start = {"type": "websocket.http.response.start", "status": 401, "headers": []}
        await send(start)
        seen.append(session.state)
        with pytest.raises(ASGIContractError, match="during a denial response"):
            await send({"type": "websocket.accept"})  # the denial's head is already out
        await send({"type": "websocket.http.response.body", "body": b"no", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"pe"})
        seen.append(session.state)

    await session.run(app)
    assert seen == [SessionState.DENYING, SessionState.CLOSED]
    assert connection.written.startswith(b"HTTP/1.1 401 ")
    assert connection.written.endswith(b"\r\n\r\n2\r\nno\r\n2\r\npe\r\n0\r\n\r\n")


async def test_a_lost_connection_closes_the_session_for_the_app() -> None:
    session, _ = new_session()
    accepted = asyncio.Event()
    results: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        accepted.set()
        results.append(await receive())
        try:
            await send({"type": "websocket.send", "text": "late"})
        except ClientDisconnected as exc:
            results.append(exc)

    task = asyncio.ensure_future(session.run(app))
    await accepted.wait()
    session.lost()
    session.lost()  # connection_lost() after a close: still CLOSED, no error
    await task
    assert session.state is SessionState.CLOSED
    assert results[0] == {"type": "websocket.disconnect", "code": 1006}
    assert isinstance(results[1], ClientDisconnected)


async def test_an_app_error_before_the_accept_is_a_500() -> None:
    session, connection = new_session()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    await session.run(app)
    assert connection.written.startswith(b"HTTP/1.1 500 ")


async def test__move_refuses_a_move_the_table_does_not_list() -> None:
    session, _ = new_session()
    session.lost()
    with pytest.raises(InternalError, match="no move from CLOSED to ACCEPTED"):
        session._move(SessionState.ACCEPTED)
    assert session.state is SessionState.CLOSED
