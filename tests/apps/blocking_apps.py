"""Apps that block the event loop (and one that does not), for the blocking detector tests."""

from __future__ import annotations

import asyncio
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from wsgi2asgi.typing import Receive, Scope, Send


async def slow_report(request: Request) -> Response:
    time.sleep(0.3)  # the blocking call the detector must point at
    return PlainTextResponse("done")


async def polite(request: Request) -> Response:
    await asyncio.sleep(0.3)
    return PlainTextResponse("done")


starlette_app = Starlette(routes=[Route("/slow", slow_report), Route("/polite", polite)])


async def plain_blocking_app(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    time.sleep(0.3)  # plain ASGI: blocks the loop too
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})
