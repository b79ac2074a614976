"""wsgi2asgi: move a WSGI codebase to ASGI one piece at a time.

Example::

    from wsgi2asgi import Mount, Router, sync_to_async, wsgi_to_asgi

Every exception of :mod:`wsgi2asgi.exceptions` is importable from here too
(``from wsgi2asgi import ASGIContractError``).
"""

from __future__ import annotations

from wsgi2asgi.asgi import ASGIAdapter, asgi_to_wsgi
from wsgi2asgi.bridges import ThreadSensitiveContext, async_to_sync, sync_to_async
from wsgi2asgi.exceptions import (
    ASGIContractError,
    ClientDisconnected,
    ConfigError,
    InternalError,
    LifespanFailed,
    ProtocolError,
    TooManyHeaders,
    WebSocketClosed,
    WebSocketRejected,
    Wsgi2AsgiError,
    WSGIContractError,
)
from wsgi2asgi.fallback import Fallback
from wsgi2asgi.local import Local
from wsgi2asgi.routing import Host, Mount, ProtocolRouter, Router
from wsgi2asgi.split import Split
from wsgi2asgi.wsgi import WSGIAdapter, wsgi_to_asgi

__version__ = "0.1.0.dev0"

__all__ = [
    "ASGIAdapter",
    "ASGIContractError",
    "ClientDisconnected",
    "ConfigError",
    "Fallback",
    "Host",
    "InternalError",
    "LifespanFailed",
    "Local",
    "Mount",
    "ProtocolError",
    "ProtocolRouter",
    "Router",
    "Split",
    "ThreadSensitiveContext",
    "TooManyHeaders",
    "WSGIAdapter",
    "WSGIContractError",
    "WebSocketClosed",
    "WebSocketRejected",
    "Wsgi2AsgiError",
    "__version__",
    "asgi_to_wsgi",
    "async_to_sync",
    "sync_to_async",
    "wsgi_to_asgi",
]
