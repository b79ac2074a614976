"""WebSocket sessions: the ASGI ``websocket`` scope over ``websockets``' sans-I/O protocol.

Framing, masking, UTF-8 checks, control frames and close codes are the ``websockets``
library's (``ServerProtocol``); nothing here parses a frame. Rules this module keeps (ASGI
spec, WebSocket section):

* The app gets ``websocket.connect`` first, then answers with ``websocket.accept`` (optionally
  a subprotocol and headers), ``websocket.close`` before accepting (→ ``403``), or a denial
  response (``websocket.http.response.start``/``body``).
* Messages over ``ws_max_size`` close the connection with 1009; invalid frames (unmasked,
  bad UTF-8, bad opcode) with 1002/1007, per RFC 6455 — then the app gets
  ``websocket.disconnect`` with that code.
* A handshake that is not valid RFC 6455 (no key, wrong version) is answered 400 and never
  reaches the app.
* permessage-deflate (RFC 7692) is negotiated when the client offers it, unless
  ``--no-ws-per-message-deflate``; compressing and inflating are the library's too, and
  ``ws_max_size`` applies to a message once inflated.
* Each handshake's outcome is an access line, as uvicorn logs it: ``"WebSocket /ws"
  [accepted]``, or the status it was answered with (403, a denial's status, 400, 500).

Flow control on input: memory per connection stays bounded whatever the client sends. One
method, ``_update_reading``, pauses reading from the socket while any of these holds, and
resumes it when none does:

* The queue is full: it holds ``ws_max_queue`` messages the app has not received. It stays
  "full" until the app has received it down to half (``ws_max_queue // 2``), so a busy
  connection does not pause and resume on every message.
* The transport's write buffer is full (``pause_writing``, until ``resume_writing``): the
  protocol answers each ping with a pong, so a client that pings but never reads would
  otherwise grow that buffer without end. A client that does not read only stalls itself.
* The app has not accepted yet and bytes have arrived: RFC 6455 §4.1 ("the client MUST wait
  for a response from the server before sending any further data"). They are kept and
  replayed into the protocol at the accept.

What was read before the pause is still processed, so the queue can exceed ``ws_max_queue``
by the messages of one read (at most 256 KiB of frames); no message is ever dropped. As with
``websockets``' own server, a close frame behind a full queue is seen once the app has
received down to half. A client that vanished without a FIN is found by the keepalive
pings (:mod:`wsgi2asgi.server.keepalive`), not by the queue. Once the server has sent its
close frame (the app's ``websocket.close``, or 1001 at shutdown) the queue no longer pauses
reading: ``_pump`` closes the TCP connection as soon as the protocol expects the close, so
the next read (the client's reply, or messages still in flight) ends the connection, and
shutdown is not held up by an app that stopped receiving. A client that reads nothing never
gets the close frame either: the write-buffer rule still holds, and the graceful-shutdown
timeout ends it.

Where the session stands for the app is one :class:`SessionState` (``session.state``), kept
beside the library's own ``ServerProtocol.state``: the library's says which frames may still go
on the wire (CONNECTING, OPEN, CLOSING, CLOSED); ours says what the app may do, which ASGI
shapes differently (a denial response instead of an accept; "closed" for the app as soon as
either side has closed, while the closing handshake may still run). ``_MOVES`` lists the legal
moves; any other raises :class:`~wsgi2asgi.exceptions.InternalError`; an app's own mistakes
(a message its state does not allow) raise :class:`~wsgi2asgi.exceptions.ASGIContractError`::

    CONNECTING ──websocket.accept (101)──▶ ACCEPTED ──either side closes, or lost──▶ CLOSED
    CONNECTING ──websocket.http.response.start──▶ DENYING ──last body, or lost──▶ CLOSED
    CONNECTING ──websocket.close (403), the library refuses the handshake, or lost──▶ CLOSED

Example (inside the connection)::

    session = WebSocketSession(connection, request, scope)
    await session.run(app)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import enum
import logging
import os
from typing import TYPE_CHECKING, Any, Protocol

from websockets.extensions.permessage_deflate import enable_server_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WSRequest
from websockets.protocol import State
from websockets.server import ServerProtocol

from wsgi2asgi.exceptions import ASGIContractError, ClientDisconnected, InternalError
from wsgi2asgi.server.cycle import Connection
from wsgi2asgi.server.framing import ResponseFraming, error_response
from wsgi2asgi.server.http11 import Request
from wsgi2asgi.server.keepalive import Keepalive
from wsgi2asgi.server.logs import log_websocket

if TYPE_CHECKING:
    from wsgi2asgi.server.config import Config
    from wsgi2asgi.typing import ASGIApp, Message

__all__ = ["SessionState", "WebSocketConnection", "WebSocketSession"]

logger = logging.getLogger("wsgi2asgi.error")

#: The extension factories offered when ``--ws-per-message-deflate`` (stateless, shared).
_DEFLATE = enable_server_permessage_deflate(None)


class SessionState(enum.Enum):
    """Where a WebSocket session stands for its app (``WebSocketSession.state``)."""

    #: The handshake waits for the app: ``websocket.connect`` is queued, and the app answers
    #: with ``websocket.accept``, ``websocket.close`` (403) or a denial response. Frames the
    #: client sends meanwhile wait in ``pending``, with reading paused (RFC 6455 §4.1).
    CONNECTING = "connecting"
    #: The app sent ``websocket.http.response.start``: its denial response is being written,
    #: and only its ``websocket.http.response.body`` messages may follow.
    DENYING = "denying"
    #: The app accepted (``101`` sent): messages both ways, as long as the library's state
    #: lets frames through.
    ACCEPTED = "accepted"
    #: Over for the app: it closed, the client closed (or broke the protocol), the handshake
    #: was refused, or the connection was lost. ``receive()`` gives what is queued, then
    #: ``websocket.disconnect``; ``send()`` raises ``ClientDisconnected``. Final.
    CLOSED = "closed"


#: The legal moves; :meth:`WebSocketSession._move` refuses any other.
_MOVES: dict[SessionState, tuple[SessionState, ...]] = {
    SessionState.CONNECTING: (SessionState.ACCEPTED, SessionState.DENYING, SessionState.CLOSED),
    SessionState.DENYING: (SessionState.CLOSED,),
    SessionState.ACCEPTED: (SessionState.CLOSED,),
    SessionState.CLOSED: (),
}


class WebSocketConnection(Connection, Protocol):
    """What a session needs from its connection: a cycle's, plus the server's settings and
    its event loop (``tcp.HTTPProtocol`` implements it)."""

    config: Config
    loop: asyncio.AbstractEventLoop


class WebSocketSession:
    """One upgraded connection: handshake, then messages both ways."""

    def __init__(
        self, connection: WebSocketConnection, request: Request, scope: dict[str, Any]
    ) -> None:
        self.connection = connection
        self.request = request
        self.config = connection.config
        offered = [
            item.strip()
            for name, value in request.headers
            if name == b"sec-websocket-protocol"
            for item in value.decode("latin-1").split(",")
            if item.strip()
        ]
        self.scope: dict[str, Any] = {
            **scope,
            "type": "websocket",
            "scheme": "wss" if scope["scheme"] == "https" else "ws",
            "subprotocols": offered,
        }
        self.scope.pop("method", None)
        self.protocol: ServerProtocol | None = None  # the library's, made at the accept
        self.state = SessionState.CONNECTING
        self.incoming: collections.deque[Message] = collections.deque()
        self.ready = asyncio.Event()
        self.fragments: list[bytes] = []
        self.fragment_opcode: Opcode | None = None
        self.close_code: int | None = None
        # The framing of a denial response (``websocket.http.response.*``), if the app sends one.
        self.denial = ResponseFraming("GET", request.http_version, False, connection.server_headers)
        self.pending = b""  # bytes received before the handshake completed
        self.max_queue = self.config.ws_max_queue
        self.queue_full = False  # reached max_queue, not yet received down to half
        self.reading_paused = False
        self.keepalive: Keepalive | None = None  # started at the accept

    # -- fed by the connection ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        protocol = self.protocol
        if protocol is None:  # before the accept
            self.pending += data
            self._update_reading()
            return
        if self.keepalive is not None:
            self.keepalive.seen()
        protocol.receive_data(data)
        self._pump(protocol)
        self._update_reading()

    def writing_paused(self) -> None:
        """The transport's write buffer is full: stop reading (no more pongs to write)."""
        self._update_reading()

    def writing_resumed(self) -> None:
        """The transport's write buffer has drained: read again if nothing else holds it."""
        self._update_reading()

    def _move(self, state: SessionState) -> None:
        if state not in _MOVES[self.state]:
            raise InternalError.illegal_move("WebSocketSession.state", self.state, state)
        self.state = state

    def _closed(self) -> None:
        """Over for the app (a no-op if it already is: both sides may close)."""
        if self.state is not SessionState.CLOSED:
            self._move(SessionState.CLOSED)

    def lost(self) -> None:
        if self.close_code is None:
            self.close_code = 1006
        self._closed()
        self.ready.set()
        if self.keepalive is not None:
            self.keepalive.stop()

    def shutdown(self) -> None:
        """Server shutdown: close with 1001 (going away)."""
        if self.protocol is not None and self.protocol.state is State.OPEN:
            self.protocol.send_close(1001, "server shutting down")
            self._flush()
            self._update_reading()  # a full queue no longer holds the client's reply back
        elif self.protocol is None:
            self.connection.close()

    # -- the app's side ----------------------------------------------------------------------

    async def run(self, app: ASGIApp) -> None:
        if not self._valid_handshake():
            self._log(400)
            self.connection.write(error_response(400, "invalid WebSocket handshake"))
            self.connection.close()
            return
        self.incoming.append({"type": "websocket.connect"})
        self.ready.set()
        try:
            await app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except Exception:
            logger.exception("Exception in ASGI application (websocket %s)", self.scope["path"])
            if self.state is SessionState.CONNECTING:  # (a denial's head is out: no 500)
                self._log(500)
                self.connection.write(error_response(500, "application error"))
            elif self.protocol is not None and self.protocol.state is State.OPEN:
                self.protocol.send_close(1011, "")
                self._flush()
        else:
            if self.state is SessionState.CONNECTING:
                # ASGI: returning before accepting is a close before accepting → 403.
                self._log(403)
                self.connection.write(error_response(403, "WebSocket connection refused"))
            elif self.protocol is not None and self.protocol.state is State.OPEN:
                self.protocol.send_close(1000, "")
                self._flush()
        self.connection.close()

    async def receive(self) -> Message:
        while not self.incoming:
            if self.state is SessionState.CLOSED:
                return {"type": "websocket.disconnect", "code": self.close_code or 1006}
            self.ready.clear()
            await self.ready.wait()
        message = self.incoming.popleft()
        if self.reading_paused:
            self._update_reading()
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        state = self.state
        if state is SessionState.CLOSED:
            raise ClientDisconnected("the WebSocket is closed")
        if state is SessionState.CONNECTING:
            self._answer_handshake(kind, message)
        elif state is SessionState.DENYING:
            self._deny(kind, message)
        else:
            await self._send_accepted(kind, message)

    def _answer_handshake(self, kind: str, message: Message) -> None:
        if kind == "websocket.accept":
            self._accept(message)
        elif kind == "websocket.close":
            self._log(403)
            self.connection.write(error_response(403, "WebSocket connection refused"))
            self._move(SessionState.CLOSED)
            self.close_code = int(message.get("code") or 1000)
            self.connection.close()
        elif kind == "websocket.http.response.start":
            self._log(int(message["status"]))
            headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
            self.connection.write(self.denial.head(int(message["status"]), headers))
            self._move(SessionState.DENYING)
        else:
            raise ASGIContractError(f"unexpected {kind!r} before websocket.accept")

    def _deny(self, kind: str, message: Message) -> None:
        if kind != "websocket.http.response.body":
            raise ASGIContractError(f"unexpected {kind!r} during a denial response")
        data = self.denial.body(bytes(message.get("body", b"")))
        more = bool(message.get("more_body", False))
        if not more:
            data += self.denial.end()
        self.connection.write(data)
        if not more:
            self._move(SessionState.CLOSED)
            self.connection.close()

    async def _send_accepted(self, kind: str, message: Message) -> None:
        protocol = self.protocol
        if protocol is None:  # _accept() makes it before the move to ACCEPTED
            raise InternalError("WebSocketSession: ACCEPTED without the library's protocol")
        if kind == "websocket.send":
            if self.connection.gone():
                # As in cycle.py: the transport died, connection_lost() has not run yet, and
                # an app sending in a loop would never give it the loop turn it needs.
                self.lost()
                raise ClientDisconnected("the WebSocket connection is gone")
            if not self.connection.writable.is_set():
                await self._writable()
            if message.get("bytes") is not None:
                protocol.send_binary(bytes(message["bytes"]))
            elif message.get("text") is not None:
                protocol.send_text(str(message["text"]).encode("utf-8"))
            else:
                raise ASGIContractError("websocket.send needs 'bytes' or 'text'")
            self._flush()
        elif kind == "websocket.close":
            if protocol.state is State.OPEN:
                protocol.send_close(int(message.get("code") or 1000), message.get("reason") or "")
                self._flush()
                self._update_reading()
            self._move(SessionState.CLOSED)
            self.close_code = int(message.get("code") or 1000)
        else:
            raise ASGIContractError(f"unexpected {kind!r} on an accepted WebSocket")

    async def _writable(self) -> None:
        """Wait until the transport takes writes again: the client reads, or is gone."""
        await self.connection.writable.wait()
        if self.state is SessionState.CLOSED:  # woken by connection_lost(), not by a drain
            raise ClientDisconnected("the WebSocket connection is gone")

    # -- handshake and frames ------------------------------------------------------------------

    def _log(self, status: int) -> None:
        """The handshake's access line: 101 (``[accepted]``) or the status it was answered."""
        if self.connection.access_log:
            log_websocket(self.scope, self.request, status)

    def _valid_handshake(self) -> bool:
        headers = dict(self.request.headers)
        # RFC 6455 §4.2.1: a GET over HTTP/1.1, version 13, and a key that "when decoded, is
        # 16 bytes in length". Checked here so that a bad one never reaches the app.
        try:
            key = base64.b64decode(headers.get(b"sec-websocket-key", b""), validate=True)
        except binascii.Error:
            return False
        return (
            self.request.method == "GET"
            and self.request.http_version == "1.1"
            and headers.get(b"sec-websocket-version") == b"13"
            and len(key) == 16
        )

    def _accept(self, message: Message) -> None:
        chosen = message.get("subprotocol")
        protocol = ServerProtocol(
            select_subprotocol=lambda _protocol, _offered: chosen,
            # RFC 7692 permessage-deflate, when the client offers it (browsers do), with the
            # memory-bounded settings websockets' own server uses (window 2^12, memLevel 5).
            extensions=_DEFLATE if self.config.ws_per_message_deflate else None,
            max_size=self.config.ws_max_size,
        )
        # Let the library parse the handshake it will answer: replay the request head (already
        # validated by our HTTP parser) into the sans-I/O protocol.
        head = [b"GET %s HTTP/1.1\r\n" % self.request.target]
        head += [b"%s: %s\r\n" % (name, value) for name, value in self.request.headers]
        protocol.receive_data(b"".join(head) + b"\r\n")
        requests = [e for e in protocol.events_received() if isinstance(e, WSRequest)]
        if not requests:
            raise RuntimeError("the WebSocket handshake could not be parsed")
        response = protocol.accept(requests[0])
        for name, value in message.get("headers", ()):
            response.headers[bytes(name).decode("latin-1")] = bytes(value).decode("latin-1")
        protocol.send_response(response)
        self._log(response.status_code)
        self.protocol = protocol
        self._flush()
        if response.status_code != 101:
            self._move(SessionState.CLOSED)
            self.connection.close()
            return
        self._move(SessionState.ACCEPTED)
        self._start_keepalive()
        data, self.pending = self.pending, b""
        if data:
            self.data_received(data)  # also resumes reading, unless the frames fill the queue
        else:
            self._update_reading()

    def _start_keepalive(self) -> None:
        interval = self.config.ws_ping_interval
        if interval is None:
            return
        self.keepalive = Keepalive(
            self.connection.loop,
            interval,
            self.config.ws_ping_timeout,
            ping=self._ping,
            on_timeout=self._keepalive_timed_out,
            app_behind=lambda: self.queue_full,
        )
        self.keepalive.start()

    def _ping(self) -> None:
        if self.protocol is not None and self.protocol.state is State.OPEN:
            self.protocol.send_ping(os.urandom(4))
            self._flush()

    def _keepalive_timed_out(self) -> None:
        if self.protocol is None or self.protocol.state is not State.OPEN:
            return
        logger.info("WebSocket client did not answer a ping in time: %s", self.scope["path"])
        # websockets closes such a connection with 1011 too ("keepalive ping timeout").
        self.protocol.fail(1011, "keepalive ping timeout")
        self._pump(self.protocol)  # sends the close frame, marks the session closed, closes

    def _pump(self, protocol: ServerProtocol) -> None:
        for frame in protocol.events_received():
            if not isinstance(frame, Frame):
                continue
            opcode = frame.opcode
            if opcode in (Opcode.TEXT, Opcode.BINARY):
                self.fragment_opcode = opcode
                self.fragments = [bytes(frame.data)]
            elif opcode is Opcode.CONT:
                self.fragments.append(bytes(frame.data))
            else:
                continue  # ping/pong are answered by the protocol; close handled below
            if frame.fin:
                data = b"".join(self.fragments)
                self.fragments = []
                if self.fragment_opcode is Opcode.TEXT:
                    try:
                        text = data.decode("utf-8")
                    except UnicodeDecodeError:
                        # RFC 6455 §8.1: invalid UTF-8 in a text message fails the connection
                        # with 1007; the sans-I/O protocol leaves that check to us.
                        protocol.fail(1007, "invalid UTF-8 in a text message")
                        break
                    self.incoming.append({"type": "websocket.receive", "text": text})
                else:
                    self.incoming.append({"type": "websocket.receive", "bytes": data})
                self.ready.set()
        self._flush()
        if protocol.state is State.CLOSED or protocol.close_expected():
            rcvd = protocol.close_rcvd
            sent = protocol.close_sent
            code = rcvd.code if rcvd is not None else (sent.code if sent is not None else 1006)
            self.close_code = code
            self._closed()
            self.ready.set()
            self.connection.close()

    def _flush(self) -> None:
        if self.protocol is None:
            return  # nothing is framed before the accept
        # One write for all the frames (a read full of pings makes hundreds of pongs); the
        # empty end-of-stream marker adds nothing, connection.close() follows it.
        data = b"".join(self.protocol.data_to_send())
        if data:
            self.connection.write(data)

    # -- flow control on input -------------------------------------------------------------------

    def _update_reading(self) -> None:
        """Pause or resume reading from the socket: the one place that decides.

        Called whenever one of its inputs may have changed: bytes or messages came in, the app
        received a message, the write buffer filled or drained, the accept, our close frame.
        """
        paused = self._must_pause()
        if paused == self.reading_paused or self.connection.gone():
            return
        self.reading_paused = paused
        if paused:
            self.connection.pause_reading()
        else:
            self.connection.resume_reading()

    def _must_pause(self) -> bool:
        protocol = self.protocol
        if protocol is None:
            # RFC 6455 §4.1: "Once the client's opening handshake has been sent, the client
            # MUST wait for a response from the server before sending any further data."
            return bool(self.pending)
        if not self.connection.writable.is_set():
            return True  # reading would make pongs the client is not reading
        if protocol.state is not State.OPEN:
            return False  # our close frame is out: read on, for the client's reply
        queued = len(self.incoming)
        if queued >= self.max_queue:
            self.queue_full = True
        elif queued <= self.max_queue // 2:
            self.queue_full = False
        return self.queue_full
