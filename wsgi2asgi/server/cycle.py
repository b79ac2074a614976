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

Example (inside the connection)::

    cycle = HTTPCycle(connection, request, scope)
    await cycle.run(app)
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Protocol

from wsgi2asgi.exceptions import ASGIContractError, ClientDisconnected
from wsgi2asgi.responses import plain_body, plain_headers
from wsgi2asgi.server.framing import ResponseFraming, ServerHeaders
from wsgi2asgi.server.http11 import Request
from wsgi2asgi.server.logs import log_request

if TYPE_CHECKING:
    from wsgi2asgi.typing import ASGIApp, Message, Scope

__all__ = ["HIGH_WATER", "Connection", "HTTPCycle"]

logger = logging.getLogger("wsgi2asgi.error")

#: Request body bytes buffered before the socket is paused.
HIGH_WATER = 64 * 1024
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Connection(Protocol):
    """What a cycle needs from its connection (implemented in ``tcp.py``)."""

    writable: asyncio.Event
    closing: bool  #: the connection closes after this response (shutdown, last request)
    access_log: bool
    server_headers: ServerHeaders

    def write(self, data: bytes) -> None:
        """Queue bytes for the client."""

    def pause_reading(self) -> None:
        """Stop reading from the socket."""

    def resume_reading(self) -> None:
        """Read from the socket again."""

    def close(self) -> None:
        """Close the connection after the bytes already queued."""

    def gone(self) -> bool:
        """Whether the transport is closed or closing (from either side)."""


class HTTPCycle:
    """The state of one request; the connection feeds it, the app drives it."""

    def __init__(self, connection: Connection, request: Request, scope: Scope) -> None:
        self.connection = connection
        self.request = request
        self.scope = scope
        self.body = bytearray()
        self.body_complete = False
        self.body_delivered = False
        self.disconnected = False
        self.response_started = False
        self.response_complete = False
        self.keep_alive = request.keep_alive
        self.status = 0
        self.response_headers: list[tuple[bytes, bytes]] = []  # for the access line
        self.sent = 0  # response body bytes, for the access line
        self.began = time.perf_counter()
        self.sent_continue = not request.expect_continue
        self._head = b""
        self._body_ready = asyncio.Event()
        self._framing = ResponseFraming(
            request.method, request.http_version, request.keep_alive, connection.server_headers
        )

    # -- fed by the connection ------------------------------------------------------------

    def feed_body(self, data: bytes) -> None:
        self.body += data
        self._body_ready.set()
        if len(self.body) > HIGH_WATER:
            self.connection.pause_reading()

    def end_body(self) -> None:
        self.body_complete = True
        self._body_ready.set()

    def close_after(self) -> None:
        """Answer with ``Connection: close`` and close the connection after the response."""
        self.keep_alive = self._framing.keep_alive = False

    def lost(self) -> None:
        """The client is gone."""
        self.disconnected = True
        self._body_ready.set()

    # -- the app's side ---------------------------------------------------------------------

    async def receive(self) -> Message:
        if not self.sent_continue and not self.response_started and not self.disconnected:
            # RFC 9110 §10.1.1: answer 100 once the app shows it wants the body.
            self.sent_continue = True
            self.connection.write(_CONTINUE)
        if self.body_delivered or self.disconnected:
            # ASGI: once the body is all delivered, receive() waits for the disconnect; after
            # the response is complete the request is over, which is a disconnect too.
            while not (self.disconnected or self.response_complete):
                self._body_ready.clear()
                await self._body_ready.wait()
            return {"type": "http.disconnect"}
        while not self.body and not self.body_complete and not self.disconnected:
            self._body_ready.clear()
            self.connection.resume_reading()
            await self._body_ready.wait()
        if self.disconnected:
            return {"type": "http.disconnect"}
        data = bytes(self.body)
        self.body.clear()
        self.connection.resume_reading()
        more = not self.body_complete
        self.body_delivered = not more
        return {"type": "http.request", "body": data, "more_body": more}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.disconnected:
            raise ClientDisconnected("the client disconnected")
        if kind == "http.response.start":
            if self.response_started:
                raise ASGIContractError("http.response.start sent twice")
            status = int(message["status"])
            headers: list[tuple[bytes, bytes]] = [
                (bytes(name), bytes(value)) for name, value in message.get("headers", ())
            ]
            if self.connection.closing:
                self._framing.keep_alive = False  # tell the client: Connection: close
            # ValueError for an invalid status or header: raised to the app, never sent.
            self._head = self._framing.head(status, headers)
            self.response_started = True
            self.status = status
            self.response_headers = headers
            self.keep_alive = self._framing.keep_alive
            # The head waits for the first body message so that both go out in one write,
            # but only until the loop's next turn: a streaming response (long polling,
            # server-sent events) whose first chunk comes late still shows its head at once.
            asyncio.get_running_loop().call_soon(self._flush_head)
        elif kind == "http.response.body":
            if not self.response_started:
                raise ASGIContractError("http.response.body sent before http.response.start")
            if self.response_complete:
                return  # ASGI: ignored after the final body
            if self.connection.gone():
                # The transport failed or closed, but connection_lost() has not run yet: it
                # only runs when the loop gets a turn, and an app sending in a loop on a
                # writable transport never gives it one. Without this check that app spins
                # forever on a dead connection, and starves every other connection with it.
                self.lost()
                raise ClientDisconnected("the client disconnected")
            if not self.connection.writable.is_set():
                await self.connection.writable.wait()
                if self.disconnected:
                    raise ClientDisconnected("the client disconnected")
            data = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            self.sent += len(data)
            out = self._framing.body(data)
            if not more:
                out += self._framing.end()
            if self._head:
                # The head goes out with the first body message: one write, one syscall.
                out, self._head = self._head + out, b""
            if out:
                self.connection.write(out)
            if not more:
                self.response_complete = True
                self._body_ready.set()
        # Unknown message types are ignored, per the spec's extension rules.

    def _flush_head(self) -> None:
        if self._head and not self.disconnected:
            self.connection.write(self._head)
            self._head = b""

    # -- running the app --------------------------------------------------------------------

    async def run(self, app: ASGIApp) -> None:
        """Call the app; turn what it did into a complete response or a closed connection."""
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
            if not self.response_started and not self.disconnected:
                logger.error("ASGI app returned without starting a response: %s", self._label())
                self._send_500()
            elif not self.response_complete and not self.disconnected:
                if self._head:
                    self.connection.write(self._head)
                logger.error(
                    "ASGI app returned before its response was complete: %s", self._label()
                )
                self.connection.close()
        if self.response_complete and self.connection.access_log:
            log_request(
                self.scope,
                self.request,
                self.status,
                self.response_headers,
                self.sent,
                self.began,
            )

    def _app_failed(self, exc: BaseException) -> None:
        if self.disconnected:
            return
        if self._head:
            # Started, but not a byte written yet: the client can still get a clean 500.
            self._head = b""
            self.response_started = False
        if not self.response_started:
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
        self.response_started = self.response_complete = True
        self.status = 500
        self.keep_alive = False

    def _label(self) -> str:
        return f"{self.request.method} {self.request.target.decode('latin-1')}"
