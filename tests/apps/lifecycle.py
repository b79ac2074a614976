"""Apps for the subprocess tests of the server's life cycle (served by ``wsgi2asgi serve``)."""

from __future__ import annotations

from typing import Any


async def held(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Lifespan that prints its events; each request prints its path, then is answered once
    its whole body is in (a test holds a request in flight by holding back its body)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            print(message["type"], flush=True)
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    print("request", scope["path"], flush=True)
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done " + scope["path"].encode()})


async def broken_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Lifespan startup fails with a message."""
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "database unreachable"})


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A WSGI app, for --mount."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"wsgi {environ['SCRIPT_NAME']} {environ['PATH_INFO']}".encode()]


class ASGI2:
    """An ASGI 2 (double-callable) app."""

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        if self.scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"asgi2 " + self.scope["path"].encode()})


async def whoami(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer with the worker's process id."""
    if scope["type"] != "http":
        return
    import os

    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})


def wsgi_whoami(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A WSGI app answering with its process id and ``wsgi.multiprocess``."""
    import os

    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{os.getpid()} {environ['wsgi.multiprocess']}".encode()]
