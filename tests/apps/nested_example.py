"""The example composite mounted two levels deep, each mount recording its lifespan events.

Served by the tests as ``tests.apps.nested_example:application``: the whole site then lives under
``/outer/inner``, and every lifespan event each mount sees is printed as ``lifespan <event>
<name>`` on stdout, so a test can check that each app was started and stopped exactly once, in
the documented order. Django runs here through its WSGI handler by default (the shipped example
uses its ASGI handler), or its ASGI handler with ``NESTED_DJANGO_INTERFACE=asgi``, so the same
tests cover both ways in under a prefix.
"""

from __future__ import annotations

import os

from examples.flask_in_django.asgi import create_application
from wsgi2asgi.routing import Mount, Router
from wsgi2asgi.typing import ASGIApp, Message, Receive, Scope, Send


class Recorder:
    """Pass everything through to ``app``; print each lifespan message it receives or sends."""

    def __init__(self, name: str, app: ASGIApp) -> None:
        self.name = name
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def recorded_receive() -> Message:
            message = await receive()
            print(f"lifespan {message['type']} {self.name}", flush=True)
            return message

        async def recorded_send(message: Message) -> None:
            print(f"lifespan {message['type']} {self.name}", flush=True)
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
