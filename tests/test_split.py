"""``wsgi2asgi.split``: a sticky share of users goes to the migrated app, the rest to legacy."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from wsgi2asgi.fallback import Fallback
from wsgi2asgi.split import Split
from wsgi2asgi.testing import AsyncTestClient, TestClient
from wsgi2asgi.typing import ASGIApp, Message, Receive, Scope, Send


def arm(name: str, log: list[tuple[str, str, bytes]] | None = None, status: int = 200) -> ASGIApp:
    """An app answering ``status`` with its name; logs ``(name, method, body)`` per request."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": name})
            await send({"type": "websocket.close", "code": 1000})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if log is not None:
            log.append((name, scope["method"], body))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": name.encode()})

    return app


async def crash(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("migrated exploded")


async def call(
    app: ASGIApp,
    *,
    method: str = "GET",
    headers: list[tuple[bytes, bytes]] | None = None,
    client: tuple[str, int] | None = ("10.0.0.1", 50000),
    body: bytes = b"",
) -> tuple[int, bytes]:
    """One HTTP request straight into ``app`` (no client: 10,000 of them stay fast)."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": headers or [],
        "client": client,
        "server": ("testserver", 80),
    }
    messages: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"]), b"".join(m.get("body", b"") for m in sent[1:])


def user(n: int) -> list[tuple[bytes, bytes]]:
    return [(b"x-user", f"user-{n}".encode())]


def scope_of(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {"type": "http", "headers": headers, "client": ("10.0.0.1", 50000)}


async def test_split_is_sticky_per_key() -> None:
    split = Split(arm("migrated"), arm("legacy"), percent=50, key="header:x-user")
    seen: dict[int, set[bytes]] = {}
    for _ in range(5):
        for n in range(200):
            _, body = await call(split, headers=user(n))
            seen.setdefault(n, set()).add(body)
    assert all(len(arms) == 1 for arms in seen.values())  # no user ever flipped
    assert {body for arms in seen.values() for body in arms} == {b"migrated", b"legacy"}


async def test_split_ratio_on_10000_requests_is_within_one_point() -> None:
    # 10,000 users at 10 %: binomial standard deviation 30 requests, so +-100 is over 3 sigma
    # (the hash is deterministic: this is the same count on every run).
    split = Split(arm("migrated"), arm("legacy"), percent=10, key="header:x-user")
    for n in range(10_000):
        await call(split, headers=user(n))
    arms = split.report()["arms"]
    assert 900 <= arms["migrated"]["requests"] <= 1100
    assert arms["migrated"]["requests"] + arms["legacy"]["requests"] == 10_000


async def test_split_by_client_address_ratio_on_10000_requests() -> None:
    split = Split(arm("migrated"), arm("legacy"), percent=25)  # key: the client address
    for n in range(10_000):
        await call(split, client=(f"10.{n // 256 % 256}.{n % 256}.{n // 65536 + 1}", 40000 + n))
    assert 2400 <= split.report()["arms"]["migrated"]["requests"] <= 2600


def test_split_raising_the_percentage_only_moves_users_from_legacy_to_migrated() -> None:
    split = Split(arm("migrated"), arm("legacy"), percent=0, key="header:x-user")
    users = range(4000)
    seen: dict[float, set[int]] = {0: set()}
    for percent in (5, 10, 25, 50, 90, 100):
        split.percent = percent
        migrated = {n for n in users if split.choose(scope_of(user(n))) == "migrated"}
        assert max(seen.values(), key=len) <= migrated  # nobody went back to legacy
        assert abs(len(migrated) - 40 * percent) <= 120, percent
        seen[percent] = migrated
    split.set_percent(10)  # lowering it again: exactly the users who were migrated at 10 %
    assert {n for n in users if split.choose(scope_of(user(n))) == "migrated"} == seen[10]


async def test_split_percentage_changes_at_run_time() -> None:
    split = Split(arm("migrated"), arm("legacy"), percent=0, key="header:x-user")
    assert {(await call(split, headers=user(n)))[1] for n in range(50)} == {b"legacy"}
    split.set_percent(100)
    assert {(await call(split, headers=user(n)))[1] for n in range(50)} == {b"migrated"}
    split.percent = 0
    assert split.percent == 0
    assert {(await call(split, headers=user(n)))[1] for n in range(50)} == {b"legacy"}


@pytest.mark.parametrize("bad", [-1, 100.5, float("nan"), "ten"])
def test_split_percentage_outside_0_to_100_is_a_value_error(bad: Any) -> None:
    with pytest.raises(ValueError, match="percent must be a number from 0 to 100"):
        Split(arm("m"), arm("l"), percent=bad)
    split = Split(arm("m"), arm("l"))
    with pytest.raises(ValueError, match="percent must be a number from 0 to 100"):
        split.set_percent(bad)
    assert split.percent == 10


@pytest.mark.parametrize("bad", ["ip", "cookie:", "header", "query:user"])
def test_split_key_that_is_not_a_rule_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="key must be 'client', 'cookie:NAME', 'header:NAME'"):
        Split(arm("m"), arm("l"), key=bad)


async def test_split_by_cookie_and_requests_without_the_key_go_to_legacy() -> None:
    split = Split(arm("migrated"), arm("legacy"), percent=50, key="cookie:session")
    arms = set()
    for n in range(100):
        cookie = [(b"cookie", f"theme=dark; session=s{n}".encode())]
        first, second = await call(split, headers=cookie), await call(split, headers=cookie)
        assert first == second
        arms.add(first[1])
    assert arms == {b"migrated", b"legacy"}
    for _ in range(20):  # no session cookie yet: legacy, counted as unkeyed
        assert (await call(split, headers=[(b"cookie", b"theme=dark")]))[1] == b"legacy"
    assert split.report()["unkeyed"] == 20


async def test_split_post_goes_to_one_arm_only() -> None:
    log: list[tuple[str, str, bytes]] = []
    split = Split(arm("migrated", log), arm("legacy", log), percent=50, key="header:x-user")
    for n in range(200):
        status, body = await call(split, method="POST", headers=user(n), body=f"order {n}".encode())
        assert status == 200
    # Each POST reached exactly one arm, once, with its body: nothing was replayed.
    assert sorted(entry[2] for entry in log) == sorted(f"order {n}".encode() for n in range(200))
    assert {entry[0] for entry in log} == {"migrated", "legacy"}
    report = split.report()["arms"]
    assert report["migrated"]["requests"] + report["legacy"]["requests"] == 200


async def test_split_rolls_back_when_the_migrated_arm_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    split = Split(
        arm("migrated", status=500),
        arm("legacy"),
        percent=50,
        key="header:x-user",
        max_error_rate=0.2,
        min_requests=10,
    )
    answers = [await call(split, headers=user(n)) for n in range(400)]
    # The 10th migrated request (all 500s) tripped the rollback; everything after is legacy.
    assert answers.count((500, b"migrated")) == 10
    assert answers.count((200, b"legacy")) == 390
    assert split.rolled_back
    assert split.percent == 50  # the setting stays; the migrated arm gets no traffic
    report = split.report()
    assert report["effective_percent"] == 0
    assert report["arms"]["migrated"]["errors"] == 10
    assert report["arms"]["migrated"]["error_rate"] == 1.0
    warnings = [r for r in caplog.records if r.name == "wsgi2asgi.split"]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert "10 of 10 requests (100%)" in warnings[0].getMessage()
    assert "sending its traffic back to legacy" in warnings[0].getMessage()
    split.set_percent(50)  # a person decides to try again
    assert not split.rolled_back
    assert split.report()["rollback"] is None


async def test_split_exception_in_the_migrated_arm_is_an_error_and_propagates() -> None:
    split = Split(crash, arm("legacy"), percent=100, max_error_rate=0.5, min_requests=3)
    for _ in range(3):
        with pytest.raises(RuntimeError, match="migrated exploded"):
            await call(split)
    assert split.rolled_back
    assert (await call(split)) == (200, b"legacy")


async def test_split_rollback_counts_only_the_window_and_needs_min_requests() -> None:
    now = [1000.0]
    split = Split(
        arm("migrated", status=503),
        arm("legacy"),
        percent=100,
        max_error_rate=0.5,
        min_requests=10,
        window=60,
        clock=lambda: now[0],
    )
    for _ in range(9):
        await call(split)
    assert not split.rolled_back  # 9 errors: fewer than min_requests
    now[0] += 61  # those 9 leave the window
    for _ in range(9):
        await call(split)
    assert not split.rolled_back
    assert split.report()["arms"]["migrated"]["window"] == {
        "seconds": 60,
        "requests": 9,
        "errors": 9,
        "error_rate": 1.0,
    }
    await call(split)
    assert split.rolled_back


async def test_split_error_rate_at_or_under_the_threshold_keeps_the_split() -> None:
    log: list[tuple[str, str, bytes]] = []
    statuses = iter([200] * 9 + [500])  # 1 error in 10 requests: 10 %, not above it

    async def one_in_ten(scope: Scope, receive: Receive, send: Send) -> None:
        await arm("migrated", log, status=next(statuses, 200))(scope, receive, send)

    split = Split(one_in_ten, arm("legacy"), percent=100, max_error_rate=0.1, min_requests=5)
    for _ in range(10):
        await call(split)
    assert not split.rolled_back
    assert split.report()["arms"]["migrated"]["error_rate"] == 0.1


async def test_split_report_is_json_with_counts_error_rates_and_latency_percentiles() -> None:
    split = Split(arm("migrated"), arm("legacy", status=502), percent=50, key="header:x-user")
    for n in range(100):
        await call(split, headers=user(n))
    report = json.loads(json.dumps(split.report()))
    assert report["percent"] == 50
    assert report["key"] == "header:x-user"
    assert report["rolled_back"] is False
    legacy, migrated = report["arms"]["legacy"], report["arms"]["migrated"]
    assert migrated["requests"] + legacy["requests"] == 100
    assert legacy["errors"] == legacy["requests"] and legacy["error_rate"] == 1.0
    assert migrated["errors"] == 0 and migrated["error_rate"] == 0.0
    latency = migrated["latency_ms"]
    assert set(latency) == {"p50", "p90", "p99", "max"}
    assert 0 <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert migrated["in_flight"] == 0


def test_split_websocket_goes_by_the_same_key() -> None:
    split = Split(arm("migrated"), arm("legacy"), percent=50, key="header:x-user")
    with TestClient(split) as client:
        for n in range(40):
            http_arm = client.get("/", headers={"x-user": f"user-{n}"}).text
            with client.websocket_connect("/ws", headers={"x-user": f"user-{n}"}) as ws:
                assert ws.receive_text() == http_arm
    assert split.report()["arms"]["migrated"]["websockets"] > 0
    assert split.report()["arms"]["legacy"]["websockets"] > 0


def pool_app(label: str) -> Starlette:
    """A Starlette app whose lifespan stores ``pool`` and whose ``/`` answers with it."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
        yield {"pool": label}

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.state.pool)

    return Starlette(routes=[Route("/", home)], lifespan=lifespan)


async def test_split_lifespan_reaches_both_arms_each_with_its_own_state() -> None:
    split = Split(pool_app("migrated"), pool_app("legacy"), percent=0)
    async with AsyncTestClient(split, lifespan="on") as client:
        assert (await client.get("/")).text == "legacy"
        split.percent = 100
        assert (await client.get("/")).text == "migrated"


async def test_split_over_a_fallback_sharing_the_legacy_app_starts_it_once() -> None:
    # docs/migration.md's canary: the migrated arm is Fallback(new, legacy), so routes not
    # moved yet still reach legacy; legacy's lifespan runs once, with one state.
    started: list[str] = []

    def counted(label: str, paths: list[str]) -> Starlette:
        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
            started.append(label)
            yield {"pool": label}

        async def page(request: Request) -> PlainTextResponse:
            return PlainTextResponse(f"{request.state.pool} {request.url.path}")

        return Starlette(routes=[Route(p, page) for p in paths], lifespan=lifespan)

    legacy = counted("legacy", ["/old", "/moved"])
    split = Split(Fallback(counted("new", ["/moved"]), legacy), legacy, percent=100)
    async with AsyncTestClient(split, lifespan="on") as client:
        assert (await client.get("/moved")).text == "new /moved"
        assert (await client.get("/old")).text == "legacy /old"
        split.percent = 0
        assert (await client.get("/moved")).text == "legacy /moved"
    assert started == ["new", "legacy"]


async def test_split_refuses_a_scope_type_it_does_not_know() -> None:
    async def receive() -> Message:
        raise AssertionError("not called")

    async def send(message: Message) -> None:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="Split cannot handle scope type 'telepathy'"):
        await Split(arm("m"), arm("l"))({"type": "telepathy"}, receive, send)
