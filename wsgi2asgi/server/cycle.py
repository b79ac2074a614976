"""One HTTP request/response cycle: the ASGI ``receive`` and ``send`` of a single request.

Rules this module keeps (ASGI spec, ``www.rst``):

* ``receive()`` yields ``http.request`` messages as the body arrives (``more_body`` until the
  end), then ``http.disconnect`` once the response is sent or the client is gone. The first
  ``receive()`` of a request with ``Expect: 100-continue`` sends ``100 Continue``.
* ``send()``: ``http.response.start`` then ``http.response.body`` messages. After the client is
  gone, ``send`` raises :class:`~wsgi2asgi.exceptions.ClientDisconnected` (an ``OSError``, as
  spec 2.4 asks).
* The app raises, or returns without a response, before the start (or after it, while no byte
  of the head is written yet) → ``500`` and the connection closes. It raises (or returns early)
  once the head is out → the connection is closed without completing the body, so the client
  cannot take a truncated body for a whole one.
* The response head is written with the first body message, or on the loop's next turn if
  that message is not ready by then (a late first chunk does not hold the head back).
* Flow control: the body buffer pauses the socket above ``HIGH_WATER`` bytes and resumes it
  when the app has read below; ``send`` waits while the transport's write buffer is full.

How it works: two state machines, one per side (h11 keeps one per role for the same reason:
the app may answer before it has read the body, and the body may end before the answer
starts). :class:`RequestState` is the client's side, the request body on its way to the app;
:class:`ResponseState` is ours, the app's response on its way to the client. Each lists its
legal moves in a table (``_REQUEST_MOVES``, ``_RESPONSE_MOVES``); any other move is a bug here
and raises :class:`~wsgi2asgi.exceptions.InternalError`. An app's own mistakes (a body before
the start, a start sent twice) are checked before any move and raise
:class:`~wsgi2asgi.exceptions.ASGIContractError`::

    request:   EXPECTING ──100 sent, or bytes──▶ RECEIVING ──end──▶ RECEIVED ──read──▶ DELIVERED
               EXPECTING ──end──▶ RECEIVED;  any but the last ──client gone──▶ DISCONNECTED
               (a request without a body starts in RECEIVED: nothing is fed to it)
    response:  IDLE ──start──▶ STARTED ──head written──▶ STREAMING ──last body──▶ COMPLETE
               STARTED ──last body with the head──▶ COMPLETE;  IDLE ──500──▶ COMPLETE
               STARTED ──app failed before a byte was written──▶ IDLE (then the 500)

Example (inside the connection)::

    cycle = HTTPCycle(connection, request, scope)
    await cycle.run(app)
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from wsgi2asgi.exceptions import ASGIContractError, ClientDisconnected, InternalError
from wsgi2asgi.responses import plain_body, plain_headers
from wsgi2asgi.server.framing import ResponseFraming, ServerHeaders
from wsgi2asgi.server.http11 import Request
from wsgi2asgi.server.logs import log_request

if TYPE_CHECKING:
    from wsgi2asgi.typing import ASGIApp, Message, Scope

__all__ = ["HIGH_WATER", "Connection", "HTTPCycle", "RequestState", "ResponseState"]

logger = logging.getLogger("wsgi2asgi.error")

#: Request body bytes buffered before the socket is paused.
HIGH_WATER = 64 * 1024
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class RequestState(enum.Enum):
    """The client's side of a cycle: where the request body stands (``HTTPCycle.request_state``)."""

    #: The client asked ``Expect: 100-continue`` and waits for our ``100 Continue`` before it
    #: sends the body: the app's first ``receive()`` sends it (unless the response started).
    EXPECTING = "expecting"
    #: The body is on its way (or the client stopped waiting for ``100 Continue`` and sent
    #: it): bytes wait in the buffer until the app receives them.
    RECEIVING = "receiving"
    #: The whole body has arrived; the app may not have received all of it yet.
    RECEIVED = "received"
    #: The app has received the whole body (``more_body=False``); ``receive()`` now waits
    #: for the end of the response.
    DELIVERED = "delivered"
    #: The client is gone (or its request was cut by malformed input): ``receive()`` gives
    #: ``http.disconnect`` and ``send()`` raises ``ClientDisconnected``. Final.
    DISCONNECTED = "disconnected"

    # Members are singletons, equal only to themselves: hashed by identity too. (Enum's own
    # __hash__ hashes the name in Python; the move table would pay it on every move.)
    __hash__ = object.__hash__


class ResponseState(enum.Enum):
    """Our side of a cycle: where the app's response stands (``HTTPCycle.response_state``)."""

    #: No ``http.response.start`` yet.
    IDLE = "idle"
    #: ``http.response.start`` was sent; its head waits (for the first body message, at most
    #: until the loop's next turn) and not a byte of it is written: a failure can still be
    #: answered with a clean 500.
    STARTED = "started"
    #: The head is written; body messages follow.
    STREAMING = "streaming"
    #: The final body message is written (or our 500). Later body messages are ignored. Final.
    COMPLETE = "complete"

    __hash__ = object.__hash__  # as RequestState's


#: The legal moves of each side; :meth:`HTTPCycle._move_request` and ``_move_response``
#: refuse any other. Tuples: membership is a few identity checks on the per-request path.
_REQUEST_MOVES: dict[RequestState, tuple[RequestState, ...]] = {
    RequestState.EXPECTING: (
        RequestState.RECEIVING,
        RequestState.RECEIVED,
        RequestState.DISCONNECTED,
    ),
    RequestState.RECEIVING: (RequestState.RECEIVED, RequestState.DISCONNECTED),
    RequestState.RECEIVED: (RequestState.DELIVERED, RequestState.DISCONNECTED),
    RequestState.DELIVERED: (RequestState.DISCONNECTED,),
    RequestState.DISCONNECTED: (),
}
_RESPONSE_MOVES: dict[ResponseState, tuple[ResponseState, ...]] = {
    ResponseState.IDLE: (ResponseState.STARTED, ResponseState.COMPLETE),
    ResponseState.STARTED: (ResponseState.STREAMING, ResponseState.COMPLETE, ResponseState.IDLE),
    ResponseState.STREAMING: (ResponseState.COMPLETE,),
    ResponseState.COMPLETE: (),
}


# The members under module names, for the per-request path: on Python 3.11 reading
# ``RequestState.RECEIVING`` is an attribute lookup on the enum class that the interpreter
# does not specialise (~40 ns), and a request compares states a few dozen times.
_EXPECTING = RequestState.EXPECTING
_RECEIVING = RequestState.RECEIVING
_RECEIVED = RequestState.RECEIVED
_DELIVERED = RequestState.DELIVERED
_DISCONNECTED = RequestState.DISCONNECTED
_IDLE = ResponseState.IDLE
_STARTED = ResponseState.STARTED
_STREAMING = ResponseState.STREAMING
_COMPLETE = ResponseState.COMPLETE


class Connection(Protocol):
    """What a cycle needs from its connection (implemented in ``tcp.py``)."""

    writable: asyncio.Event  #: set while the transport takes writes (``send`` waits on it)
    write_paused: bool  #: ``not writable.is_set()``, read without a call
    closing: bool  #: the connection closes after this response (shutdown, last request)
    access_log: bool
    server_headers: ServerHeaders

    def write(self, data: bytes) -> bool:
        """Queue bytes for the client; ``False`` (nothing queued) once it is gone."""

    def pause_reading(self) -> None:
        """Stop reading from the socket."""

    def resume_reading(self) -> None:
        """Read from the socket again."""

    def close(self) -> None:
        """Close the connection after the bytes already queued."""

    def finished(self, cycle: HTTPCycle) -> None:
        """``cycle.run`` is over (its last call, in its task): the next request, or close."""

    def flush_later(self, cycle: HTTPCycle) -> None:
        """Call ``cycle.flush_head()`` on the loop's next turn (a started head whose first body
        message may come late). Many cycles share one callback: no loop handle per request."""

    def gone(self) -> bool:
        """Whether the transport is closed or closing (from either side)."""


class HTTPCycle:
    """The state of one request; the connection feeds it, the app drives it."""

    __slots__ = (
        "_body_ready",
        "_framing",
        "_head",
        "began",
        "body",
        "connection",
        "keep_alive",
        "request",
        "request_state",
        "response_headers",
        "response_state",
        "scope",
        "sent",
        "status",
    )

    def __init__(self, connection: Connection, request: Request, scope: Scope) -> None:
        self.connection = connection
        self.request = request
        self.scope = scope
        # The request body not received yet: the bytes as they came while there is one piece
        # (receive() passes it on uncopied), joined in a bytearray once a second comes.
        self.body: bytes | bytearray | None = None
        if not request.content_length and not request.chunked:
            # No body (RFC 9112 §6.3: none without Content-Length or Transfer-Encoding): the
            # request is whole with its head, and the connection feeds this cycle nothing.
            self.request_state = _RECEIVED
        else:
            self.request_state = _EXPECTING if request.expect_continue else _RECEIVING
        self.response_state = _IDLE
        self.keep_alive = request.keep_alive
        self.status = 0
        #: The response's headers, for the access line (kept only when it is written).
        self.response_headers: Sequence[tuple[bytes, bytes]] = ()
        self.sent = 0  # response body bytes, for the access line
        self.began = time.perf_counter() if connection.access_log else 0.0
        self._head = b""  # the response head while STARTED
        # Set when the body grows or ends, or the cycle ends, for a receive() waiting on it;
        # made by the first such wait (most requests never wait: no allocation for them).
        self._body_ready: asyncio.Event | None = None
        self._framing = ResponseFraming(
            request.method, request.http_version, request.keep_alive, connection.server_headers
        )

    def _move_request(self, state: RequestState) -> None:
        if state not in _REQUEST_MOVES[self.request_state]:
            raise InternalError.illegal_move("HTTPCycle.request_state", self.request_state, state)
        self.request_state = state

    def _move_response(self, state: ResponseState) -> None:
        if state not in _RESPONSE_MOVES[self.response_state]:
            raise InternalError.illegal_move("HTTPCycle.response_state", self.response_state, state)
        self.response_state = state

    # -- fed by the connection ------------------------------------------------------------

    def feed_body(self, data: bytes) -> None:
        if self.request_state is not _RECEIVING:
            # From EXPECTING: the client sent the body without waiting for 100 Continue
            # (RFC 9110 §10.1.1 lets us omit it then). From any other state: a bug.
            self._move_request(_RECEIVING)
        body = self.body
        if not body:
            body = self.body = data if data.__class__ is bytes else bytes(data)
        elif body.__class__ is bytes:
            body = self.body = bytearray(body)
            body += data
        else:
            body += data
        self._wake()
        if len(body) > HIGH_WATER:
            self.connection.pause_reading()

    def end_body(self) -> None:
        if _RECEIVED not in _REQUEST_MOVES[self.request_state]:  # _move_request, inlined
            self._move_request(_RECEIVED)  # raises
        self.request_state = _RECEIVED
        if self._body_ready is not None:
            self._body_ready.set()

    def close_after(self) -> None:
        """Answer with ``Connection: close`` and close the connection after the response."""
        self.keep_alive = self._framing.keep_alive = False

    def lost(self) -> None:
        """The client is gone (called again once the connection is lost: a no-op)."""
        if self.request_state is not _DISCONNECTED:
            self._move_request(_DISCONNECTED)
        self._wake()

    def reusable(self) -> bool:
        """Whether the connection may carry another request after this one: the response is
        complete, the request body was read to its end (its rest is not taken for the next
        request), and neither side asked to close."""
        return (
            self.keep_alive
            and self.response_state is _COMPLETE
            and (self.request_state is _RECEIVED or self.request_state is _DELIVERED)
        )

    def _wake(self) -> None:
        if self._body_ready is not None:
            self._body_ready.set()

    async def _wait(self) -> None:
        if self._body_ready is None:
            self._body_ready = asyncio.Event()
        self._body_ready.clear()
        await self._body_ready.wait()

    # -- the app's side ---------------------------------------------------------------------

    async def receive(self) -> Message:
        if self.request_state is _EXPECTING and self.response_state is _IDLE:
            # RFC 9110 §10.1.1: answer 100 once the app shows it wants the body.
            self._move_request(_RECEIVING)
            self.connection.write(_CONTINUE)
        state = self.request_state
        if state is _DELIVERED or state is _DISCONNECTED:
            # ASGI: once the body is all delivered, receive() waits for the disconnect; after
            # the response is complete the request is over, which is a disconnect too.
            while not (self.request_state is _DISCONNECTED or self.response_state is _COMPLETE):
                await self._wait()
            return {"type": "http.disconnect"}
        while not self.body and (
            self.request_state is _RECEIVING or self.request_state is _EXPECTING
        ):
            self.connection.resume_reading()
            await self._wait()
        if self.request_state is _DISCONNECTED:
            return {"type": "http.disconnect"}
        body = self.body
        data = b""
        if body:
            data = body if body.__class__ is bytes else bytes(body)
            self.body = None
        self.connection.resume_reading()
        more = self.request_state is not _RECEIVED
        if not more:
            self._move_request(_DELIVERED)
        return {"type": "http.request", "body": data, "more_body": more}

    async def send(self, message: Message) -> None:
        if self.request_state is _DISCONNECTED:
            raise ClientDisconnected("the client disconnected")
        kind = message["type"]
        if kind != "http.response.body":
            if kind == "http.response.start":
                self._start(message)
            return  # unknown message types are ignored, per the spec's extension rules
        state = self.response_state
        if state is _IDLE:
            raise ASGIContractError("http.response.body sent before http.response.start")
        if state is _COMPLETE:
            return  # ASGI: ignored after the final body
        connection = self.connection
        if connection.write_paused:
            if connection.gone():  # closing with bytes unsent: writable may never come
                self.lost()
                raise ClientDisconnected("the client disconnected")
            await self._writable()
        data = message.get("body", b"")
        if data.__class__ is not bytes:
            data = bytes(data)
        more = message.get("more_body", False)
        if connection.access_log:
            self.sent += len(data)  # for the access line only
        out = self._framing.body(data) if more else self._framing.last(data)
        state = self.response_state
        if state is _STARTED:
            # The head goes out with the first body message: one write, one syscall.
            out, self._head = self._head + out, b""
        if not connection.write(out):
            # The transport failed or closed, but connection_lost() has not run yet: it only
            # runs when the loop gets a turn, and an app sending in a loop on a writable
            # transport never gives it one. Without this check that app spins forever on a
            # dead connection, and starves every other connection with it.
            self.lost()
            raise ClientDisconnected("the client disconnected")
        if more:
            if state is _STARTED:
                self.response_state = _STREAMING  # a legal move (_RESPONSE_MOVES)
            return
        if _COMPLETE not in _RESPONSE_MOVES[state]:  # _move_response, inlined
            self._move_response(_COMPLETE)  # raises
        self.response_state = _COMPLETE
        if self._body_ready is not None:
            self._body_ready.set()

    async def _writable(self) -> None:
        """Wait until the transport takes writes again: the client reads, or is gone."""
        await self.connection.writable.wait()
        if self.request_state is _DISCONNECTED:  # woken by connection_lost()
            raise ClientDisconnected("the client disconnected")

    def _start(self, message: Message) -> None:
        if self.response_state is not _IDLE:
            raise ASGIContractError("http.response.start sent twice")
        try:
            status = message["status"]  # ASGI: "status (int)"
            if status.__class__ is not int:
                status = int(status)
        except (KeyError, TypeError, ValueError):
            raise ASGIContractError(
                f"invalid status {message.get('status')!r} in http.response.start"
            ) from None
        headers = message.get("headers", ())
        if headers.__class__ is not list and headers.__class__ is not tuple:
            headers = list(headers)  # any iterable (ASGI): read once, here
        connection = self.connection
        framing = self._framing
        if connection.closing:
            framing.keep_alive = False  # tell the client: Connection: close
        # ASGIContractError for an invalid status or header: raised to the app, never sent.
        self._head = framing.head(status, headers)
        self.response_state = _STARTED  # from IDLE, checked above: a legal move
        self.status = status
        if connection.access_log:
            self.response_headers = [(bytes(name), bytes(value)) for name, value in headers]
        self.keep_alive = framing.keep_alive
        # The head waits for the first body message so that both go out in one write, but
        # only until the loop's next turn: a streaming response (long polling, server-sent
        # events) whose first chunk comes late still shows its head at once.
        connection.flush_later(self)

    def flush_head(self) -> None:
        """Write the head now if it still waits for its first body message."""
        if self.response_state is _STARTED and self.request_state is not _DISCONNECTED:
            self.connection.write(self._head)
            self._head = b""
            self._move_response(_STREAMING)

    # -- running the app --------------------------------------------------------------------

    async def run(self, app: ASGIApp) -> None:
        """Call the app; turn what it did into a complete response or a closed connection;
        then tell the connection (``finished``), the last thing this cycle does."""
        try:
            try:
                await app(self.scope, self.receive, self.send)
            except ClientDisconnected:
                pass
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError):
                    self.connection.close()
                    raise
                self._app_failed(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                if self.response_state is not _COMPLETE:
                    self._app_returned()
            if self.response_state is _COMPLETE and self.connection.access_log:
                log_request(
                    self.scope,
                    self.request,
                    self.status,
                    self.response_headers,
                    self.sent,
                    self.began,
                )
        finally:
            # Here, in the request's task, rather than in a done callback: that would cost
            # each request a callback and a turn of the loop.
            self.connection.finished(self)

    def _app_returned(self) -> None:
        if self.request_state is _DISCONNECTED:
            return
        if self.response_state is _IDLE:
            logger.error("ASGI app returned without starting a response: %s", self._label())
            self._send_500()
        elif self.response_state is not _COMPLETE:
            self.flush_head()
            logger.error("ASGI app returned before its response was complete: %s", self._label())
            self.connection.close()

    def _app_failed(self, exc: BaseException) -> None:
        if self.request_state is _DISCONNECTED:
            return
        if self.response_state is _STARTED:
            # Started, but not a byte written yet: the client can still get a clean 500.
            self._head = b""
            self._move_response(_IDLE)
        if self.response_state is _IDLE:
            logger.error("Exception in ASGI application: %s", self._label(), exc_info=exc)
            self._send_500()
        else:
            logger.error(
                "Exception in ASGI application after the response started; closing the "
                "connection: %s",
                self._label(),
                exc_info=exc,
            )
            self.connection.close()

    def _send_500(self) -> None:
        framing = ResponseFraming(self.request.method, self.request.http_version, False)
        body = plain_body(500)
        head = framing.head(500, plain_headers(body))
        self.connection.write(head + framing.body(body) + framing.end())
        self._move_response(_COMPLETE)
        self.status = 500
        self.keep_alive = False

    def _label(self) -> str:
        return f"{self.request.method} {self.request.target.decode('latin-1')}"
