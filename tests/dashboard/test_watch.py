"""``wsgi2asgi.dashboard.watch``: the Shadows, Splits and blocking calls of the tree on the page,
and a Split's percentage changed from it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.apps import dashboard_site
from tests.apps.dashboard_site import LOCAL, snapshot
from tests.loopback import wait_until
from wsgi2asgi.blocking import BlockingDetector, BlockingDetectorMiddleware
from wsgi2asgi.dashboard import Dashboard
from wsgi2asgi.testing import TestClient

CHANGE = {"X-Wsgi2asgi-Dashboard": "1"}


def test_shadow_differences_are_shown_with_their_diff(client: TestClient) -> None:
    assert client.get("/legacy/hello").text == "hello\nworld\n"
    assert wait_until(lambda: snapshot(client)["shadows"][0]["different"] == 1)
    (shadow,) = snapshot(client)["shadows"]
    assert shadow["where"] == "/legacy"
    (difference,) = shadow["differences"]
    assert difference["route"] == "GET /legacy/hello"
    assert "-world" in difference["diff"] and "+planet" in difference["diff"]
    assert difference["problems"] == ["body differs"]


def test_split_arms_are_shown_and_the_percentage_changes_with_a_post(client: TestClient) -> None:
    for user in ("ann", "bob", "cy", "dee"):
        client.get("/canary/checkout", headers={"x-user": user})
    (split,) = snapshot(client)["splits"]
    assert split["where"] == "/canary" and split["percent"] == 50.0
    arms = split["arms"]
    assert arms["migrated"]["requests"] + arms["legacy"]["requests"] == 4
    response = client.post("/_wsgi2asgi/api/splits/0", json={"percent": 12.5}, headers=CHANGE)
    assert response.status_code == 200, response.text
    assert response.json()["percent"] == 12.5
    assert snapshot(client)["splits"][0]["percent"] == 12.5


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, {"percent": 5}, 403),  # no custom header: what a form on another site could send
        ({**CHANGE, "Origin": "http://evil.example"}, {"percent": 5}, 403),
        ({**CHANGE, "Origin": "http://127.0.0.1:9999"}, {"percent": 5}, 403),  # another port
        ({**CHANGE, "Origin": LOCAL}, {"percent": 5}, 200),
        (CHANGE, {"percent": 101}, 400),
        (CHANGE, {"percent": "ten"}, 400),
        (CHANGE, {"share": 5}, 400),
    ],
)
def test_a_percentage_change_must_be_same_origin_and_valid(
    client: TestClient, headers: dict[str, str], body: dict[str, Any], status: int
) -> None:
    response = client.post("/_wsgi2asgi/api/splits/0", json=body, headers=headers)
    assert response.status_code == status, response.text
    expected = 5.0 if status == 200 else 50.0
    assert snapshot(client)["splits"][0]["percent"] == expected


def test_a_change_to_a_split_that_does_not_exist_is_404(client: TestClient) -> None:
    for number in ("3", "x"):
        url = f"/_wsgi2asgi/api/splits/{number}"
        assert client.post(url, json={"percent": 1}, headers=CHANGE).status_code == 404
    assert client.put("/_wsgi2asgi/api/splits/0", json={"percent": 1}).status_code == 405


async def test_blocking_episodes_are_shown_with_their_stack() -> None:
    app = dashboard_site.create_app()
    with BlockingDetector(threshold=0.05) as detector:
        dashboard = Dashboard(app, blocking=detector)
        served = BlockingDetectorMiddleware(dashboard.counted)
        scope = {"type": "http", "method": "GET", "path": "/api/block", "headers": []}
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await served(scope, receive, send)
        deadline = time.monotonic() + 5
        while detector.count == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the watchdog closes the episode on its next look
    report = dashboard.snapshot()["blocking"]
    assert report["count"] == 1 and report["threshold_ms"] == 50
    (episode,) = report["episodes"]
    assert episode["request"] == "GET /api/block"
    assert "time.sleep(BLOCK_SECONDS)" in episode["stack"]
    assert episode["duration_ms"] >= 100
    assert Dashboard(app).snapshot()["blocking"] is None  # off: the page says how to turn it on
