"""What the dashboard shows besides traffic: the Shadows and Splits of the tree, blocking calls.

Rules this module keeps:

* The tree is walked once, on first use, the way :mod:`wsgi2asgi.inventory` walks it: our
  ``Router``/``Mount``/``Host``/``Fallback``/``ProtocolRouter``, both arms of a ``Split``, a
  ``Shadow``'s primary, Starlette's routes and mounts, and any wrapper's ``.app``,
  ``.handler`` or ``.application``; never into an app it is already inside.
* Each :class:`~wsgi2asgi.shadow.Shadow` and :class:`~wsgi2asgi.split.Split` found is listed
  with the mount prefix it answers under and a number (its place in the walk) that
  ``POST api/splits/N`` uses.
* Reading them is reading their ``report()``, on the event loop, as their own report paths do.
  The blocking detector's episodes are appended by its watchdog thread; the list is copied.

Example::

    watched = Watched.of(app)
    watched.splits[0].app.set_percent(20)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from wsgi2asgi.fallback import Fallback
from wsgi2asgi.routing import Host, Mount, ProtocolRouter, Router
from wsgi2asgi.shadow import Shadow
from wsgi2asgi.split import Split

if TYPE_CHECKING:
    from wsgi2asgi.blocking import BlockingDetector

__all__ = ["Watched", "WatchedApp", "blocking_report"]

_MAX_DEPTH = 64
_EPISODES = 20


@dataclasses.dataclass(frozen=True)
class WatchedApp:
    """A ``Shadow`` or ``Split`` found in the tree, and the prefix it answers under."""

    where: str
    app: Any


@dataclasses.dataclass
class Watched:
    """The Shadows and Splits of an app tree, in the order the walk met them."""

    shadows: list[WatchedApp] = dataclasses.field(default_factory=list)
    splits: list[WatchedApp] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, app: Any) -> Watched:
        """Walk ``app`` and collect what it holds.

        Example::

            [found.where for found in Watched.of(app).splits]     # ["/canary"]
        """
        watched = cls()
        watched._walk(app, "", frozenset())
        return watched

    def report(self) -> dict[str, Any]:
        """``{"shadows": [...], "splits": [...]}``: each ``report()`` with its ``id`` and prefix."""
        return {
            "shadows": [_entry(i, found) for i, found in enumerate(self.shadows)],
            "splits": [_entry(i, found) for i, found in enumerate(self.splits)],
        }

    def _walk(self, app: Any, prefix: str, inside: frozenset[int]) -> None:
        if id(app) in inside or len(inside) >= _MAX_DEPTH:
            return
        inside = inside | {id(app)}
        for child_prefix, child in self._children(app, prefix):
            self._walk(child, child_prefix, inside)

    def _children(self, app: Any, prefix: str) -> list[tuple[str, Any]]:
        if isinstance(app, Shadow):
            self.shadows.append(WatchedApp(prefix or "/", app))
            return [(prefix, app.primary)]
        if isinstance(app, Split):
            self.splits.append(WatchedApp(prefix or "/", app))
            return [(prefix, app.migrated), (prefix, app.legacy)]
        if isinstance(app, Router):
            return [(prefix, r) for r in [*app.declared, *([app.default] if app.default else [])]]
        if isinstance(app, Mount):
            return [(prefix + app.prefix, app.app)]
        if isinstance(app, Host):
            return [(prefix, app.app)]
        if isinstance(app, Fallback):
            return [(prefix, app.primary), (prefix, app.fallback)]
        if isinstance(app, ProtocolRouter):
            return [(prefix, child) for child in app.apps.values()]
        return _generic_children(app, prefix)


def _generic_children(app: Any, prefix: str) -> list[tuple[str, Any]]:
    """A wrapper's app, or Starlette's routes (a route's ``path`` is added when it mounts)."""
    for attribute in ("app", "handler", "application"):
        inner = getattr(app, attribute, None)
        if callable(inner):
            return [(prefix, inner)]
    routes = getattr(app, "routes", None)
    if not isinstance(routes, list | tuple):
        return []
    children = []
    for route in routes:
        inner = getattr(route, "app", None)
        path = getattr(route, "path", "")
        if callable(inner) and getattr(route, "routes", None) is not None:  # a Starlette Mount
            children.append((prefix + (path if isinstance(path, str) else ""), inner))
    return children


def _entry(number: int, found: WatchedApp) -> dict[str, Any]:
    return {"id": number, "where": found.where, **found.app.report()}


def blocking_report(detector: BlockingDetector | None) -> dict[str, Any] | None:
    """The detector's settings and its recent episodes, newest first (``None``: it is off).

    Example::

        blocking_report(detector)["episodes"][0]["stack"]
    """
    if detector is None:
        return None
    episodes = list(detector.episodes)[-_EPISODES:]
    return {
        "threshold_ms": round(detector.threshold * 1000, 3),
        "count": detector.count,
        "max_ms": round(detector.max_duration * 1000, 3),
        "episodes": [
            {
                "duration_ms": round(episode.duration * 1000, 3),
                "request": episode.request,
                "stack": "".join(episode.stack),
                "ended": episode.ended,
            }
            for episode in reversed(episodes)
        ],
    }
