"""Apps of every interface ``serve`` and ``asgi_to_wsgi`` tell apart (``wsgi2asgi.interface``):
WSGI functions and classes, ASGI 3 callables, ASGI 2 factories, and real Flask and Starlette
apps; ``INTERFACES`` pairs each with the interface it must be detected as.

Example::

    from tests.apps.interfaces import INTERFACES
    for app, kind in INTERFACES:
        assert detect_interface(app) == kind
"""

from __future__ import annotations

import functools
from typing import Any

from flask import Flask
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"wsgi {environ['PATH_INFO']}".encode()]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await PlainTextResponse(f"asgi3 {scope['path']}")(scope, receive, send)


class ASGI2:
    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        await PlainTextResponse(f"asgi2 {self.scope['path']}")(self.scope, receive, send)


class CallableASGI:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await asgi_app(scope, receive, send)


def asgi2_factory(scope: dict[str, Any]) -> Any:
    return ASGI2(scope).__call__


class ASGI2Factory:
    def __call__(self, scope: dict[str, Any]) -> Any:
        return ASGI2(scope)


class MarkedASGI2:
    """asgiref's marker decides where the signature cannot."""

    _asgi_double_callable = True

    def __call__(self, *args: Any) -> Any:
        return ASGI2(*args)


def asgi3_sync_function(scope: Any, receive: Any, send: Any) -> Any:
    return asgi_app(scope, receive, send)


class WSGIClass:
    """PEP 3333: "the application object ... could be a class": called, it is the iterable."""

    def __init__(self, environ: dict[str, Any], start_response: Any) -> None:
        self.body = wsgi_app(environ, start_response)

    def __iter__(self) -> Any:
        return iter(self.body)


#: One table for both layers: what `serve` loads, and what asgi_to_wsgi takes (#12.6). The
#: framework apps answer 404 to /x; ours answer "KIND /x".
INTERFACES: list[tuple[Any, str]] = [
    (wsgi_app, "wsgi"),
    (WSGIClass, "wsgi"),
    (Flask("flask_app"), "wsgi"),
    (asgi_app, "asgi3"),
    (CallableASGI(), "asgi3"),
    (asgi3_sync_function, "asgi3"),
    (functools.partial(asgi_app), "asgi3"),
    (Starlette(), "asgi3"),
    (ASGI2, "asgi2"),
    (asgi2_factory, "asgi2"),
    (ASGI2Factory(), "asgi2"),
    (MarkedASGI2(), "asgi2"),
]
