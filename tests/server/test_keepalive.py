"""``Keepalive``: the WebSocket ping timer, on a real event loop with short intervals."""

from __future__ import annotations

import asyncio

from wsgi2asgi.server.keepalive import Keepalive


def watch(
    interval: float, timeout: float | None, behind: list[bool] | None = None
) -> tuple[Keepalive, list[str]]:
    events: list[str] = []
    keepalive = Keepalive(
        asyncio.get_running_loop(),
        interval,
        timeout,
        ping=lambda: events.append("ping"),
        on_timeout=lambda: events.append("timeout"),
        app_behind=lambda: bool(behind and behind[0]),
    )
    keepalive.start()
    return keepalive, events


async def test_keepalive_never_pings_a_client_that_keeps_talking() -> None:
    keepalive, events = watch(0.3, 0.3)
    for _ in range(12):  # 0.6 s of traffic, a frame every 0.05 s
        await asyncio.sleep(0.05)
        keepalive.seen()
    keepalive.stop()
    assert events == []


async def test_keepalive_pings_a_silent_client_and_gives_up_on_it() -> None:
    keepalive, events = watch(0.05, 0.1)
    while "timeout" not in events:
        await asyncio.sleep(0.01)
    keepalive.stop()
    assert events == ["ping", "timeout"]


async def test_keepalive_an_answer_after_the_ping_keeps_the_connection() -> None:
    keepalive, events = watch(0.05, 0.5)
    while not events:
        await asyncio.sleep(0.01)
    keepalive.seen()  # the pong
    while events.count("ping") < 2:  # silent again: pinged again, not timed out
        await asyncio.sleep(0.01)
    keepalive.stop()
    assert events == ["ping", "ping"]


async def test_keepalive_without_a_timeout_pings_but_never_gives_up() -> None:
    keepalive, events = watch(0.03, None)
    while events.count("ping") < 3:
        await asyncio.sleep(0.01)
    keepalive.stop()
    assert set(events) == {"ping"}


async def test_keepalive_timeout_waits_while_the_app_is_behind() -> None:
    behind = [True]  # the server stopped reading: the pong may be unread in the socket
    keepalive, events = watch(0.03, 0.05, behind)
    await asyncio.sleep(0.4)
    assert events == ["ping"]
    behind[0] = False
    while "timeout" not in events:
        await asyncio.sleep(0.01)
    keepalive.stop()
    assert events == ["ping", "timeout"]


async def test_keepalive_stop_cancels_the_timer() -> None:
    keepalive, events = watch(0.02, 0.02)
    keepalive.stop()
    await asyncio.sleep(0.15)
    assert events == []
