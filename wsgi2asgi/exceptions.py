"""The exception hierarchy of wsgi2asgi: every error this package raises on purpose.

Each class is named for who is at fault::

    Wsgi2AsgiError
    ├── ConfigError            bad CLI flags or options, an APP that will not import
    ├── WSGIContractError      the WSGI app broke PEP 3333 (e.g. body before start_response)
    ├── ASGIContractError      the ASGI app broke the ASGI spec (e.g. body before response.start)
    ├── LifespanFailed         an app answered lifespan.*.failed (or raised with --lifespan on)
    ├── ProtocolError          the client sent a malformed request or broke a limit (has .status)
    │   └── TooManyHeaders     more request header lines than the WSGI adapter accepts (400)
    ├── ClientDisconnected     the client went away; the app should stop producing output
    ├── WebSocketRejected      a test client's handshake was refused by the app (has .status)
    ├── WebSocketClosed        the app closed a test client's WebSocket (has .code, .reason)
    └── InternalError          a bug in wsgi2asgi: a state machine refused a move (report it)

Programmer mistakes at call sites (a coroutine function given to ``sync_to_async``, an executor
given with ``thread_sensitive=True``) raise the built-in ``TypeError`` / ``ValueError`` instead.

Example::

    from wsgi2asgi.exceptions import WSGIContractError

    try:
        start_response("200", [])
    except WSGIContractError as exc:
        log.error("bad app: %s", exc)
"""

from __future__ import annotations

import enum

__all__ = [
    "ASGIContractError",
    "ClientDisconnected",
    "ConfigError",
    "InternalError",
    "LifespanFailed",
    "ProtocolError",
    "TooManyHeaders",
    "WSGIContractError",
    "WebSocketClosed",
    "WebSocketRejected",
    "Wsgi2AsgiError",
]


class Wsgi2AsgiError(Exception):
    """Base class of every error raised on purpose by wsgi2asgi."""


class ConfigError(Wsgi2AsgiError):
    """A configuration problem: bad CLI flags, bad options, or an APP that cannot be imported."""


class WSGIContractError(Wsgi2AsgiError):
    """The WSGI application broke PEP 3333.

    Raised inside the application's thread (from ``start_response`` or ``write``) so that the
    application sees it where it made the mistake; the adapter also logs it.
    """


class ASGIContractError(Wsgi2AsgiError):
    """The ASGI application broke the ASGI specification (message order or content)."""


class ClientDisconnected(Wsgi2AsgiError, OSError):
    """The client closed the connection; nothing more can be sent or received.

    It subclasses ``OSError`` so that WSGI code which already handles broken pipes handles it.
    """


class LifespanFailed(Wsgi2AsgiError):
    """An app answered ``lifespan.*.failed``, or raised during a required lifespan.

    Attributes:
        name: which app failed (a mount prefix, or the app's repr).
        message: the app's own message, or the exception text.
    """

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"lifespan of {name} failed: {message}" if message else name)
        self.name = name
        self.message = message


class ProtocolError(Wsgi2AsgiError):
    """The client's request is malformed or over a limit: answer ``status`` and close.

    Attributes:
        status: the HTTP status to answer with (400, 413, 414, 431).
        reason: a short explanation, sent in the response body.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class TooManyHeaders(ProtocolError):
    """More request header lines than the WSGI adapter accepts."""

    def __init__(self, reason: str) -> None:
        super().__init__(400, reason)


class WebSocketRejected(Wsgi2AsgiError):
    """The app refused a WebSocket handshake made by :mod:`wsgi2asgi.testing`'s clients.

    ASGI ``www.rst``: closing before ``websocket.accept`` is a 403; an app may instead send a
    denial response (the ``websocket.http.response`` extension).

    Attributes:
        status: the HTTP status the server would answer (403, or the denial's own).
        headers: the denial response's headers (``[]`` for a close).
        body: the denial response's body (``b""`` for a close).
    """

    def __init__(
        self, status: int, headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b""
    ) -> None:
        super().__init__(f"WebSocket handshake refused with status {status}")
        self.status = status
        self.headers = headers or []
        self.body = body


class WebSocketClosed(Wsgi2AsgiError):
    """The app closed a WebSocket of :mod:`wsgi2asgi.testing`'s clients (on ``receive_*``).

    Attributes:
        code: the close code the app sent (1000 when it returned without one, 1011 on an error).
        reason: the close reason the app sent, or ``""``.
    """

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"WebSocket closed by the app: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


class InternalError(Wsgi2AsgiError):
    """A bug in wsgi2asgi itself: one of its state machines was asked for a move it forbids.

    The server's state machines (a request's :class:`~wsgi2asgi.server.cycle.HTTPCycle`, a
    WebSocket session, the request parser) each list their legal moves in one table; any
    other move raises this, naming the machine and both states, instead of going on in a
    state nobody designed. Nothing a client or an app does should cause it: please report it.

    Example::

        raise InternalError.illegal_move("HTTPCycle.request_state", old, new)
        # InternalError: HTTPCycle.request_state: no move from RECEIVED to RECEIVING (a bug ...)
    """

    @classmethod
    def illegal_move(cls, machine: str, old: enum.Enum, new: enum.Enum) -> InternalError:
        """The error for a move from ``old`` to ``new`` that ``machine``'s table does not list."""
        return cls(
            f"{machine}: no move from {old.name} to {new.name} "
            "(a bug in wsgi2asgi: please report it)"
        )
