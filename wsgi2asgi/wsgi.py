"""``wsgi_to_asgi``: serve a WSGI app (Flask, Django, any PEP 3333 app) as an ASGI app.

Each request runs on one worker thread of a bounded pool from the app call to the response's
``close()``, in a copy of the request task's context; the event loop only moves bytes, with
backpressure both ways (``streams.py``). Outcomes (``docs/wsgi.md`` has the full table):

* The app raises before the response started → ``500 Internal Server Error``, logged.
* It raises after the response started (or its body falls short of its Content-Length) →
  the exception propagates out of the ASGI app, so the server aborts the connection and the
  client cannot mistake a truncated body for a whole one. A body longer than its
  Content-Length is cut there, and the iterable is not advanced further.
* The client disconnects → the app is no longer iterated, ``wsgi.input`` reads raise
  ``ClientDisconnected``, and ``close()`` runs — PEP 3333: "If the iterable returned by the
  application has a close() method, the server or gateway must call that method upon
  completion of the current request, whether the request was completed normally, or
  terminated early due to an application error during iteration or an early disconnect".
* The ASGI call returns once the response's ``close()`` has returned, never before; the last
  body message goes out first, so the client does not wait for ``close()``.
* ``lifespan``: answered (a WSGI app has none). ``websocket``: closed before accepting, which
  servers answer with 403, per the ASGI spec.

Example::

    from wsgi2asgi import wsgi_to_asgi
    from legacy import app as flask_app

    application = wsgi_to_asgi(flask_app, max_threads=16)
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, TypedDict, Unpack

from wsgi2asgi.bridges import origin
from wsgi2asgi.environ import WSGIErrors, build_environ, response_start
from wsgi2asgi.exceptions import ClientDisconnected, TooManyHeaders, WSGIContractError
from wsgi2asgi.responses import send_plain
from wsgi2asgi.streams import RequestBody, ResponseChannel
from wsgi2asgi.threads import Pool
from wsgi2asgi.typing import ExcInfo, Receive, Scope, Send, WSGIApp

__all__ = [
    "DEFAULT_MAX_THREADS",
    "POOL_EXTENSION",
    "POOL_WARNING_INTERVAL",
    "WSGIAdapter",
    "WSGIOptions",
    "wsgi_to_asgi",
]

logger = logging.getLogger(__name__)

#: Worker threads per adapter unless configured: enough for typical I/O-bound WSGI apps,
#: bounded so a burst cannot create unbounded threads (or database connections).
DEFAULT_MAX_THREADS = 32
#: Seconds between two warnings (per adapter) that requests are waiting for a worker thread.
POOL_WARNING_INTERVAL = 10.0
#: The scope extension through which a server hears of requests waiting for a worker thread:
#: ``scope["extensions"]["wsgi2asgi.pool"]["on_wait"](waiting)`` is called for each, with the
#: number then waiting (``wsgi2asgi serve`` counts them in ``ServerState.pool_waits``).
POOL_EXTENSION = "wsgi2asgi.pool"


class WSGIAdapter:
    """An ASGI app that runs a WSGI app in a bounded pool of worker threads.

    Args:
        app: the WSGI application.
        max_threads: the most requests running the app at once; more wait (without blocking
            the event loop) for a free thread.
        multiprocess: the value of ``wsgi.multiprocess``.
        high_water: response bytes queued for the client before the app is paused.
        max_headers: the most request header lines; more → ``400 Bad Request``.
        duplicate_header_limit: the most lines of one request header name (``None``: no
            limit); more → ``400 Bad Request`` (asgiref's CVE-2025-14550 guard).

    Raises:
        ValueError: ``max_threads`` or ``high_water`` below 1.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        max_threads: int = DEFAULT_MAX_THREADS,
        multiprocess: bool = False,
        high_water: int = 256 * 1024,
        max_headers: int = 1000,
        duplicate_header_limit: int | None = 100,
    ) -> None:
        if high_water < 1:
            raise ValueError("high_water must be at least 1")
        self.app = app
        self.max_threads = max_threads
        self.multiprocess = multiprocess
        self.high_water = high_water
        self.max_headers = max_headers
        self.duplicate_header_limit = duplicate_header_limit
        self.pool = Pool("wsgi2asgi-wsgi", max_workers=max_threads)
        #: Requests that had to wait for a free worker thread, since the adapter was made.
        self.waited = 0
        self._running = 0  # requests handed to the pool and not finished
        self._running_lock = threading.Lock()  # taken by the loop and by worker threads
        self._next_warning = 0.0  # loop time before which no other warning is logged
        self._unreported = 0  # waits since the last warning

    def __repr__(self) -> str:
        return f"WSGIAdapter({self.app!r}, max_threads={self.max_threads})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await _WSGICall(self, scope, receive, send).run()
        elif kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "websocket":
            # ASGI: "If the application ... closes the connection before accepting, the server
            # must ... reject it with HTTP 403". A WSGI app cannot speak WebSocket.
            await send({"type": "websocket.close", "code": 1000})
        else:
            raise ValueError(f"unsupported scope type {kind!r}")

    def close(self) -> None:
        """Stop the worker threads (after the requests in progress)."""
        self.pool.shutdown()

    @property
    def waiting(self) -> int:
        """How many requests are waiting for a worker thread right now."""
        return max(self._running - self.max_threads, 0)

    def _enter(self, scope: Scope) -> None:
        """Count a request handed to the pool; when it must wait for a thread, say so."""
        with self._running_lock:
            self._running += 1
            waiting = self._running - self.max_threads
        if waiting > 0:
            self._pool_full(scope, waiting)

    def _leave(self) -> None:
        """A request's worker thread is done with it (called on that thread)."""
        with self._running_lock:
            self._running -= 1

    def _pool_full(self, scope: Scope, waiting: int) -> None:
        """A full pool is otherwise invisible: count it, tell the server, warn (rate-limited)."""
        self.waited += 1
        self._unreported += 1
        extension = (scope.get("extensions") or {}).get(POOL_EXTENSION)
        if extension is not None:
            extension["on_wait"](waiting)
        now = time.monotonic()
        if now >= self._next_warning:
            self._next_warning = now + POOL_WARNING_INTERVAL
            logger.warning(
                "%d %s waiting for a worker thread of %r (all %d busy; %d waited since the "
                "last such warning): more threads (--threads, max_threads) help an app that "
                "waits on I/O",
                waiting,
                "request" if waiting == 1 else "requests",
                self.app,
                self.max_threads,
                self._unreported,
            )
            self._unreported = 0


class WSGIOptions(TypedDict, total=False):
    """The keyword options of :class:`WSGIAdapter`, which :func:`wsgi_to_asgi` passes on.

    Their defaults and meaning are the class's (written there once).

    Example::

        options: WSGIOptions = {"max_threads": 8}
        application = wsgi_to_asgi(flask_app, **options)
    """

    max_threads: int
    multiprocess: bool
    high_water: int
    max_headers: int
    duplicate_header_limit: int | None


def wsgi_to_asgi(app: WSGIApp, **options: Unpack[WSGIOptions]) -> WSGIAdapter:
    """Return an ASGI app serving the WSGI ``app`` from a bounded pool of worker threads.

    ``wsgi_to_asgi(app, max_threads=8)`` and ``WSGIAdapter(app, max_threads=8)`` are the same.

    Example::

        application = wsgi_to_asgi(flask_app)

    Args:
        app: the WSGI application.
        **options: the keyword options of :class:`WSGIAdapter` (``max_threads``,
            ``multiprocess``, ``high_water``, ``max_headers``, ``duplicate_header_limit``),
            with its defaults.

    Returns:
        The ASGI application (a :class:`WSGIAdapter`).

    Raises:
        ValueError: ``max_threads`` or ``high_water`` below 1.
    """
    return WSGIAdapter(app, **options)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class _WSGICall:
    """One request, one call of the WSGI app: the loop side (``run``) and the worker-thread
    side (``work``). The other way round, one request of ``asgi_to_wsgi``, is an
    :class:`~wsgi2asgi.exchange.Exchange`.

    Crossings between the two, per request: one hand-off to the worker (the pool's), and
    back to the loop only when the loop waits for the channel (a response queued while the
    loop is busy costs none). A one-chunk list response (Flask and Django's kind of body,
    nothing to close) and the end of the call go back together, in one crossing.
    """

    __slots__ = (
        "adapter",
        "body",
        "channel",
        "declared",
        "errors",
        "finished",
        "head",
        "headers",
        "headers_sent",
        "loop",
        "origin",
        "scope",
        "send",
        "sent_bytes",
        "status",
        "watcher",
    )

    def __init__(self, adapter: WSGIAdapter, scope: Scope, receive: Receive, send: Send) -> None:
        self.adapter = adapter
        self.scope = scope
        self.send = send
        loop = self.loop = asyncio.get_running_loop()
        self.channel = ResponseChannel(loop, adapter.high_water, adapter.high_water // 4)
        length, chunked = _request_framing(scope)
        # No body by HTTP/1 framing (RFC 9112 §6.3): nothing to receive. (HTTP/2 and 3 may
        # send a body with neither header: there, the messages tell.)
        bodiless = length == 0 or (
            length is None and not chunked and scope.get("http_version", "1.1") in _HTTP1
        )
        self.body = RequestBody(loop, receive, length, complete=bodiless)
        self.body.on_disconnect = self.channel.close
        self.watcher: asyncio.Task[None] | None = None
        # One per request: a partial line must not mix with another thread's.
        self.errors = WSGIErrors()
        # Worker-thread state.
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_sent = False
        self.finished = False  # the final body message is queued: nothing more is sent
        self.declared: int | None = None
        self.sent_bytes = 0
        self.origin: Any = None
        self.head = scope["method"] == "HEAD"

    # -- loop side ---------------------------------------------------------------------------

    async def run(self) -> None:
        adapter = self.adapter
        try:
            environ = build_environ(
                self.scope,
                self.body,
                self.errors,
                multiprocess=adapter.multiprocess,
                max_headers=adapter.max_headers,
                duplicate_header_limit=adapter.duplicate_header_limit,
            )
        except TooManyHeaders as exc:
            logger.warning("rejected request: %s", exc)
            await send_plain(self.send, 400, exc.reason)
            return
        if not self.body.complete:
            # A body is coming: receive it ahead of the app's reads (bounded by READ_AHEAD),
            # so a read usually finds it here, and notice a client that leaves meanwhile.
            self._watch()
        # The app sees the context variables of the request's task (tracing, request ids set
        # by ASGI middleware), in a copy: what it sets stays with this request.
        context = contextvars.copy_context()
        adapter._enter(self.scope)
        adapter.pool.submit(functools.partial(context.run, self.work, environ))
        wait_for_close = True
        try:
            await self._relay()
        except asyncio.CancelledError:
            wait_for_close = False  # the server gave up on the request: it waits no more
            if self.origin is not None:
                self.origin.cancel_inner()
            raise
        finally:
            # Whatever ended the loop side (done, send failed, cancelled), never leave the
            # worker blocked on a full channel or waiting for body bytes.
            self.channel.close()
            self.body.abandon()
            if self.watcher is not None:
                self.watcher.cancel()
            if wait_for_close:
                # The last body message is out (the client loses no time), but the request
                # is over only when close() has returned (Django's request_finished, a
                # generator's finally): until then the server counts it in flight
                # (--limit-concurrency, the graceful-shutdown drain), and an in-process client
                # does not see the response before the request's side effects.
                await self.channel.wait_done()

    async def _relay(self) -> None:
        """Send what the worker queues until it is done (or the response failed)."""
        channel, send = self.channel, self.send
        started = complete = False
        while items := await channel.get():
            for message, size in items:
                kind = message["type"]
                if kind == "wsgi2asgi.error":
                    if not started:
                        await send_plain(send, 500)
                        return
                    if not complete:
                        raise message["error"]
                elif not complete:  # after the last body: only the end of the call counts
                    await send(message)
                    channel.sent(size)
                    if kind == "http.response.start":
                        started = True
                    elif not message.get("more_body", False):
                        complete = True
            if started and not complete:
                # From now on only receive() can tell that the client left: listen.
                self._watch()

    def _watch(self) -> None:
        if self.watcher is None and not self.channel.closed:
            self.watcher = self.loop.create_task(self.body.feed())

    # -- worker thread -----------------------------------------------------------------------

    def work(self, environ: dict[str, Any]) -> None:
        """Run the app, stream its response, always close it; report the outcome."""
        result: Iterable[bytes] | None = None
        try:
            with origin(self.loop) as here:
                self.origin = here
                result = self.adapter.app(environ, self.start_response)
                self._stream(result)
        except ClientDisconnected:
            logger.debug(
                "client disconnected: %s %s", environ["REQUEST_METHOD"], environ["PATH_INFO"]
            )
        except BaseException as exc:
            self._fail(exc, environ)
        finally:
            try:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            except BaseException as exc:
                self._fail(exc, environ)
            finally:
                self.errors.flush()
                self.adapter._leave()
                self.channel.finish()

    def _stream(self, result: Iterable[bytes]) -> None:
        kind = type(result)
        if (kind is list or kind is tuple) and len(result) == 1:  # type: ignore[arg-type]
            # The common case (Flask, Django): one chunk, and no close() to run. One message,
            # and no wake-up for it: finish() wakes the loop for both.
            self.write_body(result[0], final=True, wake=False)  # type: ignore[index]
            return
        for chunk in result:
            if chunk:
                self.write_body(chunk)
            elif self.channel.closed:
                raise ClientDisconnected("the client disconnected during the response")
            if self.finished:
                # Content-Length reached (or HEAD): PEP 3333 lets the server stop iterating.
                return
        if not self.finished:
            self.write_body(b"", final=True, wake=getattr(result, "close", None) is not None)

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Any:
        """PEP 3333 ``start_response``; returns the ``write`` callable."""
        if exc_info is not None:
            try:
                if self.headers_sent:
                    # PEP 3333: "if exc_info is provided, and the HTTP headers have already
                    # been sent, start_response must raise an error, and should re-raise
                    # using the exc_info tuple."
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # PEP 3333: avoid a circular reference
        elif self.status is not None:
            raise WSGIContractError("start_response called a second time without exc_info")
        try:
            code, asgi_headers = response_start(status, headers)
            declared = _declared_length(asgi_headers)
        except WSGIContractError as exc:
            # Raised to the app (which may handle it); logged here in case it does.
            logger.warning("start_response refused: %s", exc)
            raise
        self.status, self.headers, self.declared = code, asgi_headers, declared
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333 ``write()``: send ``data`` now (imperative streaming)."""
        if self.status is None:
            raise WSGIContractError("write() called before start_response()")
        if data:
            self.write_body(data)

    def write_body(self, data: bytes, final: bool = False, wake: bool = True) -> None:
        """Queue one body chunk (headers go with the first non-empty one, or the last).

        ``wake=False``: the final chunk of a response with nothing left to run before
        ``finish()``, which wakes the loop for both.
        """
        if self.status is None:
            raise WSGIContractError("the app returned a body before calling start_response()")
        if type(data) is not bytes and not isinstance(data, bytes):
            raise WSGIContractError(f"response body chunks must be bytes, not {type(data)!r}")
        if self.finished:
            return  # past Content-Length: already reported, nothing more goes out
        if self.head:
            # RFC 9110 §9.3.2: a HEAD response has no content; its Content-Length describes
            # the GET response. The first chunk ends it: nothing to check, nothing to send.
            data, final = b"", True
        elif self.declared is not None:
            data, final = self._clamp(data, final, self.declared)
        self.sent_bytes += len(data)
        self.finished = final
        body = {"type": "http.response.body", "body": data, "more_body": not final}
        if self.headers_sent:
            self.channel.put(body, len(data), wake or not final)
            return
        # PEP 3333: headers go out with the first non-empty chunk, or at the end.
        if not data and not final:
            return
        self.headers_sent = True
        start = {"type": "http.response.start", "status": self.status, "headers": self.headers}
        self.channel.put_all(((start, 0), (body, len(data))), wake or not final)

    def _clamp(self, data: bytes, final: bool, declared: int) -> tuple[bytes, bool]:
        """Hold the body to the app's Content-Length."""
        room = declared - self.sent_bytes
        if len(data) >= room:
            if len(data) > room:
                # PEP 3333: the server "should not" send more than Content-Length; like
                # gunicorn and asgiref, the extra bytes are dropped (with a warning).
                logger.warning(
                    "response body longer than its Content-Length (%d bytes): truncated",
                    declared,
                )
            return data[:room], True
        if final:
            # A short body: the client would wait for the rest, or take the bytes for the
            # whole. Raised like an error after the start: the server aborts the connection.
            raise WSGIContractError(
                f"response body shorter than its Content-Length: "
                f"{self.sent_bytes + len(data)} of {declared} bytes"
            )
        return data, False

    def _fail(self, exc: BaseException, environ: dict[str, Any]) -> None:
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        if self.headers_sent:
            logger.error(
                "error after the response started, aborting: %s %s", method, path, exc_info=exc
            )
        else:
            logger.error("error in WSGI app: %s %s", method, path, exc_info=exc)
        try:
            self.channel.put({"type": "wsgi2asgi.error", "error": exc})
        except ClientDisconnected:
            pass


_HTTP1 = ("1.0", "1.1")


def _request_framing(scope: Scope) -> tuple[int | None, bool]:
    """The request's Content-Length (as :func:`~wsgi2asgi.headers.content_length` reads it)
    and whether it has a Transfer-Encoding, in one pass over the headers."""
    length: int | None = None
    seen_length = chunked = False
    for name, value in scope.get("headers", ()):
        lower = name.lower()
        if lower == b"content-length":
            if not seen_length:
                seen_length = True
                digits = value.strip(b" \t")
                length = int(digits) if digits.isdigit() else None
        elif lower == b"transfer-encoding":
            chunked = True
    return length, chunked


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit():
                raise WSGIContractError(f"invalid Content-Length {value!r}")
            return int(value)
    return None
