"""One request of ``asgi_to_wsgi``: a task on the adapter's loop and a WSGI thread, talking.

The task (the ASGI app's side) puts commands on a thread-safe queue; the WSGI thread that
called the adapter takes them in order, does the blocking I/O they ask for, and answers on the
loop. The WSGI thread never blocks the loop and the loop never waits on the WSGI thread, except
through ``WINDOW``: at most that many body chunks wait for the server before ``send`` waits
(backpressure). Rules are those of :mod:`wsgi2asgi.asgi` (see its docstring).

The exchange depends on two Protocols, not on the classes behind them: :class:`Adapter` (what
it needs of :class:`~wsgi2asgi.asgi.ASGIAdapter`) and :class:`EventLoopThread` (what it needs of
:class:`~wsgi2asgi.runners.Runner`).

Example (inside the adapter)::

    exchange = Exchange(adapter, loop_thread, app, scope, environ, length)
    return exchange.respond(start_response)     # the WSGI response iterable
"""

from __future__ import annotations

import asyncio
import logging
import queue
from collections.abc import Callable, Generator, Iterable
from typing import Any, Protocol

from wsgi2asgi.exceptions import ASGIContractError, ClientDisconnected
from wsgi2asgi.futures import resolve
from wsgi2asgi.responses import start_plain
from wsgi2asgi.scope import start_response_args
from wsgi2asgi.typing import ASGIApp, Environ, Message, Scope, StartResponse

__all__ = ["CHUNK", "WINDOW", "Adapter", "EventLoopThread", "Exchange", "Response"]

logger = logging.getLogger("wsgi2asgi.asgi")

CHUNK = 64 * 1024  #: bytes of ``wsgi.input`` read per ``receive()``
WINDOW = 8  #: body chunks the app may send ahead of the WSGI server


class Adapter(Protocol):
    """What an exchange needs from the adapter that runs it (``ASGIAdapter``)."""

    #: Seconds the app's task may go on after the WSGI side let go of the request early (the
    #: client went away); then the task is cancelled.
    disconnect_grace: float

    def track(self, exchange: Exchange) -> None:
        """Count ``exchange`` as in progress (the adapter's ``close()`` waits for it)."""

    def untrack(self, exchange: Exchange) -> None:
        """``exchange`` is over (its WSGI side let go of it)."""


class EventLoopThread(Protocol):
    """The event loop an exchange's task runs on, on a thread of its own (``runners.Runner``)."""

    loop: asyncio.AbstractEventLoop

    def call_soon(self, callback: Callable[..., object], *args: Any) -> bool:
        """Schedule ``callback(*args)`` on the loop from any thread; False if it is closed."""


class Exchange:
    """One request: a task on the loop and a WSGI thread, talking through ``commands``.

    The task puts commands on a thread-safe queue: ``("read", future)``, ``("start", status,
    headers)``, ``("body", data, more)``, ``("done",)``, ``("error", exc)``, ``("closed",)``.
    The WSGI thread takes them in order and answers on the loop with ``call_soon``. Attributes
    marked "loop" are only touched on the loop thread.
    """

    def __init__(
        self,
        adapter: Adapter,
        loop_thread: EventLoopThread,
        app: ASGIApp,
        scope: Scope,
        environ: Environ,
        length: int | None,
    ) -> None:
        self.adapter = adapter
        self.loop_thread = loop_thread
        self.app = app  # ASGI 3 (the adapter has made a double callable one)
        self.scope = scope
        self.environ = environ
        self.commands: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.remaining = length  # WSGI: body bytes still to read, None = up to EOF
        self.released = False  # WSGI: done with this request
        self.task: asyncio.Task[None] | None = None  # loop
        self.gone = asyncio.Event()  # loop: the WSGI side is done; no more I/O
        self.wakeup = asyncio.Event()  # loop: a body chunk was consumed, or gone
        self.unconsumed = 0  # loop: body chunks the WSGI thread has not yet taken
        self.started = False  # loop: http.response.start was sent
        self.complete = False  # loop: the last body chunk was sent
        self.no_body = length == 0  # loop: answer receive() without asking the WSGI thread
        self.request_done = False  # loop: receive() gave more_body=False
        self.input_broken = False  # loop: the body ended short; receive() says disconnect

    # -- WSGI thread ------------------------------------------------------------------------

    def respond(self, start_response: StartResponse) -> Iterable[bytes]:
        self.adapter.track(self)
        if not self.loop_thread.call_soon(self._start_task):
            self.release(early=False)
            return start_plain(start_response, 503)
        try:
            command = self._next_command()
            if command[0] == "start":
                start_response(command[1], command[2])
                return Response(self)
        except BaseException:
            self.release(early=True)
            raise
        self.release(early=False)
        if command[0] == "error" and isinstance(command[1], Exception):
            logger.error("Exception in ASGI app (%s)", self._request(), exc_info=command[1])
            return start_plain(start_response, 500)
        if command[0] == "done":
            logger.error("ASGI app returned without a response (%s)", self._request())
            return start_plain(start_response, 500)
        return start_plain(start_response, 503)  # cancelled: the adapter is closing

    def body(self) -> Generator[bytes, None, None]:
        finished = False
        try:
            while True:
                command = self._next_command()
                if command[0] == "body":
                    if command[1]:
                        yield command[1]
                    self.loop_thread.call_soon(self._consumed)
                    if not command[2]:
                        finished = True
                        return
                elif command[0] == "done":
                    raise ASGIContractError("ASGI app returned before the end of the response body")
                elif command[0] == "error" and isinstance(command[1], Exception):
                    raise command[1]
                else:
                    raise RuntimeError("the ASGI adapter closed during the response")
        finally:
            self.release(early=not finished)

    def release(self, *, early: bool) -> None:
        """The WSGI side is done with the request (``early``: before the response ended)."""
        if self.released:
            return
        self.released = True
        self.adapter.untrack(self)
        self.loop_thread.call_soon(self._finish, early)

    def abandon(self) -> None:
        """Any thread: the loop is gone; wake the WSGI thread if it waits for a command."""
        self.commands.put(("closed",))

    def _next_command(self) -> tuple[Any, ...]:
        while True:
            command = self.commands.get()
            if command[0] != "read":
                return command
            self.loop_thread.call_soon(resolve, command[1], self._read())

    def _read(self) -> tuple[bytes, bool] | None:
        """Read the next piece of the body: ``(data, more)``, or None if it ended short."""
        size = CHUNK if self.remaining is None else min(CHUNK, self.remaining)
        if size == 0:
            return b"", False
        try:
            data = self.environ["wsgi.input"].read(size)
        except Exception as exc:
            logger.info("reading the request body failed (%s): %r", self._request(), exc)
            return None
        if not isinstance(data, bytes):
            logger.error("wsgi.input.read() returned %s, not bytes", type(data).__name__)
            return None
        if self.remaining is None:
            return data, bool(data)
        if not data:
            logger.info("request body ended %d bytes short (%s)", self.remaining, self._request())
            return None
        self.remaining -= len(data)
        return data, self.remaining > 0

    def _request(self) -> str:
        return f"{self.scope['method']} {self.scope['path']}"

    # -- event loop -------------------------------------------------------------------------

    def _start_task(self) -> None:
        if not self.gone.is_set():
            self.task = self.loop_thread.loop.create_task(self._serve())

    async def _serve(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if self.complete or self.gone.is_set():
                _report_late_error(exc)  # nobody on the WSGI side will read a command now
            else:
                self.commands.put(("error", exc))
            if not isinstance(exc, Exception):
                raise
        else:
            self.commands.put(("done",))

    async def receive(self) -> Message:
        if self.input_broken or self.gone.is_set():
            return {"type": "http.disconnect"}
        if self.request_done:
            # ASGI: after the body, receive() waits for the disconnect: the end of the response.
            await self.gone.wait()
            return {"type": "http.disconnect"}
        if self.no_body:
            self.request_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        future: asyncio.Future[tuple[bytes, bool] | None] = self.loop_thread.loop.create_future()
        self.commands.put(("read", future))
        piece = await future
        if piece is None:
            self.input_broken = True
            return {"type": "http.disconnect"}
        data, more = piece
        self.request_done = not more
        return {"type": "http.request", "body": data, "more_body": more}

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            if self.started:
                raise ASGIContractError("http.response.start sent twice")
            status, headers = start_response_args(message)
            self._check_gone()
            self.started = True
            self.commands.put(("start", status, headers))
        elif kind == "http.response.body":
            await self._send_body(message)
        elif kind != "http.response.trailers":  # trailers: not declared, WSGI has none
            raise ASGIContractError(f"unexpected ASGI message {kind!r} in an http connection")

    async def _send_body(self, message: Message) -> None:
        if not self.started:
            raise ASGIContractError("http.response.body sent before http.response.start")
        if self.complete:
            raise ASGIContractError("http.response.body sent after the response ended")
        self._check_gone()
        body = message.get("body", b"")
        if not isinstance(body, bytes | bytearray | memoryview):
            raise ASGIContractError(f"body must be bytes, not {type(body).__name__}")
        more = bool(message.get("more_body", False))
        self.complete = not more
        if self.scope["method"] == "HEAD":
            body = b""  # HTTP: no body in a response to HEAD; WSGI apps strip it themselves
        if not body and more:
            return
        self.commands.put(("body", bytes(body), more))
        self.unconsumed += 1
        while self.unconsumed >= WINDOW:
            self._check_gone()
            self.wakeup.clear()
            await self.wakeup.wait()

    def _check_gone(self) -> None:
        if self.gone.is_set():
            raise ClientDisconnected("the WSGI server closed the response")

    def _consumed(self) -> None:
        self.unconsumed -= 1
        self.wakeup.set()

    def _finish(self, early: bool) -> None:
        """The WSGI side is done: answer what it will never read, stop a task left alone."""
        self.gone.set()
        self.wakeup.set()
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                break
            if command[0] == "read":
                resolve(command[1], None)
            elif command[0] == "error":
                _report_late_error(command[1])
        task = self.task
        if early and task is not None and not task.done():
            timer = self.loop_thread.loop.call_later(self.adapter.disconnect_grace, task.cancel)
            task.add_done_callback(lambda _: timer.cancel())


class Response:
    """The WSGI response iterable; ``close()`` always ends the request (PEP 3333)."""

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange
        self._body: Generator[bytes, None, None] | None = None

    def __iter__(self) -> Generator[bytes, None, None]:
        if self._body is None:
            self._body = self._exchange.body()
        return self._body

    def close(self) -> None:
        """End the request, whether or not the body was read to the end."""
        if self._body is not None:
            self._body.close()  # runs its ``finally`` if it ever started
        self._exchange.release(early=True)  # a no-op if the body already released it


def _report_late_error(exc: BaseException) -> None:
    if isinstance(exc, ClientDisconnected | asyncio.CancelledError):
        logger.debug("ASGI app stopped after the client went away: %r", exc)
    else:
        logger.error("Exception in ASGI app after the response ended", exc_info=exc)
