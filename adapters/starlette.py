"""Mount a Starlette app anywhere, including inside another Starlette app.

Starlette is native ASGI and reads ``root_path`` and ``path`` the way our router writes them,
and its lifespan runs through the router's fan-out, so under our ``Mount`` it needs nothing:
the mount already removes the routing keys an outer Starlette app left in the scope
(:data:`wsgi2asgi.prefixes.FOREIGN_KEYS`). Starlette resolves ``request.url_for`` names with
``scope["router"]`` and builds the absolute URL on ``scope["app_root_path"]``; both are set
once, by the *outermost* Starlette app, and inherited below, so a Starlette app mounted below
another Starlette app by anything that does not remove them reverses its names in the outer
app's namespace. This adapter removes them at the app's own door (no inherited ``router``,
``app_root_path``, ``route``, ``endpoint`` or ``path_remaining``), so the app believes it runs
alone: its names resolve in its own routes, and its URLs carry its full mount prefix. Use it
when a Starlette app sits directly under a Starlette ``Mount`` or another framework's router.

Example::

    from adapters.starlette import starlette_app

    outer = Starlette(routes=[Mount("/api", app=starlette_app(api))])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wsgi2asgi.prefixes import FOREIGN_KEYS
from wsgi2asgi.routing import reverse

if TYPE_CHECKING:
    from wsgi2asgi.typing import ASGIApp, Receive, Scope, Send

__all__ = ["StarletteApp", "starlette_app"]


class StarletteApp:
    """An ASGI app that gives a Starlette app a scope rooted at its own mount point.

    Args:
        app: the Starlette application (or any Starlette-based ASGI app, e.g. FastAPI).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            # Starlette's base_url falls back to root_path without app_root_path: the full prefix.
            scope = {key: value for key, value in scope.items() if key not in FOREIGN_KEYS}
        await self.app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        """Reverse ``name`` in the wrapped app, so outer Starlette apps can still reach it."""
        return reverse(self.app, "", name, path_params)


def starlette_app(app: ASGIApp) -> ASGIApp:
    """Return ``app`` wrapped so that it builds URLs under wherever it is mounted.

    Args:
        app: a Starlette (or FastAPI) application.

    Returns:
        An ASGI 3 application; lifespan passes through untouched.
    """
    return StarletteApp(app)
