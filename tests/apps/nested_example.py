"""The example composite mounted two levels deep, each mount recording its lifespan events.

Served by the tests as ``tests.apps.nested_example:application``: the whole site then lives under
``/outer/inner``, and every lifespan event each mount sees is appended as a line ``lifespan
<event> <name>`` to the file ``$NESTED_LIFESPAN_LOG`` names (when set), so a test can check that
each app was started and stopped exactly once, in the documented order. Each line is one
``write`` to a file opened for appending, made before the message is passed on: nothing else
writes there, and no line can be split (not so on stdout, where ``print`` makes two writes
and log lines share the pipe). Django runs here through its WSGI handler by default (the
shipped example uses its ASGI handler), or its ASGI handler with
``NESTED_DJANGO_INTERFACE=asgi``, so the same tests cover both ways in under a prefix.
"""

from __future__ import annotations

import os

from examples.flask_in_django.asgi import create_application
from wsgi2asgi.routing import Mount, Router
from wsgi2asgi.typing import ASGIApp, Message, Receive, Scope, Send


class Recorder:
    """Pass everything through to ``app``; log each lifespan message it receives or sends."""

    def __init__(self, name: str, app: ASGIApp) -> None:
        self.name = name
        self.app = app

    def record(self, message: Message) -> None:
        """Append ``lifespan <type> <name>`` to ``$NESTED_LIFESPAN_LOG`` in one write."""
        path = os.environ.get("NESTED_LIFESPAN_LOG")
        if path is None:
            return
        line = f"lifespan {message['type']} {self.name}\n".encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def recorded_receive() -> Message:
            message = await receive()
            self.record(message)
            return message

        async def recorded_send(message: Message) -> None:
            self.record(message)
            await send(message)

        await self.app(scope, recorded_receive, recorded_send)


def create_nested() -> Router:
    interface = os.environ.get("NESTED_DJANGO_INTERFACE", "wsgi")
    assert interface in ("asgi", "wsgi")
    site = create_application(django_interface=interface)  # type: ignore[arg-type]
    mounts = [route for route in site.declared if isinstance(route, Mount)]
    recorded = Router([Mount(m.prefix, Recorder(m.name, m.app), name=m.name) for m in mounts])
    return Router(
        [Mount("/outer", Router([Mount("/inner", recorded, name="inner")]), name="outer")]
    )


application = create_nested()
