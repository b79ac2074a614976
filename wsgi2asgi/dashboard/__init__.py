"""The migration dashboard: routes, live traffic, Shadows, Splits and blocking calls on one page.

``wsgi2asgi serve APP --dashboard /_wsgi2asgi`` serves it (off by default; this machine only
unless ``--dashboard-token``). From Python it is an ASGI app to mount, plus the traffic
counters to wrap the served app with (``docs/dashboard.md``).

Example::

    from wsgi2asgi.dashboard import WithDashboard

    application = WithDashboard(application, "/_wsgi2asgi")
"""

from __future__ import annotations

from wsgi2asgi.dashboard.access import AccessRule
from wsgi2asgi.dashboard.app import Dashboard, WithDashboard, server_wrapper
from wsgi2asgi.dashboard.traffic import RouteMatcher, Traffic, TrafficCounter

__all__ = [
    "AccessRule",
    "Dashboard",
    "RouteMatcher",
    "Traffic",
    "TrafficCounter",
    "WithDashboard",
    "server_wrapper",
]
