"""Per-route traffic counters: the dashboard's only code on the hot path.

Rules this module keeps:

* One request costs two clock reads, one ``send`` wrapper and a handful of integer additions.
  Everything runs on the event loop (an ASGI middleware's code always does, whichever thread
  the app's view runs on), so there are no locks; the dashboard reads the counters on the
  same loop.
* A request is counted under the route that would answer it, read from the route table
  (:func:`wsgi2asgi.inventory.collect_routes`): its template when the framework declares one
  (``/users/<int:id>``, ``/items/{id}``, Django's patterns), else the mount prefix of an app
  the inventory cannot look inside (``/canary/*``), else ``(other)``. The table is built on
  the first request, and each ``METHOD path`` found is remembered (up to ``_CACHE`` of them),
  so a repeated path costs one dict lookup.
* Whether a request was "served by async code" is its route's ``is_async``; the async share
  over time is kept in one-second buckets for the last ``_SECONDS`` seconds.
* Memory is bounded: one counter per route row, ``_LATENCIES`` recent latencies per route,
  ``_SECONDS`` buckets, ``_CACHE`` remembered paths.

Example::

    traffic = Traffic(app)
    counted = TrafficCounter(app, traffic)    # serve this; traffic.snapshot() reads it
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from wsgi2asgi.exceptions import ClientDisconnected
from wsgi2asgi.inventory import RouteInfo, collect_routes
from wsgi2asgi.prefixes import route_path
from wsgi2asgi.typing import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RouteMatcher", "Traffic", "TrafficCounter"]

_CACHE = 4096
_LATENCIES = 512
_SECONDS = 300
# What a placeholder's converter matches (Flask, Starlette and Django agree on these); any
# other converter: one path segment.
_CONVERTERS = {"int": "[0-9]+", "path": ".*"}
_PLACEHOLDER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>|\{(\w+)(?::(\w+))?\}")


class RouteMatcher:
    """Find the row of a route table that a request's method and path belong to.

    Example::

        matcher = RouteMatcher(collect_routes(app))
        matcher.match("GET", "/legacy/users/7")     # the index of /legacy/users/<int:id>

    Args:
        routes: the rows; templates of Flask, Starlette and Django are understood, ``/p/*``
            rows (kind ``mount``) match their prefix and below.
    """

    def __init__(self, routes: Sequence[RouteInfo]) -> None:
        self.routes = list(routes)
        self.other = len(self.routes)
        patterns: dict[str, list[int]] = {}
        mounts: list[tuple[str, int]] = []
        for index, route in enumerate(self.routes):
            if route.kind == "mount":
                mounts.append((route.path.removesuffix("/*"), index))
                continue
            pattern = _pattern(route)
            if pattern is not None:
                patterns.setdefault(pattern, []).append(index)
        self._groups = list(patterns.values())
        alternatives = (f"(?P<r{i}>{p})" for i, p in enumerate(patterns))
        self._regex = re.compile("|".join(alternatives)) if patterns else None
        self._mounts = sorted(mounts, key=lambda mount: -len(mount[0]))

    def match(self, method: str, path: str) -> int:
        """The index of the row for ``method path``; :attr:`other` when none fits."""
        found = self._regex.fullmatch(path) if self._regex is not None else None
        if found is not None and found.lastgroup is not None:
            candidates = self._groups[int(found.lastgroup[1:])]
            method = "GET" if method == "HEAD" else method
            for index in candidates:
                methods = self.routes[index].methods
                if not methods or "*" in methods or method in methods:
                    return index
            return candidates[0]
        for prefix, index in self._mounts:
            if path == prefix or path.startswith(prefix + "/") or not prefix:
                return index
        return self.other


def _pattern(route: RouteInfo) -> str | None:
    """A regex for a route's path template, or ``None`` when it cannot be read."""
    literal, _, regex = route.path.partition("/^")  # Django's re_path: "/prefix/^regex$"
    parts = [_template(literal)]
    if regex:
        # The regex pieces of nested include()s are joined as written; each starts with "^".
        pieces = ("/" + ("^" + regex)).split("/^")
        body = "/".join(piece.removesuffix("$") for piece in pieces[1:])
        parts.append("/" + re.sub(r"\(\?P<\w+>", "(?:", body))
    pattern = "".join(parts)
    try:
        re.compile(pattern)
    except re.error:
        return None
    return pattern


def _template(text: str) -> str:
    """``/users/<int:id>`` or ``/items/{id:int}`` as a regex: ``/users/[^/]+``."""
    out, end = [], 0
    for found in _PLACEHOLDER.finditer(text):
        out.append(re.escape(text[end : found.start()]))
        converter = found.group(1) or found.group(4) or ""
        out.append(_CONVERTERS.get(converter, "[^/]+"))
        end = found.end()
    out.append(re.escape(text[end:]))
    return "".join(out)


class _RouteCounters:
    """One route's counts (``requests`` includes WebSocket sessions) and recent latencies.

    ``served_async`` / ``served_sync`` are what one request adds to the second's async and
    sync counts: ``(1, 0)``, ``(0, 1)``, or ``(0, 0)`` for ``(other)`` (no route: unknown).
    """

    __slots__ = ("errors", "latencies", "requests", "served_async", "served_sync", "websockets")

    def __init__(self, is_async: bool | None) -> None:
        self.requests = self.errors = self.websockets = 0
        self.served_async = int(is_async is True)
        self.served_sync = int(is_async is False)
        self.latencies: deque[float] = deque(maxlen=_LATENCIES)


class Traffic:
    """Per-route and per-second traffic of an app; written by :class:`TrafficCounter`.

    Example::

        traffic = Traffic(app)
        traffic.snapshot()["routes"][0]["requests"]

    Args:
        app: the app whose route table names the rows (read on first use).
        clock: the clock latencies and seconds are read from (``time.perf_counter``).
    """

    def __init__(self, app: ASGIApp, *, clock: Any = time.perf_counter) -> None:
        self.app = app
        self.clock = clock
        self._matcher: RouteMatcher | None = None
        self._counters: list[_RouteCounters] = []
        self._cache: dict[tuple[str, str], _RouteCounters] = {}
        # [second, requests, async requests, sync requests, errors]; the newest last.
        self._seconds: deque[list[int]] = deque([[0, 0, 0, 0, 0]], maxlen=_SECONDS)

    @property
    def matcher(self) -> RouteMatcher:
        """The route table's matcher, built from the app's routes on first use."""
        if self._matcher is None:
            matcher = RouteMatcher(collect_routes(self.app))
            self._counters = [_RouteCounters(r.is_async) for r in matcher.routes]
            self._counters.append(_RouteCounters(None))  # (other)
            self._matcher = matcher
        return self._matcher

    def counters_for(self, method: str, path: str) -> _RouteCounters:
        """The counters of the route serving ``method path`` (remembered for next time)."""
        key = (method, path)
        counters = self._cache.get(key)
        if counters is None:
            index = self.matcher.match(method, path)
            counters = self._counters[index]
            if len(self._cache) < _CACHE:
                self._cache[key] = counters
        return counters

    def record(self, counters: _RouteCounters, status: int, started: float, ended: float) -> None:
        """Count one finished HTTP request (``status`` 0: no response was started)."""
        error = status >= 500 or status == 0
        counters.requests += 1
        counters.errors += error
        counters.latencies.append(ended - started)
        bucket = self._seconds[-1]
        second = int(ended)
        if bucket[0] != second:
            bucket = [second, 0, 0, 0, 0]
            self._seconds.append(bucket)
        bucket[1] += 1
        bucket[2] += counters.served_async
        bucket[3] += counters.served_sync
        bucket[4] += error

    def snapshot(self) -> dict[str, Any]:
        """Every counter as a JSON-ready dict: ``routes``, ``other``, ``timeline``, ``totals``."""
        matcher = self.matcher
        rows = [
            {**_route_dict(route), **_counters_dict(counters)}
            for route, counters in zip(matcher.routes, self._counters, strict=False)
        ]
        offset = time.time() - self.clock()  # the counters' clock to the wall clock
        seconds = [
            [round(second + offset), requests, asynchronous, sync, errors]
            for second, requests, asynchronous, sync, errors in self._seconds
            if second
        ]
        other = self._counters[-1]
        totals = {
            name: sum(row[name] for row in rows) + getattr(other, name)
            for name in ("requests", "errors", "websockets")
        }
        return {
            "routes": rows,
            "other": _counters_dict(other),
            "timeline": seconds,
            "totals": totals,
        }


def _route_dict(route: RouteInfo) -> dict[str, Any]:
    return {
        "path": route.path,
        "methods": list(route.methods),
        "framework": route.framework,
        "endpoint": route.endpoint,
        "is_async": route.is_async,
        "kind": route.kind,
        "role": route.role,
    }


def _counters_dict(counters: _RouteCounters) -> dict[str, Any]:
    return {
        "requests": counters.requests,
        "errors": counters.errors,
        "websockets": counters.websockets,
        "latency_ms": _percentiles(counters.latencies),
    }


def _percentiles(latencies: deque[float]) -> dict[str, float | None]:
    """p50, p95 and p99 of the recent latencies in milliseconds (nearest rank)."""
    if not latencies:
        return dict.fromkeys(("p50", "p95", "p99"))
    ordered = sorted(latencies)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000, 3)

    return {"p50": rank(0.5), "p95": rank(0.95), "p99": rank(0.99)}


class TrafficCounter:
    """Count each request of ``app`` in ``traffic``: the middleware the dashboard reads.

    HTTP requests are counted when they end (an app that raises counts as an error, as does a
    5xx); WebSocket sessions when they start. Lifespan passes through.

    Example::

        app = TrafficCounter(app, Traffic(app))

    Args:
        app: the app to count.
        traffic: where the counts go.
    """

    def __init__(self, app: ASGIApp, traffic: Traffic) -> None:
        self.app = app
        self.traffic = traffic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket":
                counters = self.traffic.counters_for("WEBSOCKET", route_path(scope))
                counters.requests += 1
                counters.websockets += 1
            await self.app(scope, receive, send)
            return
        traffic = self.traffic
        counters = traffic.counters_for(scope.get("method", "GET"), route_path(scope))
        status = [0]

        async def observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        started = traffic.clock()
        try:
            await self.app(scope, receive, observed)
        except ClientDisconnected:
            status[0] = 499  # the client left: not the app's error (nginx's 499)
            raise
        except BaseException:
            status[0] = 500
            raise
        finally:
            traffic.record(counters, status[0], started, traffic.clock())
