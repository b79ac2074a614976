"""``wsgi2asgi.testing.compare``: ``assert_same_responses`` replays requests against two apps."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from wsgi2asgi.shadow import Shadow
from wsgi2asgi.testing import AsyncTestClient, assert_same_responses


def shop(version: str, *, price: str = "10", kind: str = "application/json") -> Starlette:
    async def item(request: Request) -> Response:
        body = f'{{"id": {request.path_params["id"]}, "price": {price}}}\n'
        return Response(body, media_type=kind)

    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(await request.body())

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"ok from {version}")

    return Starlette(
        routes=[
            Route("/items/{id:int}", item),
            Route("/echo", echo, methods=["POST"]),
            Route("/health", health),
        ]
    )


def test_assert_same_responses_passes_when_the_apps_agree() -> None:
    requests: list[Any] = [
        "GET /items/1",
        ("POST", "/echo", b"same body"),
        httpx.Request("GET", "http://testserver/items/2"),
        {"method": "GET", "path": "/health"},
    ]
    assert_same_responses(shop("v1"), shop("v2"), requests, ignore=[r"v\d"])


def test_assert_same_responses_fails_with_a_readable_diff() -> None:
    migrated = shop("v2", price="12", kind="text/plain")
    with pytest.raises(AssertionError) as failed:
        assert_same_responses(shop("v1"), migrated, ["GET /items/1", "GET /nowhere", "/health"])
    message = str(failed.value)
    assert message.startswith("2 of 3 requests answered differently (legacy != migrated):")
    assert "GET /items/1:" in message
    assert "content-type: ['application/json'] != ['text/plain; charset=utf-8']" in message
    assert '-{"id": 1, "price": 10}' in message
    assert '+{"id": 1, "price": 12}' in message
    assert "GET /health:" in message  # "ok from v1" != "ok from v2"
    assert "GET /nowhere" not in message  # both 404


async def test_assert_same_responses_replays_a_shadow_report() -> None:
    legacy, migrated = shop("v1"), shop("v2")  # /health differs, /items/7 does not
    shadow = Shadow(legacy, migrated)
    async with AsyncTestClient(shadow) as client:
        for path in ("/health", "/items/7"):
            await client.get(path)
        await shadow.drain()
    report = shadow.report()
    assert [d["route"] for d in report["differences"]] == ["GET /health"]
    assert_same_responses(legacy, shop("v1"), report)  # the fixed candidate agrees
    with pytest.raises(AssertionError, match="1 of 1 requests answered differently"):
        assert_same_responses(legacy, migrated, report)
    with pytest.raises(AssertionError, match="GET /health"):
        assert_same_responses(legacy, migrated, list(shadow.stats.differences))


def test_assert_same_responses_wants_a_list_of_requests() -> None:
    with pytest.raises(TypeError, match=r"a list of requests, not one: \['GET /health'\]"):
        assert_same_responses(shop("v1"), shop("v2"), "GET /health")


def test_assert_same_responses_refuses_a_route_template_it_cannot_replay() -> None:
    report = {"differences": [{"route": "GET /items/{id:int}", "problems": [], "diff": ""}]}
    with pytest.raises(ValueError, match="route template"):
        assert_same_responses(shop("v1"), shop("v2"), report)
