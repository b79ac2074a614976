"""A composite mid-migration, for the dashboard: Flask (sync) behind a Shadow, Starlette (async,
one view that blocks the loop), and a Split between a migrated and a legacy app.

``create_app()`` builds a fresh tree (each test its own counters); ``app`` is one for
``wsgi2asgi serve tests.apps.dashboard_site:app``. ``served()`` adds the dashboard at
``/_wsgi2asgi``; ``snapshot()`` and ``row()`` read its JSON.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from adapters.flask import flask_app
from adapters.starlette import starlette_app
from wsgi2asgi.dashboard import WithDashboard
from wsgi2asgi.routing import Mount, Router
from wsgi2asgi.shadow import Shadow
from wsgi2asgi.split import Split

if TYPE_CHECKING:
    from wsgi2asgi.testing import TestClient

#: The dashboard's token in the tests, and the address of a client on this machine.
TOKEN = "a-long-enough-dashboard-token"
LOCAL = "http://127.0.0.1:8000"

#: How long ``/api/block`` holds the event loop (a blocking call in an async view).
BLOCK_SECONDS = 0.15


def legacy_flask() -> Flask:
    app = Flask(__name__, static_folder=None)

    @app.get("/")
    def index() -> str:
        return "legacy index"

    @app.get("/users/<int:id>")
    def user(id: int) -> str:
        return f"user {id}"

    @app.get("/hello")
    def hello() -> str:
        return "hello\nworld\n"

    @app.get("/fail")
    def fail() -> tuple[str, int]:
        return "broken", 500

    return app


def migrated_starlette() -> Starlette:
    async def hello(request: Request) -> Response:
        return PlainTextResponse("hello\nplanet\n", media_type="text/html")

    return Starlette(routes=[Route("/hello", hello)])


def api_starlette() -> Starlette:
    async def item(request: Request) -> Response:
        return JSONResponse({"id": request.path_params["id"]})

    def legacy_report(request: Request) -> Response:
        return PlainTextResponse("a sync Starlette view")

    async def block(request: Request) -> Response:
        time.sleep(BLOCK_SECONDS)  # the mistake the blocking-call detector finds
        return PlainTextResponse("blocked the loop")

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    routes = [
        Route("/items/{id:int}", item),
        Route("/report", legacy_report),
        Route("/block", block),
        WebSocketRoute("/ws", echo),
    ]
    return Starlette(routes=routes)


def canary() -> Split:
    async def new(request: Request) -> Response:
        return PlainTextResponse("new checkout")

    async def old(request: Request) -> Response:
        return PlainTextResponse("old checkout")

    migrated = starlette_app(Starlette(routes=[Route("/checkout", new)]))
    legacy = starlette_app(Starlette(routes=[Route("/checkout", old)]))
    return Split(migrated, legacy, percent=50, key="header:x-user", max_error_rate=None)


def create_app() -> Router:
    shadow = Shadow(
        flask_app(legacy_flask()), starlette_app(migrated_starlette()), paths=["/hello"]
    )
    return Router(
        [
            Mount("/legacy", shadow),
            Mount("/api", starlette_app(api_starlette())),
            Mount("/canary", canary()),
        ]
    )


app = create_app()


def served() -> tuple[WithDashboard, Any]:
    """The example composite with its dashboard at ``/_wsgi2asgi``, and the bare composite."""
    app = create_app()
    return WithDashboard(app, "/_wsgi2asgi", token=TOKEN), app


def snapshot(client: TestClient) -> dict[str, Any]:
    """The dashboard's JSON snapshot, read through ``client``."""
    response = client.get("/_wsgi2asgi/api/snapshot")
    assert response.status_code == 200, response.text
    return dict(response.json())


def row(snap: dict[str, Any], path: str) -> dict[str, Any]:
    """The row of the route table whose template is ``path``."""
    return next(r for r in snap["routes"] if r["path"] == path)
