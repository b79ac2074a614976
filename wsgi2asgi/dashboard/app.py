"""``Dashboard``: the migration page, an ASGI app; ``WithDashboard``: an app served with it.

What it answers, below where it is mounted (every request first passes
:class:`~wsgi2asgi.dashboard.access.AccessRule`; a refusal is a 403 with the reason):

* ``GET /``: the page (``static/index.html``); ``GET /static/NAME``: its script and style.
  ``/?token=TOKEN`` sets the token's cookie (``HttpOnly``, ``SameSite=Strict``, the
  dashboard's path) and redirects to ``/``, so the token leaves the address bar.
* ``GET /api/snapshot``: everything the page shows, as JSON (:meth:`Dashboard.snapshot`).
* ``WEBSOCKET /api/live``: the same JSON every ``interval`` seconds until the client leaves (a
  WebSocket, not Server-Sent Events: a server's graceful shutdown closes WebSockets at once,
  where a never-ending response would hold it for its whole timeout).
* ``POST /api/splits/N`` with ``{"percent": P}``: :meth:`Split.set_percent` of the N-th
  ``Split``; CSRF-safe (:meth:`AccessRule.change_refusal`).

Every answer carries ``Cache-Control: no-store`` and a ``Content-Security-Policy`` allowing
only the dashboard's own files and connections (no inline script, no framing).

Example::

    app = WithDashboard(application, "/_wsgi2asgi")            # what serve --dashboard does
    # or, mounted by hand:
    dashboard = Dashboard(application)
    app = Router([Mount("/_wsgi2asgi", dashboard), Mount("", dashboard.counted)])
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import urllib.parse
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from wsgi2asgi import __version__
from wsgi2asgi.dashboard.access import COOKIE, AccessRule, token_in_query
from wsgi2asgi.dashboard.traffic import Traffic, TrafficCounter
from wsgi2asgi.dashboard.watch import Watched, blocking_report
from wsgi2asgi.exceptions import ClientDisconnected
from wsgi2asgi.prefixes import child_scope, mount_prefix, route_path
from wsgi2asgi.typing import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from wsgi2asgi.blocking import BlockingDetector

__all__ = ["Dashboard", "WithDashboard", "server_wrapper"]

logger = logging.getLogger("wsgi2asgi.error")

_STATIC = {
    "dashboard.js": b"text/javascript; charset=utf-8",
    "dashboard.css": b"text/css; charset=utf-8",
}
_SECURITY_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        b"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
]
_MAX_BODY = 4096


class Dashboard:
    """The migration dashboard of ``app``: routes, traffic, Shadows, Splits, blocking calls.

    Mount it anywhere; serve ``dashboard.counted`` (``app`` with the traffic counters) as the
    app. :class:`WithDashboard` does both.

    Example::

        dashboard = Dashboard(application, blocking=detector)
        app = Router([Mount("/_wsgi2asgi", dashboard), Mount("", dashboard.counted)])

    Args:
        app: the app tree the page describes.
        token: lets clients other than this machine's in (``None``: loopback only).
        blocking: a :class:`~wsgi2asgi.blocking.BlockingDetector` whose episodes to show.
        interval: seconds between two live updates.

    Raises:
        ValueError: a token shorter than 16 characters, or an interval that is not positive.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None = None,
        blocking: BlockingDetector | None = None,
        interval: float = 1.0,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.app = app
        self.access = AccessRule(token)
        self.blocking = blocking
        self.interval = interval
        self.traffic = Traffic(app)
        self.counted = TrafficCounter(app, self.traffic)
        self.started = time.time()
        self._watched: Watched | None = None
        self._last: tuple[float, str] = (0.0, "")

    @property
    def watched(self) -> Watched:
        """The Shadows and Splits of the app tree (found on first use)."""
        if self._watched is None:
            self._watched = Watched.of(self.app)
        return self._watched

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, JSON-ready.

        Example::

            dashboard.snapshot()["routes"][0]       # {"path": ..., "requests": 3, ...}
        """
        return {
            "version": __version__,
            "pid": os.getpid(),
            "started": round(self.started, 3),
            "now": round(time.time(), 3),
            "interval": self.interval,
            **self.traffic.snapshot(),
            **self.watched.report(),
            "blocking": blocking_report(self.blocking),
        }

    def snapshot_json(self) -> str:
        """:meth:`snapshot` as JSON, computed at most once per half ``interval``."""
        at, text = self._last
        now = time.monotonic()
        if not text or now - at >= self.interval / 2:
            text = json.dumps(self.snapshot())
            self._last = (now, text)
        return text

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        refusal = self.access.refusal(scope)
        if kind == "websocket":
            await self._live(scope, receive, send, refusal)
            return
        if kind != "http":
            raise ValueError(f"Dashboard cannot handle scope type {kind!r}")
        if refusal is not None:
            await _respond(send, 403, refusal.encode(), b"text/plain; charset=utf-8")
            return
        await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = route_path(scope), scope.get("method", "GET")
        head = method == "HEAD"
        if method in ("GET", "HEAD"):
            if path == "":
                await self._redirect(scope, send, with_query=True)
            elif path == "/":
                await self._page(scope, send, head)
            elif path.startswith("/static/") and path[8:] in _STATIC:
                name = path[8:]
                await _respond(send, 200, _read(name), _STATIC[name], head=head)
            elif path == "/api/snapshot":
                body = self.snapshot_json().encode()
                await _respond(send, 200, body, b"application/json", head=head)
            else:
                await _respond(send, 404, b"Not Found", b"text/plain; charset=utf-8", head=head)
        elif method == "POST" and path.startswith("/api/splits/"):
            await self._set_percent(scope, receive, send, path[12:])
        else:
            await _respond(send, 405, b"Method Not Allowed", b"text/plain; charset=utf-8")

    async def _page(self, scope: Scope, send: Send, head: bool) -> None:
        offered = token_in_query(scope)
        if offered is not None and self.access.is_token(offered):
            await self._redirect(scope, send, with_query=False, cookie=True)
            return
        await _respond(send, 200, _read("index.html"), b"text/html; charset=utf-8", head=head)

    async def _redirect(
        self, scope: Scope, send: Send, *, with_query: bool, cookie: bool = False
    ) -> None:
        """303 to the page's own address (``root_path/``), setting the token's cookie."""
        root = scope.get("root_path", "")
        location = root + "/"
        query = scope.get("query_string", b"")
        if with_query and query:
            location += "?" + query.decode("latin-1")
        headers = [(b"location", location.encode("latin-1"))]
        if cookie:
            token = urllib.parse.quote(token_in_query(scope) or "", safe="")
            secure = "; Secure" if scope.get("scheme") == "https" else ""
            value = f"{COOKIE}={token}; Path={root}/; HttpOnly; SameSite=Strict{secure}"
            headers.append((b"set-cookie", value.encode("latin-1")))
        await _respond(send, 303, b"", b"text/plain; charset=utf-8", headers=headers)

    async def _set_percent(self, scope: Scope, receive: Receive, send: Send, number: str) -> None:
        refusal = self.access.change_refusal(scope)
        if refusal is not None:
            await _respond(send, 403, refusal.encode(), b"text/plain; charset=utf-8")
            return
        splits = self.watched.splits
        if not number.isdigit() or int(number) >= len(splits):
            await _respond(send, 404, b"Not Found: no such Split", b"text/plain; charset=utf-8")
            return
        try:
            percent = json.loads(await _read_body(receive))["percent"]
            splits[int(number)].app.set_percent(percent)
        except (ValueError, KeyError, TypeError) as exc:
            detail = str(exc) if isinstance(exc, ValueError) else 'send {"percent": NUMBER}'
            await _respond(send, 400, detail.encode(), b"text/plain; charset=utf-8")
            return
        self._last = (0.0, "")  # the next snapshot shows the new percentage
        body = json.dumps(splits[int(number)].app.report()).encode()
        await _respond(send, 200, body, b"application/json")

    async def _live(self, scope: Scope, receive: Receive, send: Send, refusal: str | None) -> None:
        """``api/live``: the snapshot every ``interval`` until the client leaves."""
        await receive()  # websocket.connect
        refusal = refusal or self.access.origin_refusal(scope)
        if refusal is not None or route_path(scope) != "/api/live":
            # ASGI: a close before the accept rejects the handshake with 403.
            await send({"type": "websocket.close", "code": 1008, "reason": refusal or ""})
            return
        await send({"type": "websocket.accept"})
        gone = asyncio.ensure_future(_until_disconnect(receive))
        try:
            while not gone.done():
                await send({"type": "websocket.send", "text": self.snapshot_json()})
                await asyncio.wait([gone], timeout=self.interval)
        except (ClientDisconnected, OSError):
            pass  # the client left while we were sending
        finally:
            gone.cancel()


class WithDashboard:
    """Serve ``app`` with its traffic counted, and its :class:`Dashboard` at ``path``.

    Requests below ``path`` go to the dashboard (its ``root_path`` extended by ``path``, as a
    ``Mount`` does); every other request, and lifespan, to ``app`` through the counters.

    Example::

        application = WithDashboard(application, "/_wsgi2asgi", token=os.environ["TOKEN"])

    Args:
        app: the app to serve.
        path: where the dashboard answers (not the root).
        **options: the :class:`Dashboard`'s (``token``, ``blocking``, ``interval``).

    Raises:
        ValueError: a path that is the root or that ``Mount`` refuses; a bad option.
    """

    def __init__(self, app: ASGIApp, path: str = "/_wsgi2asgi", **options: Any) -> None:
        self.path = mount_prefix(path)
        if not self.path:
            raise ValueError("the dashboard needs a path of its own, not the root")
        self.dashboard = Dashboard(app, **options)
        self.app = self.dashboard.counted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            rest = route_path(scope)
            if rest.startswith(self.path) and (
                len(rest) == len(self.path) or rest[len(self.path)] == "/"
            ):
                child = child_scope(scope)
                child["root_path"] = scope.get("root_path", "") + self.path
                await self.dashboard(child, receive, send)
                return
        await self.app(scope, receive, send)


def server_wrapper(
    path: str, token: str | None
) -> Callable[[ASGIApp, BlockingDetector | None], ASGIApp]:
    """What ``wsgi2asgi serve --dashboard PATH`` wraps the loaded app with.

    Example::

        Server(config, wrap_app=server_wrapper("/_wsgi2asgi", None))
    """

    def wrap(app: ASGIApp, detector: BlockingDetector | None) -> ASGIApp:
        wrapped = WithDashboard(app, path, token=token, blocking=detector)
        who = "clients with the token, and this machine" if token else "this machine only"
        logger.info("dashboard at %s/ (%s)", wrapped.path, who)
        return wrapped

    return wrap


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop: answer both."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _until_disconnect(receive: Receive) -> None:
    """Read (and ignore) what the client sends until it leaves."""
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return


async def _read_body(receive: Receive) -> bytes:
    """The request body, up to ``_MAX_BODY`` bytes (``ValueError`` beyond)."""
    body = bytearray()
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("the client left before sending its body")
        body += message.get("body", b"")
        if len(body) > _MAX_BODY:
            raise ValueError(f"the body is larger than {_MAX_BODY} bytes")
        if not message.get("more_body", False):
            return bytes(body)


_FILES: dict[str, bytes] = {}


def _read(name: str) -> bytes:
    """A file of ``static/``, read once (package data: shipped in the wheel)."""
    if name not in _FILES:
        _FILES[name] = resources.files(__package__ or "").joinpath("static", name).read_bytes()
    return _FILES[name]


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    head: bool = False,
) -> None:
    start = [
        (b"content-type", content_type),
        (b"content-length", b"%d" % len(body)),
        *_SECURITY_HEADERS,
        *(headers or ()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": b"" if head else body})
