"""ASGI and WSGI types used across the package.

Two levels, as the ASGI ecosystem does it:

* loose aliases (``Scope``, ``Message``, ``Receive``, ``Send``, ``ASGIApp``) for code that only
  passes scopes and messages through, such as routers and middleware (the shape of
  ``starlette.types``);
* ``TypedDict`` definitions for the messages this package builds or reads field by field, such
  as the HTTP scope read by :mod:`wsgi2asgi.environ` (the shape of ``asgiref.typing``).

Example::

    from wsgi2asgi.typing import Receive, Scope, Send

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from types import TracebackType
from typing import Any, Literal, NotRequired, TypedDict

__all__ = [
    "ASGIApp",
    "ASGIVersions",
    "Environ",
    "ExcInfo",
    "HTTPScope",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "StartResponse",
    "WSGIApp",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# PEP 3333: "environ ... must be a builtin Python dictionary".
Environ = dict[str, Any]
#: PEP 3333 ``start_response``'s ``exc_info``: "a Python sys.exc_info() tuple".
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class ASGIVersions(TypedDict):
    spec_version: str
    version: Literal["2.0", "3.0"]


class HTTPScope(TypedDict):
    """The ``http`` connection scope, per the ASGI HTTP & WebSocket spec (``www.rst``).

    Keys the spec marks optional are ``NotRequired`` here, so code that reads them must use
    ``.get()`` with the spec's default.
    """

    type: Literal["http"]
    asgi: ASGIVersions
    http_version: str
    method: str
    scheme: NotRequired[str]
    path: str
    raw_path: NotRequired[bytes | None]
    query_string: bytes
    root_path: NotRequired[str]
    headers: Iterable[tuple[bytes, bytes]]
    client: NotRequired[tuple[str, int] | None]
    server: NotRequired[tuple[str, int | None] | None]
    state: NotRequired[dict[str, Any]]
    extensions: NotRequired[dict[str, dict[object, object]] | None]
