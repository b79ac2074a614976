"""The composite: one ASGI app made of a Django site, a legacy Flask app and a Starlette API.

Serve it with our server::

    wsgi2asgi serve examples.flask_in_django.asgi:application

=========  ==================================  =====================================
Prefix     App                                 Interface
=========  ==================================  =====================================
``/flask`` ``migrated`` in front of ``legacy``  Starlette, falling back to Flask (WSGI)
``/api``   the new Starlette API (``api``)     ASGI, WebSocket at ``/api/ws``
``/``      the Django site (``djsite``/notes)  per view: sync WSGI, async ASGI
=========  ==================================  =====================================
"""

from __future__ import annotations

import os
from typing import Literal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.flask_in_django.djsite.settings")

from adapters.django import django_app  # noqa: E402
from adapters.flask import flask_app  # noqa: E402
from adapters.starlette import starlette_app  # noqa: E402
from examples.flask_in_django import api, legacy, migrated  # noqa: E402
from wsgi2asgi.fallback import Fallback  # noqa: E402
from wsgi2asgi.routing import Mount, Router  # noqa: E402


def create_application(django_interface: Literal["auto", "asgi", "wsgi"] = "auto") -> Router:
    """Build the composite; lifespan starts the mounts in this order and stops them in reverse.

    The legacy Flask app sits behind the routes already migrated to Starlette: a request goes
    to ``migrated`` first and falls back to Flask where ``migrated`` answers 404.

    Args:
        django_interface: ``django_app``'s ``interface``: ``"auto"`` (sync views through
            Django's WSGI handler, async views through its ASGI handler), ``"asgi"`` or
            ``"wsgi"``.
    """
    flask = Fallback(starlette_app(migrated.app), flask_app(legacy.app))
    django = django_app(interface=django_interface, migrate=True, static=True)
    return Router(
        [
            Mount("/flask", flask, name="flask"),
            Mount("/api", starlette_app(api.app), name="api"),
            Mount("", django, name="django"),
        ]
    )


application = create_application()
