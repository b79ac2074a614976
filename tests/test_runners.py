"""``wsgi2asgi.runners``: the one class that runs an event loop on a daemon thread."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from wsgi2asgi.runners import Runner, RunnerPool


def test_a_runner_runs_coroutines_on_its_own_named_thread() -> None:
    runner = Runner("wsgi2asgi-test-loop")
    try:

        async def where() -> str:
            return threading.current_thread().name

        assert asyncio.run_coroutine_threadsafe(where(), runner.loop).result(10) == (
            "wsgi2asgi-test-loop"
        )
        assert runner.thread.daemon and not runner.is_current()
    finally:
        runner.close()
    assert not runner.thread.is_alive() and runner.loop.is_closed()


def test_run_waits_at_most_its_timeout_and_cancels_the_coroutine() -> None:
    runner = Runner(stop_timeout=5)
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    try:
        with pytest.raises(TimeoutError):
            runner.run(forever(), 0.05)
        assert cancelled.wait(10)
    finally:
        runner.close()


def test_close_runs_on_exit_on_the_thread_and_refuses_later_calls() -> None:
    exited: list[str] = []
    runner = Runner(on_exit=lambda: exited.append(threading.current_thread().name))
    runner.close()
    assert exited == [runner.thread.name]
    assert runner.call_soon(print) is False
    with pytest.raises(RuntimeError):
        runner.run(asyncio.sleep(0), 1)
    runner.close()  # idempotent


def test_close_is_bounded_by_stop_timeout_and_says_what_it_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = Runner(stop_timeout=0.1)
    started, release = threading.Event(), threading.Event()

    async def stubborn() -> None:
        started.set()
        while not release.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue  # ignores cancellation

    asyncio.run_coroutine_threadsafe(stubborn(), runner.loop)
    assert started.wait(10)
    begun = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="wsgi2asgi.runners"):
        runner.close()
    release.set()
    assert time.monotonic() - begun < 5
    assert "ignored cancellation" in caplog.text


def test_an_error_that_stops_the_loop_is_logged_and_on_exit_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exited = threading.Event()
    runner = Runner(stop_timeout=1, on_exit=exited.set)

    def crash() -> None:
        raise SystemExit("an app let SystemExit out")

    with caplog.at_level(logging.ERROR, logger="wsgi2asgi.runners"):
        runner.call_soon(crash)
        assert exited.wait(10)
    runner.close()
    assert "stopped on an error" in caplog.text


def test_a_pool_hands_out_runners_and_keeps_some() -> None:
    pool = RunnerPool(keep=1)
    first, second = pool.take(), pool.take()
    assert first is not second
    pool.give(first)
    pool.give(second)  # no room: closed
    assert not second.thread.is_alive()
    assert pool.take() is first
    pool.give(first)
    pool.close()
    assert not first.thread.is_alive()
