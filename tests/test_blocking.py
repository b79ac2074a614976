"""``wsgi2asgi.blocking``: a watchdog thread names the code and the request blocking the loop."""

from __future__ import annotations

import asyncio
import logging
import threading

import httpx
import pytest

from tests.apps.blocking_apps import plain_blocking_app, starlette_app
from tests.loopback import await_until
from wsgi2asgi.blocking import (
    BlockingDetector,
    BlockingDetectorMiddleware,
    current_request,
    install,
)
from wsgi2asgi.typing import ASGIApp, Receive, Scope, Send

WATCHDOG = "wsgi2asgi-blocking-watchdog"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsgi2asgi.blocking"]


async def get(app: ASGIApp, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path)


def assert_no_watchdog() -> None:
    assert not [t for t in threading.enumerate() if t.name == WATCHDOG]


@pytest.mark.parametrize(
    ("app", "line", "function"),
    [
        (starlette_app, "time.sleep(0.3)  # the blocking call", "slow_report"),
        (plain_blocking_app, "time.sleep(0.3)  # plain ASGI", "plain_blocking_app"),
    ],
)
async def test_detector_blocking_endpoint_logs_one_warning_with_line_and_request(
    app: ASGIApp, line: str, function: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wsgi2asgi.blocking")
    detector = install(asyncio.get_running_loop(), threshold_ms=100)
    try:
        response = await get(BlockingDetectorMiddleware(app), "/slow")
        # The loop answers the watchdog's ping: it closes the episode (stop() logs it).
        assert await await_until(lambda: detector.count == 1)
    finally:
        detector.stop()

    assert response.text == "done"
    [record] = warnings_of(caplog)
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert line in message
    assert f", in {function}\n" in message
    assert "while serving GET /slow;" in message
    assert detector.count == 1
    [episode] = detector.episodes
    assert episode.request == "GET /slow"
    assert 0.1 < episode.duration < 10
    assert detector.max_duration == episode.duration
    assert_no_watchdog()


def test_detector_under_uvloop_names_the_blocking_line(caplog: pytest.LogCaptureFixture) -> None:
    uvloop = pytest.importorskip("uvloop")  # the server runs on uvloop when it is installed
    caplog.set_level(logging.WARNING, logger="wsgi2asgi.blocking")

    async def main() -> BlockingDetector:
        detector = install(asyncio.get_running_loop(), threshold_ms=100)
        try:
            await get(BlockingDetectorMiddleware(starlette_app), "/slow")
            assert await await_until(lambda: detector.count == 1)  # the episode is closed
        finally:
            detector.stop()
        return detector

    detector = uvloop.run(main())

    [record] = warnings_of(caplog)
    assert "time.sleep(0.3)  # the blocking call" in record.getMessage()
    assert "while serving GET /slow;" in record.getMessage()
    assert detector.count == 1
    assert_no_watchdog()


async def test_detector_clean_app_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="wsgi2asgi.blocking")
    with BlockingDetector(threshold=0.25) as detector:
        response = await get(BlockingDetectorMiddleware(starlette_app), "/polite")

    assert response.text == "done"
    assert warnings_of(caplog) == []
    assert (detector.count, detector.episodes) == (0, [])
    assert_no_watchdog()


async def test_detector_without_middleware_logs_unknown_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="wsgi2asgi.blocking")
    with BlockingDetector(threshold=0.1) as detector:
        await get(plain_blocking_app, "/x")
        assert await await_until(lambda: detector.count == 1)  # the episode is closed

    [record] = warnings_of(caplog)
    assert "while serving an unknown request;" in record.getMessage()


async def test_detector_long_block_logs_error_at_once_then_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="wsgi2asgi.blocking")
    with BlockingDetector(threshold=0.05, hang_after=0.15) as detector:
        await get(BlockingDetectorMiddleware(starlette_app), "/slow")
        assert await await_until(lambda: detector.count == 1)  # the episode is closed

    levels = [r.levelno for r in warnings_of(caplog)]
    assert levels == [logging.ERROR, logging.WARNING]
    assert "still blocked" in warnings_of(caplog)[0].getMessage()
    assert detector.count == 1


async def test_middleware_sets_current_request_for_the_app() -> None:
    seen: list[str | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(current_request.get())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    await get(BlockingDetectorMiddleware(app), "/who?x=1")

    assert seen == ["GET /who"]
    assert current_request.get() is None


def test_detector_stop_joins_thread_and_is_idempotent() -> None:
    loop = asyncio.new_event_loop()
    try:
        detector = BlockingDetector(loop, threshold=0.05).start()
        with pytest.raises(RuntimeError, match="already started"):
            detector.start()
        detector.stop()
        detector.stop()
    finally:
        loop.close()
    assert_no_watchdog()


def test_detector_without_loop_outside_a_loop_raises() -> None:
    with pytest.raises(RuntimeError):
        BlockingDetector().start()
    with pytest.raises(ValueError, match="positive"):
        BlockingDetector(threshold=0)
