"""A real Starlette app exercising what ``asgi_to_wsgi`` must get right: lifespan state,
``url_for`` under a prefix, bodies, multipart forms, streamed responses, cookies, errors.

Example::

    from tests.apps.starlette_app import make_starlette
    application = asgi_to_wsgi(make_starlette([]))
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route


def make_starlette(events: list[str]) -> Starlette:
    """Build the app (a new one per call); its lifespan appends ``startup``/``shutdown`` to
    ``events`` and gives each request the state ``{"db": "connected"}``.

    ``/ticks?key=K`` streams one event, then the second once ``/release?key=K`` is asked for:
    a client can only ask once it read the first, proof that the response is streamed.
    """
    releases: dict[str, asyncio.Event] = {}

    async def hello(request: Request) -> Response:
        return JSONResponse(
            {
                "path": request.url.path,
                "root": request.scope["root_path"],
                "url": str(request.url_for("hello")),
                "db": request.state.db,
                "client": request.client.host if request.client else None,
            }
        )

    async def echo(request: Request) -> Response:
        body = await request.body()
        return PlainTextResponse(f"{len(body)}:{body[:10].decode('latin-1')}")

    async def form(request: Request) -> Response:
        async with request.form() as data:
            upload = data["file"]
            content = await upload.read()  # type: ignore[union-attr]
            return JSONResponse({"name": data["name"], "size": len(content)})

    async def stream(request: Request) -> Response:
        count = int(request.query_params.get("n", "5"))

        async def lines() -> AsyncIterator[bytes]:
            for i in range(count):
                yield f"line {i}\n".encode()

        return StreamingResponse(lines(), media_type="text/plain")

    async def ticks(request: Request) -> Response:
        release = releases.setdefault(request.query_params["key"], asyncio.Event())

        async def events() -> AsyncIterator[bytes]:
            yield b"data: first\n\n"
            # The client can only ask for /release once it read the first event: proof that
            # the response is streamed, not buffered.
            await asyncio.wait_for(release.wait(), 20)
            yield b"data: second\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def release(request: Request) -> Response:
        releases.setdefault(request.query_params["key"], asyncio.Event()).set()
        return PlainTextResponse("released")

    async def cookies(request: Request) -> Response:
        response = RedirectResponse("/hello", status_code=303)
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    async def whoami(request: Request) -> Response:
        return JSONResponse(dict(request.cookies))

    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"db": "connected"}
        events.append("shutdown")

    return Starlette(
        routes=[
            Route("/hello", hello, name="hello"),
            Route("/echo", echo, methods=["POST", "PUT"]),
            Route("/form", form, methods=["POST"]),
            Route("/stream", stream),
            Route("/ticks", ticks),
            Route("/release", release),
            Route("/cookies", cookies),
            Route("/whoami", whoami),
            Route("/boom", boom),
        ],
        lifespan=lifespan,
    )
