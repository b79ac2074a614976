"""``wsgi2asgi.interface``: which kind of app a callable is (WSGI, ASGI 3, ASGI 2), the same
answer for ``serve`` and for ``asgi_to_wsgi``."""

from __future__ import annotations

from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from flask import Flask
from starlette.applications import Starlette

from tests.apps.interfaces import INTERFACES
from wsgi2asgi.asgi import asgi_to_wsgi
from wsgi2asgi.interface import detect_interface


def wsgi_get(app: Any, path: str) -> tuple[str, str]:
    environ: dict[str, Any] = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    seen: list[str] = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: seen.append(status)))
    return seen[0], body.decode()


def expected_body(app: Any, kind: str) -> str:
    framework = isinstance(app, Flask | Starlette)
    return "404" if framework else f"{kind} /x"


@pytest.mark.parametrize(("app", "kind"), INTERFACES)
def test_interface_detection(app: Any, kind: str) -> None:
    assert detect_interface(app) == kind


@pytest.mark.parametrize(("app", "kind"), INTERFACES)
def test_asgi_to_wsgi_agrees_with_serve(app: Any, kind: str) -> None:
    if kind == "wsgi":
        with pytest.raises(TypeError, match="a WSGI app"):
            asgi_to_wsgi(app)
        return
    with asgi_to_wsgi(app, lifespan="off") as adapter:
        status, body = wsgi_get(adapter, "/x")
    assert (body if status.startswith("200") else status[:3]) == expected_body(app, kind)
