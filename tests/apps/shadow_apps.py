"""A primary (Starlette) and candidates (Flask through ``wsgi_to_asgi``, Starlette) to compare."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from flask import Flask, Response
from flask import request as flask_request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route

from wsgi2asgi.wsgi import wsgi_to_asgi


def make_primary(events: list[str] | None = None) -> Starlette:
    async def hello(request: Request) -> StarletteResponse:
        return PlainTextResponse("hello\nworld\n")

    async def item(request: Request) -> StarletteResponse:
        return JSONResponse({"id": request.path_params["id"], "at": time.time()})

    async def echo(request: Request) -> StarletteResponse:
        return PlainTextResponse(await request.body())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if events is not None:
            events.append("primary startup")
        yield
        if events is not None:
            events.append("primary shutdown")

    routes = [
        Route("/hello", hello),
        Route("/items/{id:int}", item),
        Route("/echo", echo, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def make_flask_candidate(greeting: str = "hello") -> Flask:
    app = Flask(__name__)

    @app.get("/hello")
    def hello() -> Response:
        return Response(f"{greeting}\nworld\n", mimetype="text/plain")

    @app.get("/items/<int:id>")
    def item(id: int) -> Response:
        body = json.dumps({"id": id, "at": time.time()}, separators=(",", ":"))
        return Response(body, mimetype="application/json")  # Starlette's key order

    @app.route("/echo", methods=["GET", "POST"])
    def echo() -> Response:
        return Response(flask_request.get_data(), mimetype="text/plain")

    return app


def flask_candidate(greeting: str = "hello") -> object:
    return wsgi_to_asgi(make_flask_candidate(greeting))


class GatedCandidate:
    """A candidate that waits for ``gate`` before answering, and counts its calls."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.called = asyncio.Event()
        self.calls: list[str] = []

    async def __call__(self, scope: dict[str, object], receive: object, send: object) -> None:
        self.calls.append(str(scope["path"]))
        self.called.set()
        await self.gate.wait()
        await make_primary()(scope, receive, send)  # type: ignore[arg-type]
