"""``Dispatcher``: serve each HTTP request from a sync app or an async app, chosen per request.

For a framework that has both a WSGI entry point and an ASGI one over the same views (Django):
a request whose handler is sync goes to the sync app — the WSGI entry point behind
:func:`wsgi2asgi.wsgi.wsgi_to_asgi`, one pool thread from the first middleware to ``close()``
— and a request whose handler is a coroutine function goes to the async app, on the loop.

Rules this module keeps, in order (the first that applies decides):

1. A scope that is not ``http`` goes to the async app.
2. A request body of unknown length (``Transfer-Encoding`` without ``Content-Length``, or no
   ``Content-Length`` on HTTP/2 or later for a method that carries a body) goes to the async
   app. PEP 3333: "the application should not attempt to read more data than is specified by
   the CONTENT_LENGTH variable", so a WSGI app (Django's) would read such a body as empty.
3. ``find(scope)`` names the handler the request will reach, before any middleware runs:
   * :data:`NO_MATCH` (nothing matches) → the sync app; a "not found" is answered the same way
     by both entry points, and it is sync-safe.
   * an exception → the async app: the handler cannot be known, and the async app serves sync
     and async handlers alike (a sync one through ``sync_to_async``).
   * a handler → the async app if ``is_async(handler)``, else the sync app. The decision is
     cached per handler (at most :data:`MAX_DECISIONS`).
4. A middleware may send the request elsewhere (Django's ``request.urlconf``). The sync app
   reports the handler it actually reached with :func:`confirm`; if that one is a coroutine
   function, the framework runs it the way its WSGI side does (Django: ``async_to_sync``),
   and the handler ``find`` named is *demoted*: its later requests go to the async app
   (logged once per handler).

Example::

    app = Dispatcher(
        wsgi_to_asgi(wsgi_entry_point),
        asgi_entry_point,
        find=lambda scope: resolve(scope["path"]) or NO_MATCH,
        is_async=inspect.iscoroutinefunction,
    )
"""

from __future__ import annotations

import contextvars
import enum
import logging
from collections.abc import Callable
from typing import Any

from wsgi2asgi.typing import ASGIApp, Receive, Scope, Send

__all__ = ["MAX_DECISIONS", "NO_MATCH", "Dispatcher", "Mode", "confirm"]

logger = logging.getLogger(__name__)

#: What ``find`` returns when no handler matches the request.
NO_MATCH: Any = type("NoMatch", (), {"__repr__": lambda self: "NO_MATCH"})()
#: The most handlers whose decision is kept; past it, decisions are made anew per request.
MAX_DECISIONS = 4096

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Mode(enum.Enum):
    """Which app serves a request."""

    #: The handler is sync: one worker thread for the whole request, as under a WSGI server.
    SYNC = "sync"
    #: The handler is async, or cannot be known in advance: the async app serves both kinds.
    ASYNC = "async"


class _Decision:
    """The dispatcher and the handler ``find`` named, for :func:`confirm` on the sync side."""

    __slots__ = ("dispatcher", "handler")

    def __init__(self, dispatcher: Dispatcher, handler: object) -> None:
        self.dispatcher = dispatcher
        self.handler = handler


# Set around the sync app's call; wsgi_to_asgi copies the context into the worker thread.
_current: contextvars.ContextVar[_Decision | None] = contextvars.ContextVar(
    "wsgi2asgi.dispatch", default=None
)


class Dispatcher:
    """An ASGI app that serves each request from ``sync_app`` or ``async_app`` (rules above).

    Args:
        sync_app: the framework's WSGI entry point behind ``wsgi_to_asgi``.
        async_app: the framework's ASGI entry point; it must serve any request correctly.
        find: names the handler a request will reach (called on the loop: no I/O), or returns
            :data:`NO_MATCH`.
        is_async: whether a handler is a coroutine function, as the framework decides it.
    """

    def __init__(
        self,
        sync_app: ASGIApp,
        async_app: ASGIApp,
        *,
        find: Callable[[Scope], object],
        is_async: Callable[[object], bool],
    ) -> None:
        self.sync_app = sync_app
        self.async_app = async_app
        self.find = find
        self.is_async = is_async
        self._decisions: dict[object, Mode] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _body_length_unknown(scope):
            await self.async_app(scope, receive, send)
            return
        handler, mode = self.choose(scope)
        if mode is Mode.ASYNC:
            await self.async_app(scope, receive, send)
            return
        token = _current.set(_Decision(self, handler))
        try:
            await self.sync_app(scope, receive, send)
        finally:
            _current.reset(token)

    def choose(self, scope: Scope) -> tuple[object, Mode]:
        """Return the handler ``find`` names for ``scope`` and the mode that serves it."""
        try:
            handler = self.find(scope)
        except Exception as exc:  # rule 3: unknown; the async app gets the same error
            logger.debug(
                "%s %s: no handler known in advance (%r)", scope["method"], scope["path"], exc
            )
            return None, Mode.ASYNC
        try:
            mode = self._decisions.get(handler)
        except TypeError:  # an unhashable handler: decided each time
            return handler, self._decide(handler)
        if mode is None:
            mode = self._decide(handler)
            if len(self._decisions) < MAX_DECISIONS:
                self._decisions[handler] = mode
        return handler, mode

    def _decide(self, handler: object) -> Mode:
        if handler is NO_MATCH:
            return Mode.SYNC
        try:
            return Mode.ASYNC if self.is_async(handler) else Mode.SYNC
        except Exception:  # cannot tell: the always-correct app
            return Mode.ASYNC

    def demote(self, handler: object) -> None:
        """Send the later requests for ``handler`` (as ``find`` names it) to the async app."""
        if self._decisions.get(handler) is Mode.ASYNC:
            return
        self._decisions[handler] = Mode.ASYNC
        logger.info(
            "a request for %r reached a coroutine handler on the sync path (a middleware chose "
            "another one): its requests now take the async path",
            handler,
        )


def confirm(handler: object) -> None:
    """Report the handler a request on the sync app actually reached (call from its thread).

    Outside a :class:`Dispatcher`'s sync app this does nothing.

    Example (the framework's resolver, on the sync side)::

        match = resolver.resolve(path)
        confirm(match.func)
    """
    decision = _current.get()
    if decision is None or handler is decision.handler:
        return
    dispatcher = decision.dispatcher
    try:
        reached_async = dispatcher.is_async(handler)
    except Exception:
        reached_async = True
    if reached_async:
        try:
            dispatcher.demote(decision.handler)
        except TypeError:  # an unhashable handler: nothing to remember it by
            pass


def _body_length_unknown(scope: Scope) -> bool:
    """Rule 2: a body a WSGI app would read as empty (its length is not declared)."""
    transfer_encoding = False
    for name, _ in scope.get("headers", ()):
        lowered = name.lower()
        if lowered == b"content-length":
            return False
        if lowered == b"transfer-encoding":
            transfer_encoding = True
    if transfer_encoding:
        return True
    return scope.get("http_version", "1.1") not in ("1.0", "1.1") and (
        scope.get("method") in _BODY_METHODS
    )
