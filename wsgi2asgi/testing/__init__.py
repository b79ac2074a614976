"""Test the composite you deploy: in-process clients, a live server, a migration check.

* :class:`TestClient` / :class:`AsyncTestClient`: ``httpx`` clients that call an ASGI app
  (a whole ``Router`` tree) in-process, run its lifespan around the ``with`` block, keep
  cookies, speak WebSocket (``websocket_connect``) and follow ``root_path`` as our server does.
* :class:`LiveServer`: the app under our own server on a real loopback socket.
* :func:`assert_same_responses`: replay requests (or a Shadow report) against a legacy and a
  migrated app; fail with a readable diff.
* The pytest plugin (:mod:`wsgi2asgi.pytest_plugin`, loaded by installing the package) gives
  these as fixtures: ``wsgi2asgi_client`` and ``wsgi2asgi_live_server``, for the app your
  ``wsgi2asgi_app`` fixture returns. ``docs/testing.md`` shows them at work.

Needs ``httpx`` (``pip install 'wsgi2asgi[testing]'``).

Example::

    from wsgi2asgi.testing import TestClient

    with TestClient(application) as client:
        assert client.get("/api/health").json() == {"ok": True}
"""

from __future__ import annotations

try:
    import httpx  # noqa: F401 - the clients are httpx clients
except ImportError:
    raise ImportError("wsgi2asgi.testing needs httpx: pip install 'wsgi2asgi[testing]'") from None

from wsgi2asgi.testing.client import AsyncTestClient, TestClient, WebSocketSession
from wsgi2asgi.testing.compare import assert_same_responses
from wsgi2asgi.testing.live import LiveServer
from wsgi2asgi.testing.transport import AppTransport
from wsgi2asgi.testing.websocket import AsyncWebSocketSession

__all__ = [
    "AppTransport",
    "AsyncTestClient",
    "AsyncWebSocketSession",
    "LiveServer",
    "TestClient",
    "WebSocketSession",
    "assert_same_responses",
]
