"""The trivial apps every server is measured with (``benchmarks/server.py``)."""

from __future__ import annotations

from typing import Any

BODY = b"Hello, world!"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI hello world (answers lifespan too)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].replace("lifespan.", "")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """WSGI hello world."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [BODY]


def _a2wsgi() -> Any:
    from a2wsgi import WSGIMiddleware

    return WSGIMiddleware(wsgi)


#: The WSGI app wrapped by a2wsgi, for uvicorn (what people pick to run WSGI under uvicorn).
a2wsgi_wsgi = _a2wsgi()


async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """For ``benchmarks/hostile.py``: HTTP answers after 30 s; WebSocket ``/sleep`` accepts and
    never receives, any other path receives and discards."""
    import asyncio

    if scope["type"] == "lifespan":
        await asgi(scope, receive, send)
    elif scope["type"] == "http":
        await asyncio.sleep(30)
        await asgi(scope, receive, send)
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        if scope["path"] == "/sleep":
            await asyncio.sleep(3600)
        while (await receive())["type"] != "websocket.disconnect":
            pass


#: Worker threads of the WSGI pool in ``benchmarks/hostile.py``'s never-read flood (ours and
#: a2wsgi's alike).
LARGE_THREADS = 4


def large(environ: dict[str, Any], start_response: Any) -> Any:
    """For ``benchmarks/hostile.py``: 64 MiB to ``GET /large``, hello world otherwise."""
    if environ["PATH_INFO"] != "/large":
        return wsgi(environ, start_response)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(64 << 20))])
    chunk = b"x" * 65536
    return (chunk for _ in range(1024))


def _a2wsgi_large() -> Any:
    from a2wsgi import WSGIMiddleware

    return WSGIMiddleware(large, workers=LARGE_THREADS)


#: ``large`` under a2wsgi with the same number of threads, for uvicorn.
a2wsgi_large = _a2wsgi_large()
