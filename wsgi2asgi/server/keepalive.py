"""WebSocket keepalive: ping a silent client, give up on one that stays silent.

A peer that vanishes without a FIN (a dropped NAT mapping, a laptop closed mid-session, a
cable pulled) leaves a connection that looks open forever: the app waits in ``receive()``, the
session and its task are never freed. RFC 6455 §5.5.2: a ping "may serve either as a
keepalive or as a means to verify that the remote endpoint is still responsive".

Rules this module keeps:

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
from collections.abc import Callable

__all__ = ["Keepalive"]


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
