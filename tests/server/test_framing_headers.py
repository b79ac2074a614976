"""``--header NAME:VALUE`` and ``--date-header/--no-date-header``: what the server adds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from wsgi2asgi.server.framing import ResponseFraming, ServerHeaders

Serve = Callable[..., Any]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Sets Cache-Control itself on /own; nothing on other paths."""
    if scope["type"] != "http":
        return
    headers = [(b"cache-control", b"private")] if scope["path"] == "/own" else []
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


def test_framing_adds_the_extra_headers_unless_the_app_set_them() -> None:
    added = ServerHeaders(extra=((b"x-frame-options", b"DENY"), (b"cache-control", b"no-store")))
    head = ResponseFraming("GET", "1.1", True, added).head(200, [(b"Cache-Control", b"max-age=9")])
    assert b"x-frame-options: DENY\r\n" in head
    assert head.lower().count(b"cache-control") == 1 and b"max-age=9" in head
    assert b"date: " in head and b"server: wsgi2asgi" in head


def test_framing_without_date_and_server() -> None:
    head = ResponseFraming("GET", "1.1", True, ServerHeaders(server=None, date=False)).head(200, [])
    assert b"date:" not in head.lower() and b"server:" not in head.lower()


def test_extra_headers_on_every_response(serve_one_loop: Serve) -> None:
    headers = (("X-Frame-Options", "DENY"), ("Cache-Control", "no-store"))
    running = serve_one_loop(app, headers=headers)
    with httpx.Client(base_url=running.url) as client:
        response = client.get("/")
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert "date" in response.headers
        own = client.get("/own")
        assert own.headers.get_list("cache-control") == ["private"]  # the app's wins
        assert own.headers["x-frame-options"] == "DENY"


def test_no_date_header(serve_one_loop: Serve) -> None:
    running = serve_one_loop(app, date_header=False)
    response = httpx.get(running.url + "/")
    assert response.text == "ok" and "date" not in response.headers
    assert response.headers["server"] == "wsgi2asgi"
