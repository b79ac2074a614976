"""The server's lifespan with apps that do not take part in it the usual way (#12.3, #12.4)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
from starlette.responses import PlainTextResponse

from tests.servers import Running
from wsgi2asgi.routing import Mount, Router
from wsgi2asgi.typing import Receive, Scope, Send


async def returns_after_startup(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        return  # no shutdown to wait for
    await PlainTextResponse("quick")(scope, receive, send)


def test_a_bare_response_is_served_without_lifespan(
    serve: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="wsgi2asgi.lifespan"):
        running = serve(PlainTextResponse("hello"))
        assert running.status == []  # not exit 3: the server started
        assert httpx.get(running.url, timeout=10).text == "hello"
        assert running.stop() == 0
    unsupported = [r for r in caplog.records if "unsupported" in r.getMessage()]
    assert len(unsupported) == 1


def test_a_bare_response_with_lifespan_on_exits_3(serve: Callable[..., Running]) -> None:
    running = serve(PlainTextResponse("hello"), lifespan="on")
    running.thread.join(10)
    assert running.status == [3]


def test_a_router_mounting_a_bare_response_starts(serve: Callable[..., Running]) -> None:
    bare = PlainTextResponse("bare")
    running = serve(Router([Mount("/bare", bare), Mount("/quick", returns_after_startup)]))
    assert running.status == []
    with httpx.Client(base_url=running.url, timeout=10) as client:
        assert client.get("/bare/x").text == "bare"
        assert client.get("/quick/y").text == "quick"
    assert running.stop() == 0


def test_an_app_returning_after_startup_shuts_down_quietly(
    serve: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        running = serve(returns_after_startup, lifespan="on")
        assert httpx.get(running.url, timeout=10).text == "quick"
        assert running.stop() == 0
    assert [r.getMessage() for r in caplog.records if "failed" in r.getMessage()] == []
