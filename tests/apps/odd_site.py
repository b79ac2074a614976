"""A composite of apps the inventory cannot look inside, as real projects have them (#12.20).

A bottle app (pypiserver is one: bottle's ``Route.app`` points back at its ``Bottle``), apps with
no routes, an app whose route table raises, a wrapper whose ``.app`` is itself, and a Fallback.
"""

from __future__ import annotations

from typing import Any

import bottle
from flask import Flask
from starlette.applications import Starlette

from adapters.flask import flask_app
from tests.apps import flask_site, starlette_site
from wsgi2asgi.fallback import Fallback
from wsgi2asgi.routing import Mount, Router
from wsgi2asgi.typing import Receive, Scope, Send
from wsgi2asgi.wsgi import wsgi_to_asgi


def make_bottle() -> bottle.Bottle:
    app = bottle.Bottle()

    @app.route("/simple/<name>")
    def simple(name: str) -> str:
        return f"package {name}"

    return app


class BrokenTable:
    """An ASGI app whose route table fails when read (a lazy table needing a database)."""

    @property
    def routes(self) -> list[Any]:
        raise RuntimeError("route table needs the database")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class SelfWrapping:
    """A middleware whose ``.app`` is itself: a cycle of length one."""

    def __init__(self) -> None:
        self.app = self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


def create_app() -> Router:
    return Router(
        [
            Mount("/pypi", wsgi_to_asgi(make_bottle())),
            Mount("/legacy", flask_app(flask_site.create_app())),
            Mount("/empty-starlette", Starlette()),
            Mount("/empty-flask", flask_app(Flask("empty", static_folder=None))),
            Mount("/broken", BrokenTable()),
            Mount("/loop", SelfWrapping()),
            Mount("/api", Fallback(starlette_site.app, wsgi_to_asgi(make_bottle()))),
        ]
    )


app = create_app()
not_an_app = {"routes": []}
