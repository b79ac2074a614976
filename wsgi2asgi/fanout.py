"""Lifespan fan-out: a composite app drives the lifespan of every distinct app beneath it.

What users see (which apps start, in what order, what a failure says, one ``state`` per app)
is stated once, in ``docs/routing.md`` ("Lifespan fan-out"). How it is done:

* A *composite* (``Router``, ``ProtocolRouter``, ``Fallback``, or any object with a
  ``lifespan_apps()`` method returning ``[(name, app), ...]``) is not driven itself: the one
  that receives the lifespan scope walks the tree below it (:func:`lifespan_leaves`) and drives
  each distinct leaf once, with a :class:`~wsgi2asgi.lifespan.LifespanDriver`.
* With ``per_app_state`` the table of leaf states (``id(app) -> state``) rides in the
  composite's own state under ``APP_STATES``, which the server copies into every request; each
  composite hands a request the state of the leaf it reaches (:func:`with_app_state`):
  ``{**incoming state, **that app's state}``, a fresh copy, without the table.

Example::

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await run_lifespans(self.lifespan_apps(), scope, receive, send, per_app_state=True)
            return
        await self.app(with_app_state(scope, self.app), receive, send)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from wsgi2asgi.exceptions import LifespanFailed
from wsgi2asgi.lifespan import LifespanDriver
from wsgi2asgi.typing import ASGIApp, Receive, Scope, Send

__all__ = [
    "APP_STATES",
    "give_app_state",
    "lifespan_leaves",
    "run_lifespans",
    "with_app_state",
]

logger = logging.getLogger(__name__)

#: The key of the per-app state table in the lifespan ``state`` (ASGI: apps "should be
#: cooperative by properly naming their keys").
APP_STATES = "wsgi2asgi.app_states"


def with_app_state(scope: Scope, app: object) -> Scope:
    """Return the scope to call ``app`` with: its own lifespan state when it has one.

    ``state`` becomes a fresh ``{**incoming state, **app's state}`` (ASGI lifespan: each request
    gets a shallow copy) for an app :func:`run_lifespans` drove with ``per_app_state``; any
    other scope is returned as it is. Composites call it for each child they call.

    Example::

        await self.primary(with_app_state(scope, self.primary), receive, send)
    """
    state = scope.get("state")
    if not state or APP_STATES not in state or id(app) not in state[APP_STATES]:
        return scope
    return give_app_state(dict(scope), app)


def give_app_state(child: Scope, app: object) -> Scope:
    """Set ``child["state"]`` for ``app`` in place (``child`` is already a copy)."""
    state = child.get("state")
    if not state or APP_STATES not in state:
        return child
    own = state[APP_STATES].get(id(app))
    if own is not None:
        merged = {key: value for key, value in state.items() if key != APP_STATES}
        merged.update(own)
        child["state"] = merged
    return child


async def run_lifespans(
    apps: Iterable[tuple[str, ASGIApp]],
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    per_app_state: bool = False,
) -> None:
    """Act as the lifespan app of a composite: drive every distinct app beneath it, once.

    Composites among ``apps`` (objects with ``lifespan_apps()``) are walked through, at any
    depth, so an app mounted twice, at one depth or two, is started once. Startup runs in the
    given order, one app after the other; the first failure is answered with
    ``lifespan.startup.failed`` naming the app by its full mount path, after the apps already
    started are shut down in reverse order. Shutdown runs in reverse order; every app is shut
    down even if one fails, and the failures are reported together.

    Args:
        apps: ``(name, app)`` pairs, in startup order.
        scope, receive, send: the lifespan call the composite received.
        per_app_state: give every app its own ``state`` dict; the composite must then call
            each child through :func:`with_app_state`. Without it every app shares the
            composite's ``state`` dict.
    """
    state: dict[str, Any] = scope.get("state", {})
    leaves = lifespan_leaves(apps)
    drivers = [
        LifespanDriver(app, state={} if per_app_state else state, name=name) for name, app in leaves
    ]
    if per_app_state:
        state[APP_STATES] = {
            id(app): driver.state for (_, app), driver in zip(leaves, drivers, strict=True)
        }
    message = await receive()
    if message["type"] != "lifespan.startup":
        return
    started: list[LifespanDriver] = []
    try:
        for driver in drivers:
            await driver.startup()
            started.append(driver)
    except LifespanFailed as exc:
        await driver.aclose()
        failures = await _shutdown_all(started)
        logger.error("lifespan startup failed: %s", exc)
        text = "; ".join([str(exc), *failures])
        await send({"type": "lifespan.startup.failed", "message": text})
        return
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    failures = await _shutdown_all(started)
    if failures:
        await send({"type": "lifespan.shutdown.failed", "message": "; ".join(failures)})
    else:
        await send({"type": "lifespan.shutdown.complete"})


async def _shutdown_all(started: list[LifespanDriver]) -> list[str]:
    failures: list[str] = []
    for driver in reversed(started):
        try:
            await driver.shutdown()
        except LifespanFailed as exc:
            logger.error("lifespan shutdown failed: %s", exc)
            failures.append(str(exc))
    return failures


def lifespan_leaves(apps: Iterable[tuple[str, ASGIApp]]) -> list[tuple[str, ASGIApp]]:
    """The distinct apps below ``apps``, composites walked through, in depth-first order.

    Example: ``Router([Mount("/x", a), Mount("/y", Router([Mount("/z", a), Mount("/w", b)]))])``
    has the leaves ``[("/x", a), ("/y/w", b)]``.
    """
    seen: set[int] = set()
    leaves: list[tuple[str, ASGIApp]] = []

    def visit(name: str, app: ASGIApp) -> None:
        if id(app) in seen:  # mounted twice, or a cycle
            return
        seen.add(id(app))
        children = _lifespan_children(app)
        if children is None:
            leaves.append((name, app))
            return
        for child_name, child in children:
            visit(_join_names(name, child_name), child)

    for name, app in apps:
        visit(name, app)
    return leaves


def _lifespan_children(app: object) -> list[tuple[str, ASGIApp]] | None:
    method = getattr(app, "lifespan_apps", None)
    return method() if callable(method) else None


def _join_names(parent: str, child: str) -> str:
    """``/outer`` + ``/api`` is ``/outer/api``; ``/site`` + ``primary`` is ``/site primary``."""
    if not parent:
        return child
    if child.startswith("/"):
        return parent.rstrip("/") + child if child != "/" else parent
    return f"{parent} {child}"
