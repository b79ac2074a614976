"""``wsgi2asgi.dashboard.traffic``: per-route counters under their route templates, the
timeline of async and sync requests, and the route matcher of each framework.
"""

from __future__ import annotations

import time

from tests.apps.dashboard_site import row, snapshot
from wsgi2asgi.dashboard import RouteMatcher
from wsgi2asgi.inventory import RouteInfo
from wsgi2asgi.testing import TestClient


def test_snapshot_lists_every_route_with_framework_mode_and_who_answers(
    client: TestClient,
) -> None:
    snap = snapshot(client)
    table = {r["path"]: (r["framework"], r["is_async"], r["kind"]) for r in snap["routes"]}
    assert table["/legacy/users/<int:id>"] == ("flask", False, "http")
    assert table["/api/items/{id:int}"] == ("starlette", True, "http")
    assert table["/api/report"] == ("starlette", False, "http")
    assert table["/api/ws"] == ("starlette", True, "websocket")
    # The Split: both arms' routes, marked as the inventory marks them (no opaque /canary/*).
    canary = {
        (r["framework"], r["role"]) for r in snap["routes"] if r["path"] == "/canary/checkout"
    }
    assert canary == {("starlette", "migrated"), ("starlette", "legacy")}
    assert "/canary/*" not in table
    assert not any(r["path"].startswith("/_wsgi2asgi") for r in snap["routes"])


def test_requests_are_counted_under_their_route_template(client: TestClient) -> None:
    for path in ("/legacy/users/7", "/legacy/users/8", "/api/items/3", "/api/report"):
        assert client.get(path).status_code == 200
    assert client.get("/legacy/fail").status_code == 500
    assert client.get("/canary/checkout", headers={"x-user": "ann"}).status_code == 200
    assert client.get("/nowhere").status_code == 404
    with client.websocket_connect("/api/ws") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "hi"
    snap = snapshot(client)
    users = row(snap, "/legacy/users/<int:id>")
    assert users["requests"] == 2 and users["errors"] == 0
    assert users["latency_ms"]["p50"] > 0
    assert row(snap, "/legacy/fail")["errors"] == 1
    canary = [r for r in snap["routes"] if r["path"] == "/canary/checkout"]
    assert sum(r["requests"] for r in canary) == 1  # under the first arm's row that fits
    assert row(snap, "/api/ws")["websockets"] == 1
    assert snap["other"]["requests"] == 1  # /nowhere
    assert snap["totals"]["requests"] == 8  # the dashboard's own requests are not counted


def test_the_timeline_counts_async_and_sync_requests_per_second(client: TestClient) -> None:
    for _ in range(3):
        client.get("/api/items/1")  # async
    client.get("/legacy/users/1")  # sync
    client.get("/nowhere")  # no route: neither
    seconds = snapshot(client)["timeline"]
    assert sum(s[1] for s in seconds) == 5
    assert (sum(s[2] for s in seconds), sum(s[3] for s in seconds)) == (3, 1)
    assert all(abs(s[0] - time.time()) < 60 for s in seconds)  # wall-clock seconds


def test_the_route_matcher_reads_flask_starlette_and_django_templates() -> None:
    routes = [
        RouteInfo("/f/users/<int:id>", ("GET",), "flask", "user", False),
        RouteInfo("/f/items", ("GET",), "flask", "items", False),
        RouteInfo("/f/items", ("POST",), "flask", "create", True),
        RouteInfo("/s/files/{rest:path}", ("GET",), "starlette", "files", True),
        RouteInfo("/d/blog/^(?P<year>[0-9]{4})/$", ("*",), "django", "blog:article", False),
        RouteInfo("/d/notes/<slug:slug>/", ("*",), "django", "note", False),
        RouteInfo("/opaque/*", (), "asgi", "raw", True, "mount"),
        RouteInfo("/*", (), "wsgi", "site", False, "mount"),
    ]
    matcher = RouteMatcher(routes)
    found = {
        ("GET", "/f/users/12"): 0,
        ("GET", "/f/users/me"): len(routes) - 1,  # <int:...> takes digits only: the root mount
        ("GET", "/f/items"): 1,
        ("POST", "/f/items"): 2,  # the rule for that method
        ("HEAD", "/f/items"): 1,
        ("GET", "/s/files/a/b/c.txt"): 3,
        ("GET", "/d/blog/2024/"): 4,
        ("GET", "/d/notes/hello-world/"): 5,
        ("GET", "/opaque/deep/path"): 6,
        ("GET", "/opaque"): 6,
        ("GET", "/opaquer"): 7,
    }
    assert {key: matcher.match(*key) for key in found} == found
    assert RouteMatcher(routes[:2]).match("GET", "/elsewhere") == 2  # other
