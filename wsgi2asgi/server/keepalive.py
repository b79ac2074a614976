"""Connection timers: the deadline of an HTTP/1.1 connection waiting for its client, and the
WebSocket ping.

**HTTP/1.1** (:class:`ConnectionDeadline`). A connection is always in one of three phases, and
at most one deadline runs:

* ``HEAD``: waiting for a request head: ``--timeout-request-header``. From ``accept()`` for the
  first request (a connection that has sent nothing is waiting for a head); on a kept-alive
  connection, from the read that brings a head's first byte; for a head pipelined behind a
  request, from the moment that request's response is complete (the server turns to it then:
  a slow response is never cut because the head behind it is unfinished).
* ``IDLE``: kept alive between requests, nothing of the next head yet: ``--timeout-keep-alive``,
  from the end of the last response.
* ``BUSY``: a request or a WebSocket session runs: no deadline here (the body clock, the write
  deadline and the ping below apply).

A phase's clock starts when the connection enters it and runs on while it stays: bytes that
leave the phase as it is (a head trickling in, blank lines on an idle connection) do not push
the deadline back. Blank lines before a request line (RFC 9112 §2.2: a server "SHOULD ignore at
least one empty line") begin no head: they leave an idle connection idle. At the deadline the
connection is closed.

**WebSocket** (:class:`Keepalive`). A peer that vanishes without a FIN (a dropped NAT mapping,
a laptop closed mid-session, a cable pulled) leaves a connection that looks open forever: the
app waits in ``receive()``, the session and its task are never freed. RFC 6455 §5.5.2: a ping
"may serve either as a keepalive or as a means to verify that the remote endpoint is still
responsive".

Rules :class:`Keepalive` keeps:

* Only silence counts: any bytes from the client push the next ping back, so a chatty
  connection is never pinged at all. One timer per connection, re-armed, never one per frame.
* After a ping, any bytes from the client (the pong, or anything else) prove it is there. None
  within ``timeout`` → ``on_timeout`` (the session closes with 1011, as ``websockets`` does).
* While the server itself has stopped reading because the app is behind (its queue is full),
  the client's answer may be sitting unread in the socket: the timeout is then put off rather
  than blamed on the client.

Example (inside a session)::

    keepalive = Keepalive(loop, 20.0, 20.0, ping=send_ping, on_timeout=fail, app_behind=full)
    keepalive.start()
    ...
    keepalive.seen()   # on every read from the client
    keepalive.stop()   # when the session ends
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable

__all__ = ["ConnectionDeadline", "Keepalive", "Phase"]


class Phase(enum.Enum):
    """What an HTTP/1.1 connection waits for, which says the deadline that runs."""

    HEAD = "head"  # a request head: the first one, or one begun (the header deadline)
    IDLE = "idle"  # the next request on a kept-alive connection (the keep-alive deadline)
    BUSY = "busy"  # nothing: a request or WebSocket session runs (other clocks apply)


# The members under module names, for the per-request path: on Python 3.11 reading
# ``Phase.BUSY`` is an attribute lookup on the enum class that the interpreter does not
# specialise (see wsgi2asgi.server.cycle).
_HEAD = Phase.HEAD
_IDLE = Phase.IDLE
_BUSY = Phase.BUSY


class ConnectionDeadline:
    """The one deadline of an HTTP/1.1 connection while it waits for its client.

    These two are equivalent when nothing has changed since the last call: the phase's clock
    runs on from when the phase began::

        deadline.watch(busy=False, in_head=True)
        deadline.watch(busy=False, in_head=True)

    Args:
        loop: the connection's event loop.
        head: seconds for a request head (``--timeout-request-header``).
        idle: seconds a kept-alive connection may wait for its next request.
        on_expiry: called once when the deadline passes (the connection closes).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        head: float,
        idle: float,
        on_expiry: Callable[[], None],
    ) -> None:
        self.loop = loop
        self.head = head
        self.idle = idle
        self.on_expiry = on_expiry
        self.phase: Phase | None = None  #: none before the first :meth:`watch`
        self.deadline = 0.0  #: loop time at which the phase's wait ends (not while busy)
        self._served = False  # a request was read: from now on, waiting without a head is idle
        self._timer: asyncio.TimerHandle | None = None
        self._fires = 0.0  # when the timer, if any, fires

    def watch(self, busy: bool, in_head: bool) -> None:
        """Say where the connection stands; cheap when that is unchanged (called per read).

        Cheap on a change too: the timer is not cancelled and re-armed for every request of a
        kept-alive connection (a timer costs more than the rest of this together). One timer
        stays; when it fires early for the phase then running, it sleeps again for the rest.

        Args:
            busy: a request or a WebSocket session runs.
            in_head: a request head has begun and is not complete.
        """
        if busy:
            self._served = True
            if self.phase is not _BUSY:
                self.phase = _BUSY  # a timer still pending finds the connection busy, and stops
            return
        phase = _HEAD if in_head or not self._served else _IDLE
        if phase is self.phase:
            return
        self.phase = phase
        self.deadline = self.loop.time() + (self.head if phase is _HEAD else self.idle)
        if self._timer is None or self._fires > self.deadline:
            self.stop()
            self._arm()

    def stop(self) -> None:
        """Cancel the running deadline, if any (the connection is closed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        self._fires = self.deadline
        self._timer = self.loop.call_at(self.deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if self.phase is _BUSY:
            return
        if self.loop.time() < self.deadline:
            self._arm()  # the phase began after this timer was set: its own wait is not over
            return
        self.on_expiry()


class Keepalive:
    """The ping timer of one WebSocket connection.

    Args:
        loop: the connection's event loop.
        interval: seconds of silence from the client before a ping.
        timeout: seconds to wait for any answer after a ping (``None``: forever).
        ping: sends one ping.
        on_timeout: called once when the client stayed silent past ``timeout``.
        app_behind: whether the server has paused reading because the app is behind.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        interval: float,
        timeout: float | None,
        *,
        ping: Callable[[], None],
        on_timeout: Callable[[], None],
        app_behind: Callable[[], bool],
    ) -> None:
        self.loop = loop
        self.interval = interval
        self.timeout = timeout
        self.ping = ping
        self.on_timeout = on_timeout
        self.app_behind = app_behind
        self.last_seen = loop.time()
        self.ping_sent: float | None = None  #: when the unanswered ping went out
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start watching (after the handshake)."""
        self.last_seen = self.loop.time()
        self._arm(self.interval)

    def seen(self) -> None:
        """The client sent something: it is alive. Cheap; called on every read."""
        self.last_seen = self.loop.time()

    def stop(self) -> None:
        """Stop for good (the session is over)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, delay: float) -> None:
        self._timer = self.loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self.loop.time()
        if self.ping_sent is not None and self.last_seen >= self.ping_sent:
            self.ping_sent = None  # answered
        if self.ping_sent is None:
            silent = now - self.last_seen
            if silent < self.interval:
                self._arm(self.interval - silent)
                return
            self.ping()
            if self.timeout is None:
                self._arm(self.interval)  # ping again later, never give up
            else:
                self.ping_sent = now
                self._arm(self.timeout)
            return
        if self.app_behind():
            self._arm(self.timeout or self.interval)  # the answer may be unread: not its fault
            return
        self.on_timeout()
