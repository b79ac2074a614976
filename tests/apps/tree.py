"""A composite app: Flask and Starlette mounted by our router, with a fallback and a raw app."""

from __future__ import annotations

from starlette.responses import PlainTextResponse

from adapters.flask import flask_app
from tests.apps import flask_site, starlette_site
from wsgi2asgi.fallback import Fallback
from wsgi2asgi.routing import Mount, Router
from wsgi2asgi.typing import Receive, Scope, Send


async def raw(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("raw")(scope, receive, send)


def create_app() -> Router:
    return Router(
        [
            Mount("/legacy", flask_app(flask_site.create_app())),
            Mount("/api", Fallback(starlette_site.app, raw)),
        ]
    )


app = create_app()
