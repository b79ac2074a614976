"""A Starlette app with sync, async, class-based, websocket and mounted routes."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, Router, WebSocketRoute
from starlette.websockets import WebSocket


async def home(request: Request) -> Response:
    return PlainTextResponse("home")


def legacy(request: Request) -> Response:
    return PlainTextResponse("legacy")


class Things(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        return PlainTextResponse("things")

    async def post(self, request: Request) -> Response:
        return PlainTextResponse("made")


async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.close()


async def status(request: Request) -> Response:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[
        Route("/", home, name="home"),
        Route("/legacy", legacy, methods=["GET", "PUT"]),
        Route("/things", Things, name="things"),
        WebSocketRoute("/ws", chat, name="chat"),
        Mount("/v1", routes=[Route("/status", status, name="status")]),
        Mount("/inner", app=Router(routes=[Route("/deep", status, name="deep")])),
    ]
)
