"""The composite the ``wsgi2asgi.testing`` tests use, the kind a team deploys: a Starlette API, a
Flask app and a Starlette site mounted by our router, each with its own lifespan and state.

Example::

    from tests.apps.testing_site import site
    with TestClient(site(log)) as client:
        assert client.get("/api/").text == "pool of api"
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from flask import Flask, session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from adapters.flask import flask_app
from wsgi2asgi.routing import Mount, Router


def api(log: list[str], label: str = "api") -> Starlette:
    """A Starlette app: lifespan logs and stores ``pool``; HTTP, streaming and WebSockets."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
        log.append(f"start {label}")
        yield {"pool": f"pool of {label}"}
        log.append(f"stop {label}")

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.state.pool)

    async def where(request: Request) -> JSONResponse:
        scope = request.scope
        return JSONResponse(
            {
                "path": scope["path"],
                "root_path": scope["root_path"],
                "raw_path": scope["raw_path"].decode(),
                "url": str(request.url_for("where")),
                "cookies": request.cookies,
            }
        )

    async def login(request: Request) -> PlainTextResponse:
        response = PlainTextResponse("in")
        response.set_cookie("user", "ada", path=request.scope["root_path"] or "/")
        return response

    async def boom(request: Request) -> Response:
        raise RuntimeError("the view broke")

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol=(websocket.scope["subprotocols"] or [None])[0])
        user = websocket.cookies.get("user", "anonymous")
        async for text in websocket.iter_text():
            if text == "bye":
                await websocket.close(4001, "bye to you")
                return
            await websocket.send_text(f"{label} {user} {text}".upper())
        log.append("ws disconnected")

    async def refuse(websocket: WebSocket) -> None:
        await websocket.close()

    return Starlette(
        routes=[
            Route("/", home),
            Route("/where", where, name="where"),
            Route("/login", login),
            Route("/boom", boom),
            WebSocketRoute("/ws", ws),
            WebSocketRoute("/refuse", refuse),
        ],
        lifespan=lifespan,
    )


def legacy_flask() -> Flask:
    app = Flask("legacy")
    app.secret_key = "test-only"

    @app.get("/visits")
    def visits() -> str:
        session["visits"] = session.get("visits", 0) + 1
        return str(session["visits"])

    return app


def site(log: list[str]) -> Router:
    return Router(
        [
            Mount("/api", api(log, "api")),
            Mount("/flask", flask_app(legacy_flask())),
            Mount("", api(log, "root")),
        ]
    )
