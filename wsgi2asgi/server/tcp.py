"""Connection I/O: an asyncio protocol per HTTP/1.1 connection, the one place that reads from
and writes to clients (the listening sockets are opened by ``main.py`` and, under
``--workers``, ``supervisor.py``; the protocol modules beside this one do no I/O).

Rules this module keeps:

* One request runs at a time per connection; pipelined requests wait, parsed, in order, and
  the socket is paused while any wait (responses therefore go out in order, RFC 9112 §9.3.2).
  At most ``MAX_PIPELINE`` requests are parsed ahead; the bytes after them stay unparsed.
* A malformed request gets its 4xx from :mod:`wsgi2asgi.server.http11` and the connection is
  closed; the app never sees it. Requests pipelined before it are answered first (the one
  running, and those queued), so a client's garbage does not cut its own earlier responses.
* Timeouts: a connection waiting for its client has one deadline
  (:class:`~wsgi2asgi.server.keepalive.ConnectionDeadline`): ``timeout_request_header`` for a
  request head, from ``accept()`` for the first one, else from its first byte, or from the end
  of the response it was pipelined behind (slowloris); ``timeout_keep_alive`` between requests.
  Blank lines begin no head and stop no clock. Past the deadline the connection closes. A
  request body that stalls — no bytes for ``timeout_request_body`` while the server is reading
  it — gets ``408`` (if no response has started) and the connection closes; the app sees
  ``http.disconnect``. The body clock does not run while the server itself has paused reading
  (the app is not reading the body): only the client's slowness counts.
* Write deadline: a connection whose writing is paused (the client does not read) and whose
  unsent bytes (the transport's buffer and the socket's queue) have not gone down for
  ``timeout_write`` seconds is reset (TCP RST: the kernel drops what it still holds for it);
  the app sees the disconnect (a WSGI response is no longer iterated and its ``close()`` runs,
  which frees its thread).
* Flow control: ``pause_writing``/``resume_writing`` from the transport gate ``send``; the
  body buffer pauses reading (see :mod:`wsgi2asgi.server.cycle`).
* A connection whose request body was not read to the end is closed after the response
  rather than reused: the rest of the body must not be taken for the next request.

Example (inside the server)::

    server = await loop.create_server(lambda: HTTPProtocol(state), sock=sock)
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import struct
import sys
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, unquote

from wsgi2asgi.exceptions import ProtocolError
from wsgi2asgi.responses import send_plain
from wsgi2asgi.server.cycle import HTTPCycle, RequestState, ResponseState
from wsgi2asgi.server.framing import error_response
from wsgi2asgi.server.http11 import Body, ParserState, Request, RequestParser
from wsgi2asgi.server.keepalive import ConnectionDeadline, Phase
from wsgi2asgi.server.proxy import apply_proxy_headers
from wsgi2asgi.wsgi import POOL_EXTENSION

if TYPE_CHECKING:
    from wsgi2asgi.server.state import ServerState
    from wsgi2asgi.typing import ASGIApp, Receive, Scope, Send

__all__ = ["HTTPProtocol"]

logger = logging.getLogger("wsgi2asgi.error")

try:  # Linux: the socket's unsent bytes, to tell a slow reader from one that reads nothing
    import fcntl
    import termios

    _SIOCOUTQ: int | None = termios.TIOCOUTQ
except (ImportError, AttributeError):  # pragma: no cover - other systems
    _SIOCOUTQ = None

_SERVICE_UNAVAILABLE = 503

# States read on every read from a socket, under module names: on Python 3.11 an enum class's
# attribute lookup is not specialised (see wsgi2asgi.server.cycle).
_IN_A_HEAD = ParserState.HEAD
_EXPECTING = RequestState.EXPECTING
_STARTED = ResponseState.STARTED
_RECEIVED = RequestState.RECEIVED
_BUSY = Phase.BUSY

#: Requests parsed ahead of the one running on a connection (pipelining); further bytes wait
#: unparsed, with the socket paused, so a packet of thousands of requests costs no memory.
MAX_PIPELINE = 16


class HTTPProtocol(asyncio.Protocol):
    """An HTTP/1.1 connection (upgraded to WebSocket when asked)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.config = state.config
        self.loop = asyncio.get_running_loop()
        self.parser = RequestParser(state.limits)
        self.transport: asyncio.Transport | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.write_paused = False  # not writable.is_set(), read by every send
        self.access_log = self.config.access_log
        self.server_headers = state.server_headers
        self.cycle: HTTPCycle | None = None
        self.task: asyncio.Task[None] | None = None
        self.waiting: collections.deque[tuple[Request, HTTPCycle]] = collections.deque()
        self.parsing: HTTPCycle | None = None  # the cycle the parser's body bytes go to
        self.closing = False
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.scheme = "http"
        self.trusted = False
        self.deadline = ConnectionDeadline(
            self.loop,
            self.config.timeout_request_header,
            self.config.timeout_keep_alive,
            self._timeout,
        )
        self._body_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._write_left = 0  # the unsent bytes when the write clock last looked
        self._write_moved = 0.0  # loop time when they last went down
        self._body_seen = 0.0  # loop time of the last request-body read
        self._reading_paused = False
        self.upgraded: Any = None  # the WebSocket session after an upgrade
        self.error: ProtocolError | None = None  # malformed input behind the running request
        # Read per request, kept here: each a lookup fewer.
        self._limit = self.config.limit_concurrency
        self._root_path = self.config.root_path
        self._quoted_root_path = quote(self._root_path).encode("ascii")
        self._heads = state.heads  # the started heads to flush on the loop's next turn
        self._scope: dict[str, Any] = {}  # what every request's scope holds (connection_made)

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport = self.transport
        self.client = _address(transport.get_extra_info("peername"))
        self.server = _address(transport.get_extra_info("sockname"))
        if self.config.ssl_certfile is not None:
            self.scheme = "https"
        # Decided once per connection: parsing addresses per request is measurably slow.
        self.trusted = self.config.trusts(self.client[0] if self.client else None)
        self._scope = {  # every request's scope, in this order; None: set per request
            "type": "http",
            "asgi": None,
            "http_version": None,
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "method": None,
            "root_path": self._root_path,
            "path": None,
            "raw_path": None,
            "query_string": None,
            "headers": None,
            "state": None,
            "extensions": None,
        }
        self.state.connections.add(self)
        self._watch()  # the header deadline, from accept()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self.deadline.stop()
        self._stop_body_clock()
        self._stop_write_clock()
        self.closing = True
        if self.cycle is not None:
            self.cycle.lost()
        for _, cycle in self.waiting:
            cycle.lost()
        if self.upgraded is not None:
            self.upgraded.lost()
        self.writable.set()
        self.write_paused = False

    def data_received(self, data: bytes) -> None:
        if self.upgraded is not None:
            self.upgraded.data_received(data)
            return
        parser = self.parser
        try:
            # Parse no more than MAX_PIPELINE requests ahead; the parser holds the rest.
            events = parser.feed(data, MAX_PIPELINE - len(self.waiting))
        except ProtocolError as error:
            self._reject(error)
            return
        transport = self.transport
        for event in events:
            if event.__class__ is Request:
                self._request(event)
                # Only a request closes the transport here (a refused upgrade): stop at once.
                if transport is None or transport.is_closing():
                    self._stop_body_clock()
                    return
            elif event.__class__ is Body:
                if self.parsing is not None:
                    self.parsing.feed_body(event.data)
            elif self.parsing is not None:  # EndOfMessage
                self.parsing.end_body()
                self.parsing = None
        # self._watch(), inlined (once per read): busy, and already watched as busy, is no change.
        if self.cycle is None and self.upgraded is None:
            self.deadline.watch(False, parser.state is _IN_A_HEAD)
        elif self.deadline.phase is not _BUSY:
            self.deadline.watch(True, False)
        if parser.failed is not None:
            self._reject(parser.failed)  # behind the requests just parsed: after them
            return
        if self.upgraded is not None:
            if parser.upgrade_data:
                # Bytes that came right behind the upgrade's head: the new protocol's.
                data, parser.upgrade_data = parser.upgrade_data, b""
                self.upgraded.data_received(data)
            return
        if parser.held:
            self.pause_reading()  # until the requests parsed ahead have been answered
        if self.parsing is not None or self._body_timer is not None:
            self._body_clock()

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def pause_writing(self) -> None:
        self.writable.clear()
        self.write_paused = True
        self._write_clock()
        if self.upgraded is not None:
            self.upgraded.writing_paused()  # it stops reading: pongs would pile up

    def resume_writing(self) -> None:
        self.writable.set()
        self.write_paused = False
        self._stop_write_clock()
        if self.upgraded is not None:
            self.upgraded.writing_resumed()

    # -- the Connection interface cycles use ---------------------------------------------------

    def write(self, data: bytes) -> bool:
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        transport.write(data)
        return True

    def pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
            self._stop_body_clock()

    def resume_reading(self) -> None:
        if (
            self._reading_paused
            and not self.waiting
            and not self.parser.held
            and self.error is None
            and self.transport is not None
        ):
            self._reading_paused = False
            self.transport.resume_reading()
        self._body_clock()  # the app wants the body: the client's clock runs from now

    def gone(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def flush_later(self, cycle: HTTPCycle) -> None:
        heads = self._heads
        if not heads:  # the first this turn: one callback flushes them all
            self.loop.call_soon(_flush_heads, heads)
        heads.append(cycle)

    # -- requests ----------------------------------------------------------------------------

    def _request(self, request: Request) -> None:
        state = self.state
        state.requests += 1
        last = state.requests == state.max_requests and state.last_request()
        # The scope (built here, not in a method of its own: once per request).
        raw_path = request.path
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        root_path = self._root_path
        if root_path and path != "*":
            # ASGI: path includes root_path (uvicorn's --root-path reading); so does raw_path,
            # percent-encoded, or the two disagree (uvicorn prefixes both too).
            path = root_path + path
            raw_path = self._quoted_root_path + raw_path
        # A copy of the connection's scope (what every request of it shares), then what is the
        # request's own: cheaper than a dict built whole, key by key.
        scope = self._scope.copy()
        scope["asgi"] = {"version": "3.0", "spec_version": "2.4"}
        scope["http_version"] = request.http_version
        scope["method"] = request.method
        scope["path"] = path
        scope["raw_path"] = raw_path
        scope["query_string"] = request.query
        scope["headers"] = request.headers
        scope["state"] = state.lifespan_state.copy()
        scope["extensions"] = {POOL_EXTENSION: state.pool_extension}
        if self.trusted and request.proxied:
            apply_proxy_headers(scope)
        if request.upgrade:  # a WebSocket handshake (the parser ignores other upgrades)
            from wsgi2asgi.server.websocket import WebSocketSession

            if self.cycle is not None or self.waiting:
                self._reject(ProtocolError(400, "upgrade while requests are in flight"))
                return
            if self._over_limit():
                # A session holds a task as a request does, and for far longer: it counts.
                self.write(error_response(_SERVICE_UNAVAILABLE, "at the concurrency limit"))
                self.close()
                return
            self.upgraded = WebSocketSession(self, request, scope)
            self.parsing = None
            self.state.active += 1
            self.task = self.loop.create_task(self.upgraded.run(self.state.app))
            self.state.track(self.task)
            self.task.add_done_callback(self._session_over)
            return
        cycle = HTTPCycle(self, request, scope)
        if last:
            cycle.close_after()  # the server's last request: answered with Connection: close
        # The cycle the body's bytes go to; none for a request without a body (the cycle
        # starts whole, RECEIVED, and its EndOfMessage is nobody's).
        self.parsing = cycle if cycle.request_state is not _RECEIVED else None
        if self.cycle is None:
            self._start(cycle)
        else:
            self.waiting.append((request, cycle))
            self.pause_reading()

    def _start(self, cycle: HTTPCycle) -> None:
        self.cycle = cycle
        state = self.state
        limit = self._limit
        if state.shutting_down or (limit is not None and state.active >= limit):
            app: ASGIApp = _unavailable  # as _over_limit() says
        else:
            app = state.app
        state.active += 1
        # Tracked as state.track(task) would, but the task leaves state.tasks in finished(),
        # which the cycle calls as its last step: no done callback per request.
        self.task = task = self.loop.create_task(cycle.run(app))
        state.tasks.add(task)

    def _over_limit(self) -> bool:
        """Whether a new request or session gets 503: ``--limit-concurrency``, or shutdown."""
        limit = self.config.limit_concurrency
        state = self.state
        return (limit is not None and state.active >= limit) or state.shutting_down

    def _session_over(self, task: asyncio.Task[None]) -> None:
        self.state.active -= 1

    def finished(self, cycle: HTTPCycle) -> None:
        """The running cycle is over: start the next request, wait for one, or close. Called by
        the cycle's task as its last step (cancelled too: the cycle has closed the connection).
        """
        state = self.state
        if self.task is not None:
            state.tasks.discard(self.task)
        state.active -= 1
        self.cycle = None
        if not cycle.reusable() or self.closing or state.shutting_down:
            self.close()
            return
        if self.waiting:
            _, following = self.waiting.popleft()
            self._start(following)
        elif self.error is not None:
            self._reject(self.error)  # everything before the malformed request is answered
            return
        if self.parser.held:
            self.data_received(b"")  # requests held back from a long pipeline
            if self.closing:
                return  # they were malformed: answered and closed
        # Idle, or a head pipelined behind: its deadline runs from now (self._watch(), inlined).
        busy = self.cycle is not None or self.upgraded is not None
        self.deadline.watch(busy, self.parser.state is _IN_A_HEAD)
        if not self.waiting:
            if self._reading_paused:
                self.resume_reading()
            elif self.parsing is not None or self._body_timer is not None:
                self._body_clock()  # as resume_reading() would

    def _reject(self, error: ProtocolError) -> None:
        logger.info("rejected request from %s: %s", self.client, error)
        cycle = self.cycle
        if (
            cycle is not None
            and self.parsing is not cycle
            and cycle.request_state is not RequestState.DISCONNECTED
        ):
            self._defer(error)
            return
        for _, waiting in self.waiting:
            waiting.lost()
        if cycle is None or cycle.response_state is ResponseState.IDLE:
            # A body that turns out malformed after its head reached the app: the app's
            # request is over (it sees a disconnect) and the client gets the 4xx.
            if cycle is not None:
                cycle.lost()
            self.write(error_response(error.status, error.reason))
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def _defer(self, error: ProtocolError) -> None:
        """The error is in a request behind the running one (pipelined): that one, and the
        queued ones parsed before the error, are answered first; then the 4xx and the close.
        Nothing after the error is parsed: the stream is no longer trustworthy."""
        broken = self.parsing  # a queued request whose own body turned out malformed
        if broken is not None:
            broken.lost()
            self.waiting = collections.deque(item for item in self.waiting if item[1] is not broken)
            self.parsing = None
        self.error = error
        self.parser.held = b""
        self.pause_reading()

    # -- timers ------------------------------------------------------------------------------

    def _watch(self) -> None:
        """Keep the connection's deadline in step with what it waits for (cheap: per read)."""
        busy = self.cycle is not None or self.upgraded is not None
        self.deadline.watch(busy, self.parser.state is _IN_A_HEAD)

    def _body_clock(self) -> None:
        """Note body activity now; keep one timer running while a body is due and being read.

        Cheap per read: the timer is not re-armed on every chunk, it checks the time of the
        last read when it fires and sleeps again for what is left.
        """
        parsing = self.parsing
        if (
            parsing is None
            or parsing.request_state is _EXPECTING
            or self._reading_paused
            or self.gone()
        ):
            # No body due; or the client waits for our "100 Continue" (the app has not asked
            # for the body yet); or the server paused reading: the client is not late.
            self._stop_body_clock()
            return
        self._body_seen = self.loop.time()
        if self._body_timer is None:
            self._body_timer = self.loop.call_at(
                self._body_seen + self.config.timeout_request_body, self._body_timeout
            )

    def _stop_body_clock(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timeout(self) -> None:
        self._body_timer = None
        if self.parsing is None or self._reading_paused or self.gone():
            return
        deadline = self._body_seen + self.config.timeout_request_body
        if self.loop.time() < deadline:
            self._body_timer = self.loop.call_at(deadline, self._body_timeout)
            return
        self._reject(ProtocolError(408, "request body timed out"))

    def _write_clock(self) -> None:
        """Writing is paused: from now, the client must take bytes within ``timeout_write``.

        Cheap while paused: a look at the unsent bytes every quarter of the timeout; the
        connection is cut once none has been taken for the whole timeout.
        """
        timeout = self.config.timeout_write
        if timeout is None or self.transport is None:
            return
        self._stop_write_clock()
        self._write_left = _unsent(self.transport)
        self._write_moved = self.loop.time()
        self._write_timer = self.loop.call_later(timeout / 4, self._write_check)

    def _stop_write_clock(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_check(self) -> None:
        self._write_timer = None
        timeout = self.config.timeout_write
        if timeout is None or self.writable.is_set() or self.transport is None:
            return
        now, unsent = self.loop.time(), _unsent(self.transport)
        if unsent < self._write_left:  # a slow reader, but a reader
            self._write_left, self._write_moved = unsent, now
        elif now - self._write_moved >= timeout:
            logger.info(
                "resetting connection from %s: nothing read for %s s (--timeout-write)",
                self.client,
                timeout,
            )
            _reset(self.transport)
            return
        self._write_timer = self.loop.call_later(timeout / 4, self._write_check)

    def _timeout(self) -> None:
        if self.cycle is None and self.upgraded is None:
            self.close()

    def shutdown(self) -> None:
        """Graceful shutdown: close now if idle, else after the current response."""
        if self.upgraded is not None:
            self.upgraded.shutdown()
        elif self.cycle is None:
            self.close()
        else:
            self.closing = True  # no keep-alive after this response


async def _unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    await send_plain(send, _SERVICE_UNAVAILABLE, close=True)


def _flush_heads(heads: list[HTTPCycle]) -> None:
    """Write the heads still waiting for their first body message (``flush_later``)."""
    batch = heads.copy()
    heads.clear()
    for cycle in batch:
        if cycle.response_state is _STARTED:  # most have sent their body since
            cycle.flush_head()


def _unsent(transport: asyncio.Transport) -> int:
    """Bytes written to ``transport`` that the client has not taken yet: the transport's buffer
    and, on Linux, the socket's send queue (``SIOCOUTQ``). The kernel's queue can hold
    megabytes: a client reading slowly drains it long before the transport's buffer moves."""
    unsent = transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    if _SIOCOUTQ is not None and sock is not None:
        try:
            queued = fcntl.ioctl(sock.fileno(), _SIOCOUTQ, b"\0\0\0\0")
        except (OSError, ValueError):  # not a TCP socket here, or already closed
            return unsent
        unsent += int.from_bytes(queued, sys.byteorder, signed=True)
    return unsent


def _reset(transport: asyncio.Transport) -> None:
    """Abort with a TCP reset: a plain close would leave the kernel holding the unsent bytes
    (megabytes) and probing the client's empty window for minutes; a reset drops them and
    tells the client at once (as nginx's ``reset_timedout_connection``). Also when closing
    already: close() waits for the buffer to drain, which it never does."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass  # not a socket we can set this on: a plain abort
    transport.abort()


def _address(info: Any) -> tuple[str, int] | None:
    if isinstance(info, tuple) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None
