"""Compose ASGI apps: ``Router`` with ``Mount`` and ``Host`` routes, and ``ProtocolRouter``.

Every piece is a plain ASGI app, so routers nest in routers to any depth. What the routes
match, what a mount does to ``root_path`` and ``path`` (the ASGI spec's reading, as Starlette
1.x, Django's ``ASGIHandler`` and uvicorn ``--root-path``), which prefixes are refused and what
an unmatched request gets are stated once, in ``docs/routing.md`` ("Mount semantics"). The
scope at a mount boundary is :mod:`wsgi2asgi.prefixes`'s to keep, the lifespan fan-out
:mod:`wsgi2asgi.fanout`'s. What this module adds:

* The order routes are tried in is fixed at construction: ``Host`` routes as listed, then
  mounts by longest prefix; a route that could never be reached (the same prefix or host
  twice) is refused then.
* Every app a router calls gets its own copy of the scope, with that app's lifespan ``state``.
* Scope types other than ``http``, ``websocket`` and ``lifespan`` raise: the spec says
  "Applications should actively reject any protocol that they do not understand".

Example::

    app = Router([
        Mount("/flask", wsgi_to_asgi(flask_app)),
        Mount("/api", starlette_app),
        Mount("", django_asgi_app),           # everything else
    ])

URL reversal: Starlette's ``request.url_for`` walks the ``routes`` of every ``Mount`` it meets
and calls ``url_path_for`` on each. ``Router``, ``Mount`` and ``Host`` speak that protocol, so a
Starlette app that mounts one of our routers can still reverse names of the Starlette apps below
it (with our prefixes added), and a name found nowhere is Starlette's own ``NoMatchFound``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wsgi2asgi.fanout import give_app_state, run_lifespans, with_app_state
from wsgi2asgi.headers import request_host, split_host_port
from wsgi2asgi.prefixes import child_scope, mount_prefix, route_path, spec_form
from wsgi2asgi.responses import send_plain
from wsgi2asgi.typing import ASGIApp, Receive, Scope, Send

# run_lifespans, route_path, request_host and split_host_port live in fanout, prefixes and
# headers; still importable from here.
__all__ = [
    "Host",
    "Mount",
    "ProtocolRouter",
    "Router",
    "not_found",
    "reverse",
    "route_path",
    "run_lifespans",
]


class Mount:
    """Route ``prefix`` and everything below it to ``app``.

    ``Mount("/flask", app)`` matches ``/flask``, ``/flask/`` and ``/flask/x``, never
    ``/flaskfoo``; ``Mount("", app)`` matches every path.

    Args:
        prefix: ``""`` (or ``"/"``) or a path starting with ``/``; see :func:`mount_prefix`.
        app: the ASGI app to call with ``root_path`` extended by ``prefix``.
        name: a label for logs and lifespan errors (defaults to the prefix).

    Raises:
        ValueError: a prefix that could never match (:func:`mount_prefix`).
    """

    def __init__(self, prefix: str, app: ASGIApp, *, name: str | None = None) -> None:
        self.prefix = mount_prefix(prefix)
        self.app = app
        self.name = name if name is not None else (self.prefix or "/")

    def __repr__(self) -> str:
        return f"Mount({self.prefix!r}, {self.app!r})"

    def match(self, scope: Scope) -> Scope | None:
        """Return the scope to call ``app`` with, or ``None`` when the path is elsewhere.

        The child scope is a copy with ``root_path`` extended and ``FOREIGN_KEYS`` removed.
        """
        rest = route_path(scope)
        if rest != self.prefix and not rest.startswith(self.prefix + "/"):
            return None
        child = child_scope(scope)
        child["root_path"] = scope.get("root_path", "") + self.prefix
        return child

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        """Reverse ``name`` inside the mounted app (Starlette's protocol), under ``prefix``."""
        return reverse(self.app, self.prefix, name, path_params)


class Host:
    """Route requests whose ``Host`` header matches ``pattern`` to ``app``.

    Patterns: ``"example.com"`` (any port), ``"example.com:8080"`` (that port only),
    ``"*.example.com"`` (one or more labels in front of ``example.com``), ``"*"`` (any host).
    Matching ignores case and one trailing dot (``example.com.`` is the same fully qualified
    name); the host is read from the ``Host`` header, else ``scope["server"]``.

    Args:
        pattern: the host pattern.
        app: the ASGI app; it gets a copy of the scope without ``FOREIGN_KEYS``.
        name: a label for logs and lifespan errors (defaults to the pattern).
    """

    def __init__(self, pattern: str, app: ASGIApp, *, name: str | None = None) -> None:
        host, port = split_host_port(pattern.lower())
        if port and not port.isdigit():
            raise ValueError(f"Host pattern port must be a number: {pattern!r}")
        self.host, self.port = host.removesuffix("."), port
        self.app = app
        self.name = name if name is not None else pattern

    def __repr__(self) -> str:
        return f"Host({self.host + (':' + self.port if self.port else '')!r}, {self.app!r})"

    def match(self, scope: Scope) -> Scope | None:
        """Return the scope to call ``app`` with when the host matches, else ``None``."""
        host, port = request_host(scope)
        if self.port and port != self.port:
            return None
        if self.host == "*" or host == self.host:
            return child_scope(scope)
        if self.host.startswith("*."):
            suffix = self.host[1:]
            if host.endswith(suffix) and len(host) > len(suffix):
                return child_scope(scope)
        return None

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        """Reverse ``name`` inside the app (Starlette's protocol); the path has no host part."""
        return reverse(self.app, "", name, path_params)


Route = Mount | Host


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """The default app when nothing matches: 404 for http, a close for websocket.

    ASGI www.rst: a ``websocket.close`` before ``websocket.accept`` makes the server reject the
    handshake with 403. RFC 9110 §9.3.2: a response to HEAD has the headers GET would have
    (``Content-Length`` included) and no body.
    """
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000})
        return
    await send_plain(send, 404, head=scope.get("method") == "HEAD")


def _unknown_scope(owner: object, kind: object) -> ValueError:
    # ASGI: "Applications should actively reject any protocol that they do not understand
    # with an Exception (of any type)."
    return ValueError(f"{type(owner).__name__} cannot handle scope type {kind!r}")


class Router:
    """An ASGI app that sends each request to the first matching route.

    ``Host`` routes are tried first, in order; then ``Mount`` routes, longest prefix first.
    Requests that match nothing go to ``default`` (a plain 404 when not given).

    Example::

        app = Router([Mount("/legacy", legacy), Mount("/api", api)], default=site)

    Args:
        routes: ``Mount`` and ``Host`` instances.
        default: the app for unmatched requests.

    Raises:
        ValueError: two routes take the same requests (the same mount prefix, or the same host
            pattern), so the second could never be reached.
    """

    def __init__(self, routes: Sequence[Route], *, default: ASGIApp | None = None) -> None:
        _check_reachable(routes)
        hosts = [r for r in routes if isinstance(r, Host)]
        mounts = sorted((r for r in routes if isinstance(r, Mount)), key=lambda m: -len(m.prefix))
        self.routes: list[Route] = [*hosts, *mounts]
        self.declared = list(routes)
        self.default = default

    def __repr__(self) -> str:
        return f"Router({self.routes!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await run_lifespans(self.lifespan_apps(), scope, receive, send, per_app_state=True)
            return
        if kind != "http" and kind != "websocket":
            raise _unknown_scope(self, kind)
        scope = spec_form(scope)
        for route in self.routes:
            child = route.match(scope)
            if child is not None:
                await route.app(give_app_state(child, route.app), receive, send)
                return
        app = self.default or not_found
        await app(give_app_state(child_scope(scope), app), receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        """Reverse ``name`` in the first route (then the default app) that knows it.

        Starlette's protocol: returns a ``starlette.datastructures.URLPath``.

        Raises:
            starlette.routing.NoMatchFound: no app below this router knows ``name``.
        """
        from starlette.routing import NoMatchFound as StarletteNoMatchFound

        for app in [*self.routes, self.default]:
            try:
                return reverse(app, "", name, path_params)
            except StarletteNoMatchFound:
                continue
        raise StarletteNoMatchFound(name, path_params)

    def lifespan_apps(self) -> list[tuple[str, ASGIApp]]:
        """The apps whose lifespans this router stands for: routes as listed, then ``default``."""
        named = [(route.name, route.app) for route in self.declared]
        if self.default is not None:
            named.append(("default", self.default))
        return named


def _check_reachable(routes: Sequence[Route]) -> None:
    seen: dict[tuple[str, ...], Route] = {}
    for route in routes:
        if isinstance(route, Mount):
            key: tuple[str, ...] = ("mount", route.prefix)
        else:
            key = ("host", route.host, route.port)
        if key in seen:
            raise ValueError(
                f"{route!r} could never be reached: {seen[key]!r} takes the same requests"
            )
        seen[key] = route


class ProtocolRouter:
    """Send each scope type (``http``, ``websocket``, ``lifespan``) to its own app.

    Like channels' ``ProtocolTypeRouter``. A ``lifespan`` scope with no app of its own is
    fanned out to the other apps (each with a state of its own). An ``http`` or ``websocket``
    scope with no app gets the default answer (404, or a close); any other type raises.

    Example::

        app = ProtocolRouter({"http": wsgi_to_asgi(flask_app), "websocket": chat_app})
    """

    def __init__(self, apps: Mapping[str, ASGIApp]) -> None:
        self.apps = dict(apps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        app = self.apps.get(kind)
        if app is not None and kind == "lifespan":
            await app(scope, receive, send)
        elif app is not None:
            await app(with_app_state(scope, app), receive, send)
        elif kind == "lifespan":
            await run_lifespans(self.apps.items(), scope, receive, send, per_app_state=True)
        elif kind == "http" or kind == "websocket":
            await not_found(scope, receive, send)
        else:
            raise _unknown_scope(self, kind)

    def lifespan_apps(self) -> list[tuple[str, ASGIApp]] | None:
        """The apps whose lifespans this router stands for; ``None`` when a ``lifespan`` app
        speaks for all of them (the router is then driven as one app)."""
        return None if "lifespan" in self.apps else list(self.apps.items())


def reverse(app: object, prefix: str, name: str, path_params: dict[str, Any]) -> Any:
    """Ask ``app`` to reverse ``name`` the Starlette way and put ``prefix`` in front.

    Only Starlette calls ``url_path_for``, so Starlette is importable whenever this runs.
    """
    from starlette.datastructures import URLPath
    from starlette.routing import NoMatchFound as StarletteNoMatchFound

    url_path_for = getattr(app, "url_path_for", None)
    if url_path_for is None:
        raise StarletteNoMatchFound(name, path_params)
    url = url_path_for(name, **path_params)
    return URLPath(path=prefix + str(url), protocol=url.protocol, host=url.host)
