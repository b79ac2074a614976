"""What every connection of one server shares: settings, the app, counters, lifespan state."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from wsgi2asgi.server.config import Config
from wsgi2asgi.server.framing import ServerHeaders
from wsgi2asgi.server.http11 import Limits

if TYPE_CHECKING:
    from wsgi2asgi.server.cycle import HTTPCycle
    from wsgi2asgi.typing import ASGIApp

__all__ = ["ServerConnection", "ServerState"]


class ServerConnection(Protocol):
    """What the server needs of each open connection (``tcp.HTTPProtocol`` implements it): to
    tell it to shut down, and at the graceful-shutdown deadline to cut it."""

    transport: asyncio.Transport | None  #: ``None`` until the connection is made

    def shutdown(self) -> None:
        """Graceful shutdown: close now if idle, else after the current response."""


@dataclasses.dataclass
class ServerState:
    """The shared, mutable state of a running server (one per process)."""

    config: Config
    app: ASGIApp
    limits: Limits
    connections: set[ServerConnection] = dataclasses.field(default_factory=set)
    active: int = 0
    #: The tasks of the requests and WebSocket sessions running, also those whose client has
    #: gone: shutdown waits for them (a WSGI response's close() may still be running).
    tasks: set[asyncio.Task[None]] = dataclasses.field(default_factory=set)
    requests: int = 0  #: requests and WebSocket sessions started, since the server started
    max_requests: int | None = None  #: after this many, ``on_max_requests`` is called once
    on_max_requests: Callable[[], None] | None = None
    shutting_down: bool = False
    pool_waits: int = 0  #: requests that waited for a WSGI worker thread (a full pool)
    #: Offered to the apps as ``scope["extensions"]["wsgi2asgi.pool"]``: the WSGI adapters
    #: report a full pool through it (see :data:`wsgi2asgi.wsgi.POOL_EXTENSION`).
    pool_extension: dict[str, Any] = dataclasses.field(init=False)
    #: The headers every response gets (``--server-header``, ``--date-header``, ``--header``).
    server_headers: ServerHeaders = dataclasses.field(init=False)
    lifespan_state: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Response heads started this loop turn and waiting for their first body message: one
    #: callback on the loop's next turn writes those still waiting (``tcp.flush_later``).
    heads: list[HTTPCycle] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.pool_extension = {"on_wait": self.count_pool_wait}
        config = self.config
        self.server_headers = ServerHeaders(
            server=b"wsgi2asgi" if config.server_header else None,
            date=config.date_header,
            extra=tuple(
                (n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in config.headers
            ),
        )

    def count_pool_wait(self, waiting: int) -> None:
        """A WSGI request waits for a worker thread (``waiting`` of them now)."""
        self.pool_waits += 1

    def last_request(self) -> bool:
        """The ``max_requests``-th request has come (the connections count ``requests`` and call
        this when it reaches ``max_requests``): ask the server to stop, gracefully.

        Returns whether this request is the last the server takes (whether it was asked).
        """
        if self.on_max_requests is None:
            return False
        self.on_max_requests()
        return True

    def track(self, task: asyncio.Task[None]) -> None:
        """Hold ``task`` (a request's or a WebSocket session's) in ``tasks`` until it is done."""
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
