"""List every route of an app tree: ``wsgi2asgi routes APP`` (the migration inventory).

Rules this module keeps:

* The walk is generic. Frameworks are recognised by ``isinstance`` with lazy imports (each one
  is optional): Flask (``url_map``), Django (any ``BaseHandler`` → the URL resolver, recursing
  into ``include()``), Starlette (``Starlette`` or ``starlette.routing.Router`` → ``Route``,
  ``WebSocketRoute``, ``Mount``, ``Host``). Our own ``Router``/``Mount``/``Host`` add their
  prefixes; ``ProtocolRouter`` lists each distinct app once; the rows behind a ``Fallback``
  carry ``role`` ``"primary"`` or ``"fallback"`` (once behind a fallback, always a fallback),
  and those of a ``Split``'s arms ``"migrated"`` or ``"legacy"`` (once legacy, always legacy;
  a role from inside the migrated arm is kept).
* Any other object is unwrapped through ``.primary``, ``.app``, ``.handler``, ``.application``
  or ``.routes``, but only into what is itself an app (callable: bottle's ``Route`` objects are
  not) and never into an app already being listed above it (bottle's ``Route.app`` is its
  ``Bottle``: a cycle). An app with nothing to unwrap, or a framework app with no routes, is
  one opaque row ``PREFIX/*`` of kind ``mount``.
* One app never ends the listing: if reading its routes raises, it becomes its opaque row and
  one WARNING line on ``wsgi2asgi.inventory`` says why. A root that is not callable is not an
  app: ``TypeError`` (the CLI: exit status 2).
* ``methods`` leaves out ``HEAD`` and ``OPTIONS`` (frameworks add them on their own) unless
  ``implicit_methods=True``. ``("*",)`` means "not knowable": a Django function view.
* ``is_async`` looks through ``functools.wraps`` and at class-based views' handler methods
  (a class view is async only when all of them are, Django's ``view_is_async`` rule).

Example::

    $ wsgi2asgi routes mysite.asgi:application
    $ wsgi2asgi routes mysite.asgi:application --json
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from wsgi2asgi.bridges import iscoroutinefunction
from wsgi2asgi.fallback import Fallback
from wsgi2asgi.interface import detect_interface
from wsgi2asgi.routing import Host, Mount, ProtocolRouter, Router
from wsgi2asgi.split import Split

__all__ = ["RouteInfo", "collect_routes", "format_table", "summarize"]

logger = logging.getLogger(__name__)

_IMPLICIT = frozenset({"HEAD", "OPTIONS"})
_MAX_DEPTH = 64


@dataclasses.dataclass(frozen=True)
class RouteInfo:
    """One route of the inventory.

    Example::

        RouteInfo("/legacy/users/<int:id>", ("GET",), "flask", "users.show", False, "http")

    Args:
        path: the full path, mount prefixes included, in the framework's own pattern syntax.
        methods: sorted HTTP methods; ``()`` for websockets and opaque apps, ``("*",)`` when
            the framework cannot tell.
        framework: ``"flask"``, ``"django"``, ``"starlette"``, ``"wsgi"`` or ``"asgi"``.
        endpoint: the route's name (``"ns:name"`` for Django namespaces) or the view's path.
        is_async: whether the view runs on the event loop.
        kind: ``"http"``, ``"websocket"`` or ``"mount"`` (an app we cannot look inside).
        role: behind a ``Fallback``: ``"primary"`` (answers first) or ``"fallback"`` (answers
            what the primary does not); in a ``Split``: ``"migrated"`` (answers its share of
            users) or ``"legacy"`` (the others); ``""`` elsewhere.
    """

    path: str
    methods: tuple[str, ...]
    framework: str
    endpoint: str
    is_async: bool
    kind: str = "http"
    role: str = ""


def collect_routes(
    app: Any, prefix: str = "", *, implicit_methods: bool = False
) -> list[RouteInfo]:
    """Walk ``app`` (any mix of our routers, adapters and frameworks) and list its routes.

    An app the walk cannot look inside, or whose route table raises (logged once, on
    ``wsgi2asgi.inventory``), is one opaque ``PREFIX/*`` row; so is an app with no routes.

    Example::

        >>> collect_routes(Router([Mount("/api", some_asgi_app)]))  # doctest: +SKIP
        [RouteInfo(path='/api/*', methods=(), framework='asgi', ...)]

    Args:
        app: the root of the tree (what you would serve).
        prefix: a path to put in front of every route.
        implicit_methods: keep ``HEAD`` and ``OPTIONS`` in ``methods``.

    Returns:
        The routes, in declaration order.

    Raises:
        TypeError: ``app`` is not callable, so not an app.
    """
    if not callable(app):
        raise TypeError(f"not an app: a {type(app).__name__} is not callable")
    return _Walker(implicit_methods).walk(app, prefix.rstrip("/"), frozenset())


class _Walker:
    """Each ``walk`` lists one app; ``inside`` holds the ids of the apps being listed around it
    (the path from the root), so that a cycle (bottle's ``Route.app`` is its ``Bottle``) ends."""

    def __init__(self, implicit_methods: bool) -> None:
        self.implicit_methods = implicit_methods

    def methods(self, names: Any) -> tuple[str, ...]:
        upper = {str(name).upper() for name in names or ()}
        return tuple(sorted(upper if self.implicit_methods else upper - _IMPLICIT))

    def walk(self, app: Any, prefix: str, inside: frozenset[int]) -> list[RouteInfo]:
        if id(app) in inside:
            return []  # a cycle: the app is already being listed further up
        if len(inside) >= _MAX_DEPTH:
            _skipped(app, prefix, f"more than {_MAX_DEPTH} levels of wrappers")
            return [_opaque(app, prefix)]
        inside = inside | {id(app)}
        try:
            framework, rows = self.recognise(app, prefix, inside)
        except Exception as exc:  # one app's broken table never ends the listing
            _skipped(app, prefix, f"{type(exc).__name__}: {_first_line(exc)}")
            return [_opaque(app, prefix)]
        return rows or [_opaque(app, prefix, framework)]

    def recognise(
        self, app: Any, prefix: str, inside: frozenset[int]
    ) -> tuple[str | None, list[RouteInfo]]:
        """Return the framework that knows ``app`` (``None``: unwrapped generically), and rows."""
        for framework, recogniser in (
            ("asgi", self.ours),
            ("flask", self.flask),
            ("django", self.django),
            ("starlette", self.starlette),
        ):
            rows = recogniser(app, prefix, inside)
            if rows is not None:
                return framework, list(rows)
        return None, self.unwrap(app, prefix, inside)

    def ours(self, app: Any, prefix: str, inside: frozenset[int]) -> Iterable[RouteInfo] | None:
        if isinstance(app, Router):
            routes: list[Any] = [*app.declared, *([app.default] if app.default else [])]
            return (row for route in routes for row in self.walk(route, prefix, inside))
        if isinstance(app, Mount):
            return self.walk(app.app, prefix + app.prefix, inside)
        if isinstance(app, Host):
            return self.walk(app.app, prefix, inside)
        if isinstance(app, Fallback):
            # The primary answers first; what it answers 404 (by default) the fallback answers.
            return self.arms(app.primary, "primary", app.fallback, "fallback", prefix, inside)
        if isinstance(app, Split):
            # Each request goes to one arm: a share of users to migrated, the others to legacy.
            return self.arms(app.migrated, "migrated", app.legacy, "legacy", prefix, inside)
        if isinstance(app, ProtocolRouter):
            apps = {id(child): child for child in app.apps.values()}  # one app for both: once
            return (row for child in apps.values() for row in self.walk(child, prefix, inside))
        return None

    def arms(
        self, new: Any, new_role: str, old: Any, old_role: str, prefix: str, inside: frozenset[int]
    ) -> list[RouteInfo]:
        """The rows of a two-armed app: the new arm's keep a role they have from inside it."""
        return [
            *(
                dataclasses.replace(r, role=r.role or new_role)
                for r in self.walk(new, prefix, inside)
            ),
            *(dataclasses.replace(r, role=old_role) for r in self.walk(old, prefix, inside)),
        ]

    def flask(self, app: Any, prefix: str, inside: frozenset[int]) -> Iterable[RouteInfo] | None:
        flask = sys.modules.get("flask")
        if flask is None or not isinstance(app, flask.Flask):
            return None
        return (
            RouteInfo(
                prefix + rule.rule,
                self.methods(rule.methods),
                "flask",
                rule.endpoint,
                _view_is_async(app.view_functions.get(rule.endpoint)),
            )
            for rule in app.url_map.iter_rules()
        )

    def django(self, app: Any, prefix: str, inside: frozenset[int]) -> Iterable[RouteInfo] | None:
        if "django" not in sys.modules:
            return None
        from django.core.handlers.base import BaseHandler

        if not isinstance(app, BaseHandler):
            return None
        from django.urls import get_resolver

        return self.django_patterns(get_resolver().url_patterns, prefix + "/", ())

    def django_patterns(
        self, patterns: Sequence[Any], path: str, namespaces: tuple[str, ...]
    ) -> Iterator[RouteInfo]:
        from django.urls import URLResolver

        for pattern in patterns:
            full = path + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                inner = (*namespaces, pattern.namespace) if pattern.namespace else namespaces
                yield from self.django_patterns(pattern.url_patterns, full, inner)
                continue
            callback = pattern.callback
            view_class = getattr(callback, "view_class", None)
            if pattern.name:
                endpoint = ":".join((*namespaces, pattern.name))
            else:
                endpoint = _qualified_name(view_class or callback)
            methods: tuple[str, ...] = ("*",)
            if view_class is not None:
                allowed = [m for m in view_class.http_method_names if hasattr(view_class, m)]
                methods = self.methods(["HEAD" if m == "head" else m for m in allowed])
            yield RouteInfo(full, methods, "django", endpoint, _view_is_async(callback))

    def starlette(
        self, app: Any, prefix: str, inside: frozenset[int]
    ) -> Iterable[RouteInfo] | None:
        if "starlette" not in sys.modules:
            return None
        from starlette.applications import Starlette
        from starlette.routing import Router as StarletteRouter

        if not isinstance(app, Starlette | StarletteRouter):
            return None
        return self.starlette_routes(app.routes, prefix, inside)

    def starlette_routes(
        self, routes: Sequence[Any], prefix: str, inside: frozenset[int]
    ) -> Iterator[RouteInfo]:
        from starlette import routing

        for route in routes:
            if isinstance(route, routing.Route):
                yield self.starlette_route(route, prefix)
            elif isinstance(route, routing.WebSocketRoute):
                endpoint = route.name or _qualified_name(route.endpoint)
                yield RouteInfo(prefix + route.path, (), "starlette", endpoint, True, "websocket")
            elif isinstance(route, routing.Mount):
                inner = prefix + route.path
                if route.routes:
                    yield from self.starlette_routes(route.routes, inner, inside)
                else:
                    yield from self.walk(route.app, inner, inside)
            elif isinstance(route, routing.Host):
                yield from self.walk(route.app, prefix, inside)
            else:
                yield RouteInfo(
                    prefix + "/*", (), "starlette", _qualified_name(route), True, "mount"
                )

    def starlette_route(self, route: Any, prefix: str) -> RouteInfo:
        endpoint = route.endpoint
        if inspect.isclass(endpoint):  # HTTPEndpoint: one handler per method
            handlers = {m: getattr(endpoint, m.lower(), None) for m in _HTTP_METHODS}
            handlers = {m: h for m, h in handlers.items() if h is not None}
            methods = self.methods(handlers)
            is_async = bool(handlers) and all(_view_is_async(h) for h in handlers.values())
        else:
            methods = self.methods(route.methods)
            is_async = _view_is_async(endpoint)
        name = route.name or _qualified_name(endpoint)
        return RouteInfo(prefix + route.path, methods, "starlette", name, is_async)

    def unwrap(self, app: Any, prefix: str, inside: frozenset[int]) -> list[RouteInfo]:
        """Look through a wrapper we do not know; only ever into what is itself an app."""
        primary = getattr(app, "primary", None)
        if callable(primary):  # Shadow: the primary answers, the candidate never does
            return self.walk(primary, prefix, inside)
        for attribute in ("app", "handler", "application"):  # "application": Django's wrappers
            inner = getattr(app, attribute, None)
            if callable(inner):
                return self.walk(inner, prefix, inside)
        routes = getattr(app, "routes", None)
        if isinstance(routes, list | tuple):  # bottle's Route objects are not apps: skipped
            apps = [route for route in routes if callable(route) or isinstance(route, Mount | Host)]
            return [row for route in apps for row in self.walk(route, prefix, inside)]
        return []


_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def _view_is_async(view: Any) -> bool:
    """Tell whether a view runs on the loop, looking through wrappers and class views."""
    if view is None:
        return False
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        is_async = getattr(view_class, "view_is_async", None)  # Django's classproperty
        if isinstance(is_async, bool):
            return is_async
        handlers = [getattr(view_class, m.lower(), None) for m in _HTTP_METHODS]
        found = [h for h in handlers if h is not None and _is_own_handler(h)]
        if not found:  # a plain class view: one dispatch method (Flask's ``View``)
            return iscoroutinefunction(getattr(view_class, "dispatch_request", None))
        return all(iscoroutinefunction(h) for h in found)
    return iscoroutinefunction(view) or iscoroutinefunction(inspect.unwrap(view))


def _is_own_handler(handler: Any) -> bool:
    """Tell whether a class attribute is a handler the class defines (not ``View.options``)."""
    owner = getattr(handler, "__qualname__", "").split(".")[0]
    return owner not in {"View", "MethodView"}


def _qualified_name(obj: Any) -> str:
    target = obj if inspect.isfunction(obj) or inspect.isclass(obj) else type(obj)
    return f"{target.__module__}.{target.__qualname__}"


def _opaque(app: Any, prefix: str, framework: str | None = None) -> RouteInfo:
    """The one row of an app the walk cannot look inside (or that has no routes)."""
    try:
        is_async = detect_interface(app) != "wsgi"
    except TypeError:
        is_async = False
    framework = framework or ("asgi" if is_async else "wsgi")
    return RouteInfo(prefix + "/*", (), framework, _qualified_name(app), is_async, "mount")


def _skipped(app: Any, prefix: str, why: str) -> None:
    logger.warning(
        "wsgi2asgi routes: %s: could not list %s (%s); shown as %s/*",
        prefix or "/",
        _qualified_name(app),
        why,
        prefix,
    )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return lines[0] if lines else ""


def summarize(routes: Sequence[RouteInfo]) -> dict[str, Any]:
    """Count routes per framework and sync/async.

    Example::

        >>> summarize([RouteInfo("/", ("GET",), "flask", "index", False)])
        {'total': 1, 'sync': 1, 'async': 0, 'frameworks': {'flask': {'sync': 1, 'async': 0}}}
    """
    frameworks: dict[str, dict[str, int]] = {}
    for route in routes:
        counts = frameworks.setdefault(route.framework, {"sync": 0, "async": 0})
        counts["async" if route.is_async else "sync"] += 1
    asynchronous = sum(1 for route in routes if route.is_async)
    return {
        "total": len(routes),
        "sync": len(routes) - asynchronous,
        "async": asynchronous,
        "frameworks": frameworks,
    }


def format_table(routes: Sequence[RouteInfo]) -> str:
    """Render routes as an aligned text table with a summary line."""
    header = ("PATH", "METHODS", "FRAMEWORK", "ENDPOINT", "MODE")
    rows = [header]
    for r in routes:
        mode = ("async" if r.is_async else "sync") + (f" ({r.role})" if r.role else "")
        methods = ",".join(r.methods) or ("WS" if r.kind == "websocket" else "-")
        rows.append((r.path, methods, r.framework, r.endpoint, mode))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]
    summary = summarize(routes)
    parts = ", ".join(
        f"{name} {c['sync'] + c['async']} ({c['sync']} sync, {c['async']} async)"
        for name, c in sorted(summary["frameworks"].items())
    )
    lines.append(f"\n{summary['total']} routes: {parts or 'none'}")
    return "\n".join(lines)
