"""A WebSocket session with an ASGI app in-process: the test plays the client.

Rules this module keeps (ASGI ``www.rst``, and what our server does in ``server/websocket.py``):

* The app gets ``websocket.connect`` first; ``websocket.accept`` opens the session. Closing
  (or returning) before accepting refuses the handshake: 403, raised as
  :class:`~wsgi2asgi.exceptions.WebSocketRejected`; so does a denial response (the
  ``websocket.http.response`` extension, offered in the scope), with its status and body.
* ``receive_*`` after the app sent ``websocket.close`` raise
  :class:`~wsgi2asgi.exceptions.WebSocketClosed` with its code and reason; an app that returns
  without closing has closed with 1000, one that raised with 1011 (or its exception is raised,
  with ``raise_app_exceptions``).
* ``close()`` sends ``websocket.disconnect`` with the code and waits for the app to return (at
  most ``CLOSE_GRACE`` seconds, then it is cancelled); the app's ``send`` then raises
  :class:`~wsgi2asgi.exceptions.ClientDisconnected`, as on a real connection.
* Every wait for the app is bounded by ``timeout`` (``TimeoutError``), so a test never hangs.

Example::

    async with client.websocket_connect("/ws") as ws:
        await ws.send_text("hello")
        assert await ws.receive_text() == "HELLO"
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from wsgi2asgi.exceptions import (
    ASGIContractError,
    ClientDisconnected,
    WebSocketClosed,
    WebSocketRejected,
)
from wsgi2asgi.testing.transport import CLOSE_GRACE
from wsgi2asgi.typing import ASGIApp, Message, Scope

__all__ = ["AsyncWebSocketSession"]


class AsyncWebSocketSession:
    """One WebSocket connection to ``app``, driven by the test (made by ``websocket_connect``).

    Args:
        app: the ASGI app.
        scope: the ``websocket`` scope (see :func:`~wsgi2asgi.testing.transport.request_scope`).
        timeout: seconds to wait for the app each time (``None``: for ever).
        raise_app_exceptions: raise the app's exception in the test (else: close code 1011).

    Attributes:
        subprotocol: the subprotocol the app accepted, or ``None``.
        headers: the extra headers the app accepted with.
    """

    def __init__(
        self,
        app: ASGIApp,
        scope: Scope,
        *,
        timeout: float | None = 5.0,
        raise_app_exceptions: bool = True,
    ) -> None:
        self.app = app
        self.scope = scope
        self.timeout = timeout
        self.raise_app_exceptions = raise_app_exceptions
        self.subprotocol: str | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._disconnected = False
        self._closed_by_app: Message | None = None
        self._reported = False  # the app's exception was raised in the test already
        self._app_closed = False  # the app sent websocket.close

    async def connect(self) -> None:
        """Open the session: the app accepts, or the handshake is refused.

        Raises:
            WebSocketRejected: the app closed before accepting, or sent a denial response.
        """
        self._task = asyncio.create_task(self._run())
        await self._to_app.put({"type": "websocket.connect"})
        message = await self._next()
        kind = message["type"]
        if kind == "websocket.accept":
            self.subprotocol = message.get("subprotocol")
            self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
            return
        rejection = WebSocketRejected(403)  # ASGI: a close before accept is an HTTP 403
        if kind == "websocket.http.response.start":
            rejection = await self._denial(message)
        self._disconnected = True
        await self._finish(CLOSE_GRACE)
        raise rejection

    async def send_text(self, text: str) -> None:
        """Send a text message to the app."""
        await self._to_app.put({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message to the app."""
        await self._to_app.put({"type": "websocket.receive", "bytes": data})

    async def send_json(self, value: Any) -> None:
        """Send ``value`` as JSON in a text message."""
        await self.send_text(json.dumps(value))

    async def receive(self) -> Message:
        """The app's next ``websocket.send`` message.

        Raises:
            WebSocketClosed: the app closed the session (or returned, or raised).
        """
        if self._closed_by_app is not None:
            raise _closed(self._closed_by_app)
        message = await self._next()
        if message["type"] == "websocket.send":
            return message
        if message["type"] == "websocket.close":
            self._closed_by_app = message
            raise _closed(message)
        raise ASGIContractError(f"the app sent {message['type']!r} on an accepted WebSocket")

    async def receive_text(self) -> str:
        """The app's next message, which must be text."""
        message = await self.receive()
        if message.get("text") is None:
            raise TypeError(f"expected a text message, the app sent {message!r}")
        return str(message["text"])

    async def receive_bytes(self) -> bytes:
        """The app's next message, which must be binary."""
        message = await self.receive()
        if message.get("bytes") is None:
            raise TypeError(f"expected a binary message, the app sent {message!r}")
        return bytes(message["bytes"])

    async def receive_json(self) -> Any:
        """The app's next message (text or binary), parsed as JSON."""
        message = await self.receive()
        return json.loads(message["text"] if message.get("text") is not None else message["bytes"])

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the session as the client (``websocket.disconnect``); wait for the app to end."""
        if not self._disconnected:
            self._disconnected = True
            await self._to_app.put({"type": "websocket.disconnect", "code": code, "reason": reason})
        await self._finish(CLOSE_GRACE)
        failure = self._failure()
        if failure is not None and self.raise_app_exceptions and not self._reported:
            self._reported = True  # an error the test never received is not lost
            raise failure

    async def _run(self) -> None:
        try:
            await self.app(self.scope, self._to_app.get, self._send)
        finally:
            # An app that returns has closed: 1000 (our server's rule); the error case is
            # told apart in _next().
            self._from_app.put_nowait({"type": "websocket.close", "code": 1000, "ended": True})

    async def _send(self, message: Message) -> None:
        if self._disconnected or self._app_closed:
            raise ClientDisconnected("the WebSocket is closed")
        if message["type"] == "websocket.close":
            self._app_closed = True  # as on our server: nothing can be sent after a close
        await self._from_app.put(message)

    async def _next(self) -> Message:
        try:
            message = await asyncio.wait_for(self._from_app.get(), self.timeout)
        except TimeoutError:
            raise TimeoutError(f"the app sent nothing within {self.timeout} s") from None
        if message.get("ended"):
            await self._finish(0)
            failure = self._failure()
            if failure is not None:
                if self.raise_app_exceptions:
                    self._reported = True
                    raise failure
                return {"type": "websocket.close", "code": 1011, "reason": ""}
            message = {"type": "websocket.close", "code": 1000, "reason": ""}
        return message

    async def _denial(self, start: Message) -> WebSocketRejected:
        body = b""
        while True:
            message = await self._next()
            if message["type"] != "websocket.http.response.body":
                break
            body += bytes(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", ())]
        return WebSocketRejected(int(start["status"]), headers, body)

    async def _finish(self, grace: float) -> None:
        task = self._task
        if task is None or task.done():
            return
        _, pending = await asyncio.wait({task}, timeout=grace)
        if pending:
            task.cancel()
            await asyncio.wait({task})

    def _failure(self) -> BaseException | None:
        task = self._task
        if task is None or not task.done() or task.cancelled():
            return None
        failure = task.exception()
        return None if isinstance(failure, ClientDisconnected) else failure


def _closed(message: Message) -> WebSocketClosed:
    return WebSocketClosed(int(message.get("code") or 1000), str(message.get("reason") or ""))
