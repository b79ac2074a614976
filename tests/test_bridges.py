"""``wsgi2asgi.bridges``: where code runs, context, exceptions, cancellation, leaks."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import inspect
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.forking import forks_with_threads, in_forked_child, needs_fork, wait_for_exit
from tests.loopback import wait_until
from wsgi2asgi.bridges import (
    ThreadSensitiveContext,
    async_to_sync,
    iscoroutinefunction,
    sync_to_async,
)

var: contextvars.ContextVar[str] = contextvars.ContextVar("var")


def thread_name() -> str:
    return threading.current_thread().name


# -- shape -----------------------------------------------------------------------------------


def test_sync_to_async_result_is_a_coroutine_function_with_metadata() -> None:
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    wrapped = sync_to_async(add)
    assert inspect.iscoroutinefunction(wrapped)
    assert iscoroutinefunction(wrapped)
    if sys.version_info < (3, 14):
        assert asyncio.iscoroutinefunction(wrapped)
    assert wrapped.__name__ == "add"
    assert wrapped.__doc__ == "Add."
    assert wrapped.__wrapped__ is add  # type: ignore[attr-defined]
    assert asyncio.run(wrapped(1, 2)) == 3


def test_async_to_sync_keeps_metadata() -> None:
    async def fetch(x: int) -> int:
        """Fetch."""
        return x

    wrapped = async_to_sync(fetch)
    assert not inspect.iscoroutinefunction(wrapped)
    assert wrapped.__name__ == "fetch"
    assert wrapped.__doc__ == "Fetch."
    assert wrapped.__wrapped__ is fetch  # type: ignore[attr-defined]
    assert wrapped(5) == 5


def test_decorators_with_and_without_arguments() -> None:
    @sync_to_async
    def a() -> str:
        return "a"

    @sync_to_async(thread_sensitive=False)
    def b() -> str:
        return "b"

    @async_to_sync
    async def c() -> str:
        return "c"

    @async_to_sync(force_new_loop=True)
    async def d() -> str:
        return "d"

    async def both() -> list[str]:
        return [await a(), await b()]

    assert asyncio.run(both()) == ["a", "b"]
    assert c() + d() == "cd"


class Account:
    def __init__(self, balance: int) -> None:
        self.balance = balance

    @sync_to_async
    def add(self, amount: int) -> int:
        self.balance += amount
        return self.balance

    @async_to_sync
    async def double(self) -> int:
        self.balance *= 2
        return self.balance


def test_methods_work_on_instances_and_through_the_class() -> None:
    account = Account(1)

    async def main() -> tuple[int, int]:
        return await account.add(2), await Account.add(account, 3)

    assert asyncio.run(main()) == (3, 6)
    assert account.double() == 12
    assert Account.double(account) == 24


class Ledger:
    def total(self) -> int:
        return 7

    async def fetch(self) -> int:
        return 8


def test_wrapped_bound_methods_keep_their_instance_as_self() -> None:
    # asgiref copies __self__; Django's handler names a middleware by
    # middleware_method.__self__.__class__.__name__, the method wrapped by sync_to_async.
    ledger = Ledger()
    to_async = sync_to_async(ledger.total)
    to_sync = async_to_sync(ledger.fetch)
    assert to_async.__self__ is ledger  # type: ignore[attr-defined]
    assert to_sync.__self__ is ledger  # type: ignore[attr-defined]
    assert (to_async.__qualname__, to_sync.__qualname__) == ("Ledger.total", "Ledger.fetch")
    assert to_async.__wrapped__ == ledger.total  # type: ignore[attr-defined]
    assert (asyncio.run(to_async()), to_sync()) == (7, 8)
    account = Account(1)
    assert account.add.__self__ is account  # type: ignore[attr-defined]
    assert account.double.__self__ is account  # type: ignore[attr-defined]
    assert not hasattr(sync_to_async(thread_name), "__self__")
    assert not hasattr(async_to_sync(Ledger.fetch), "__self__")


def test_function_attributes_are_kept() -> None:
    # Django's decorators mark views with attributes (csrf_exempt, login_required's
    # wrapped view...) and read them back from whatever wraps the view.
    def view() -> str:
        return "ok"

    async def async_view() -> str:
        return "ok"

    view.csrf_exempt = True  # type: ignore[attr-defined]
    async_view.csrf_exempt = True  # type: ignore[attr-defined]
    assert sync_to_async(view).csrf_exempt is True  # type: ignore[attr-defined]
    assert async_to_sync(async_view).csrf_exempt is True  # type: ignore[attr-defined]


def test_async_to_sync_of_a_marked_async_callable_is_not_a_coroutine_function() -> None:
    # Django marks an async-capable middleware with markcoroutinefunction(self) and adapts it
    # to a sync chain with async_to_sync. The marker must not be copied onto the sync wrapper
    # with the rest of __dict__, or Django (and asyncio) take it for a coroutine function.
    from asgiref.sync import iscoroutinefunction as asgiref_iscoroutinefunction
    from django.utils.deprecation import MiddlewareMixin

    async def get_response(request: str) -> str:
        return f"response to {request}"

    middleware = MiddlewareMixin(get_response)
    assert asgiref_iscoroutinefunction(middleware)
    wrapped = async_to_sync(middleware)
    assert not asgiref_iscoroutinefunction(wrapped)
    assert not inspect.iscoroutinefunction(wrapped)
    assert not iscoroutinefunction(wrapped)
    if sys.version_info < (3, 14):
        assert not asyncio.iscoroutinefunction(wrapped)
    assert wrapped("r") == "response to r"


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: None, id="plain-lambda"),
        pytest.param(len, id="builtin"),
    ],
)
def test_async_to_sync_refuses_sync_functions(bad: Any) -> None:
    with pytest.raises(TypeError, match="call a sync function directly"):
        async_to_sync(bad)


def test_sync_to_async_refuses_coroutine_functions_and_partials() -> None:
    async def coro(x: int) -> int:
        return x

    for bad in (coro, functools.partial(coro, 1)):
        with pytest.raises(TypeError, match="await a coroutine function directly"):
            sync_to_async(bad)
    with pytest.raises(TypeError):
        sync_to_async(42)  # type: ignore[call-overload]


def test_executor_with_thread_sensitive_is_a_type_error() -> None:
    with ThreadPoolExecutor(1) as pool, pytest.raises(TypeError, match="thread_sensitive"):
        sync_to_async(thread_name, executor=pool)


def test_callable_object_with_async_call_is_accepted() -> None:
    class Handler:
        async def __call__(self, x: int) -> int:
            return x + 1

    assert async_to_sync(Handler())(1) == 2


# -- 1. never on the loop's thread; the loop keeps running ----------------------------------


async def test_sync_to_async_runs_off_the_loop_thread_and_loop_keeps_serving() -> None:
    loop_thread = threading.get_ident()
    started = threading.Event()
    release = threading.Event()

    def blocking() -> tuple[int, bool]:
        started.set()
        release.wait(5)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return threading.get_ident(), False
        return threading.get_ident(), True

    task = asyncio.create_task(sync_to_async(blocking)())
    # The loop runs this coroutine while blocking() waits: it is not blocked.
    assert await asyncio.to_thread(started.wait, 5)
    for _ in range(3):
        await asyncio.sleep(0)  # loop turns, not a timer
    assert not task.done()
    release.set()
    ident, saw_loop = await task
    assert ident != loop_thread
    assert not saw_loop


# -- 2. thread-sensitive: one thread per outermost context, in order ------------------------


async def test_thread_sensitive_calls_share_one_thread_in_fifo_order() -> None:
    order: list[str] = []

    def step(i: int) -> str:
        order.append(f"start{i}")
        time.sleep(0.005)  # kept: slow on purpose, so that calls run at once would interleave
        order.append(f"end{i}")
        return thread_name()

    names = await asyncio.gather(*(sync_to_async(step)(i) for i in range(4)))
    assert len(set(names)) == 1
    assert order == [x for i in range(4) for x in (f"start{i}", f"end{i}")]


async def test_thread_insensitive_calls_run_concurrently() -> None:
    barrier = threading.Barrier(3, timeout=5)

    def meet() -> str:
        barrier.wait()
        return thread_name()

    names = await asyncio.gather(*(sync_to_async(meet, thread_sensitive=False)() for _ in range(3)))
    assert len(set(names)) == 3


async def test_given_executor_is_used() -> None:
    with ThreadPoolExecutor(1, thread_name_prefix="custom") as pool:
        name = await sync_to_async(thread_name, thread_sensitive=False, executor=pool)()
    assert name.startswith("custom")


def test_sync_async_sync_comes_back_to_the_same_thread() -> None:
    main = thread_name()

    async def middle() -> str:
        return await sync_to_async(thread_name)()

    assert async_to_sync(middle)() == main


def test_double_nesting_returns_to_the_same_threads() -> None:
    outer = threading.get_ident()

    def level2() -> list[int]:
        async def level3() -> int:
            return await sync_to_async(threading.get_ident)()

        return [threading.get_ident(), async_to_sync(level3)()]

    async def level1() -> list[int]:
        return await sync_to_async(level2)()

    assert async_to_sync(level1)() == [outer, outer]


async def test_sync_async_sync_inside_a_server_loop_uses_the_worker_thread() -> None:
    def outer() -> tuple[int, int]:
        async def inner() -> int:
            return await sync_to_async(threading.get_ident)()

        return threading.get_ident(), async_to_sync(inner)()

    worker, nested = await sync_to_async(outer)()
    assert worker == nested


async def test_thread_sensitive_context_gives_each_context_its_own_thread() -> None:
    async def request() -> set[str]:
        async with ThreadSensitiveContext():
            first = await sync_to_async(thread_name)()
            async with ThreadSensitiveContext():  # nested: re-entrant, same thread
                second = await sync_to_async(thread_name)()
            return {first, second}

    one, two = await asyncio.gather(request(), request())
    assert len(one) == 1 and len(two) == 1
    assert one != two
    shared = await sync_to_async(thread_name)()
    assert shared not in one | two


async def test_thread_sensitive_context_thread_ends_after_exit() -> None:
    async with ThreadSensitiveContext():
        thread = await sync_to_async(threading.current_thread)()
    await asyncio.to_thread(thread.join, 5)  # it ends once the context is left
    assert not thread.is_alive()


# -- 3. and 4. where async_to_sync runs the coroutine ---------------------------------------


async def test_async_to_sync_in_a_worker_uses_the_callers_loop() -> None:
    loop = asyncio.get_running_loop()

    async def which_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def in_worker() -> asyncio.AbstractEventLoop:
        return async_to_sync(which_loop)()

    assert await sync_to_async(in_worker)() is loop
    assert await sync_to_async(in_worker, thread_sensitive=False)() is loop


async def test_force_new_loop_in_a_worker_uses_another_loop() -> None:
    loop = asyncio.get_running_loop()

    async def which_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    other = await sync_to_async(async_to_sync(which_loop, force_new_loop=True))()
    assert other is not loop
    assert other.is_closed()


def test_async_to_sync_from_a_plain_thread_returns_the_result() -> None:
    results: list[int] = []

    async def compute(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    thread = threading.Thread(target=lambda: results.append(async_to_sync(compute)(21)))
    thread.start()
    thread.join()
    assert results == [42]


def test_force_new_loop_uses_a_fresh_loop_each_time() -> None:
    async def which_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    fresh = async_to_sync(which_loop, force_new_loop=True)
    first, second = fresh(), fresh()
    assert first is not second
    assert first.is_closed() and second.is_closed()


def test_leftover_tasks_are_cancelled_like_asyncio_run() -> None:
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def spawn() -> None:
        asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(0)

    async_to_sync(spawn)()
    assert cancelled.wait(5)


# -- 5. a thread with a running loop ----------------------------------------------------------


async def test_async_to_sync_in_a_loop_thread_raises_a_helpful_error() -> None:
    created: list[int] = []

    async def coro() -> None:
        created.append(1)

    with pytest.raises(RuntimeError, match="just 'await'"):
        async_to_sync(coro)()
    assert created == []


# -- 6. contextvars both ways ---------------------------------------------------------------


async def test_contextvars_travel_into_and_out_of_sync_to_async() -> None:
    var.set("caller")

    def callee() -> str:
        seen = var.get()
        var.set("callee")
        return seen

    assert await sync_to_async(callee)() == "caller"
    assert var.get() == "callee"


def test_contextvars_travel_into_and_out_of_async_to_sync() -> None:
    def run() -> tuple[str, str]:
        var.set("sync")

        async def callee() -> str:
            seen = var.get()
            var.set("async")
            return seen

        return async_to_sync(callee)(), var.get()

    assert contextvars.copy_context().run(run) == ("sync", "async")


async def test_contextvars_through_nesting() -> None:
    inner_var: contextvars.ContextVar[int] = contextvars.ContextVar("inner")
    var.set("top")

    def level1() -> None:
        async def level2() -> None:
            def level3() -> None:
                assert var.get() == "top"
                inner_var.set(3)

            await sync_to_async(level3)()
            assert inner_var.get() == 3
            var.set("level2")

        async_to_sync(level2)()
        assert var.get() == "level2"

    await sync_to_async(level1)()
    assert var.get() == "level2"
    assert inner_var.get() == 3


async def test_private_context_of_the_bridges_does_not_leak_to_callers() -> None:
    before = set(contextvars.copy_context().keys())

    def callee() -> None:
        async def inner() -> None:
            return None

        async_to_sync(inner)()

    await sync_to_async(callee)()
    assert set(contextvars.copy_context().keys()) == before


# -- 7. exceptions ----------------------------------------------------------------------------


class Boom(Exception):
    pass


def explode() -> None:
    raise Boom("sync side")


async def explode_async() -> None:
    raise Boom("async side")


async def test_sync_to_async_reraises_the_same_exception_with_callee_frames() -> None:
    with pytest.raises(Boom) as info:
        await sync_to_async(explode)()
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "explode" in frames


def test_async_to_sync_reraises_the_same_exception_with_callee_frames() -> None:
    with pytest.raises(Boom) as info:
        async_to_sync(explode_async)()
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "explode_async" in frames


async def test_exception_identity_is_preserved() -> None:
    error = Boom("same")

    def raise_it() -> None:
        raise error

    with pytest.raises(Boom) as info:
        await sync_to_async(raise_it)()
    assert info.value is error


async def test_stop_iteration_arrives_as_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="StopIteration"):
        await sync_to_async(next)(iter(()))
    with pytest.raises(RuntimeError, match="StopIteration"):
        await sync_to_async(next, thread_sensitive=False)(iter(()))


async def test_keyboard_interrupt_propagates_out_of_sync_to_async() -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await sync_to_async(interrupt)()


# -- 8. cancellation ----------------------------------------------------------------------------


async def test_cancelling_the_caller_returns_promptly_and_the_next_call_queues() -> None:
    order: list[str] = []
    started = threading.Event()
    release = threading.Event()

    def slow() -> None:
        order.append("start")
        started.set()
        release.wait(5)
        order.append("end")

    task = asyncio.create_task(sync_to_async(slow)())
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    order.append("cancelled")
    nxt = asyncio.create_task(sync_to_async(lambda: order.append("next"))())
    for _ in range(3):
        await asyncio.sleep(0)  # loop turns, not a timer: nxt's task queues its call
    assert order == ["start", "cancelled"]  # nxt waits for the cancelled call's thread
    release.set()
    await nxt
    assert order == ["start", "cancelled", "end", "next"]


async def test_cancelled_before_start_never_runs() -> None:
    ran: list[int] = []
    release = threading.Event()

    running = threading.Event()

    def block() -> None:
        running.set()
        release.wait(5)

    blocker = asyncio.create_task(sync_to_async(block)())
    assert await asyncio.to_thread(running.wait, 5)  # the thread is taken
    queued = asyncio.create_task(sync_to_async(lambda: ran.append(1))())
    for _ in range(3):
        await asyncio.sleep(0)  # loop turns, not a timer: the task queues its call
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    release.set()
    await blocker
    await sync_to_async(lambda: None)()  # the queue has drained past the cancelled item
    assert ran == []


async def test_cancellation_reaches_a_nested_async_to_sync() -> None:
    seen: list[str] = []
    inner_started = threading.Event()

    async def sleeper() -> None:
        inner_started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("inner cancelled")
            raise

    def sync_code() -> None:
        try:
            async_to_sync(sleeper)()
        except asyncio.CancelledError:
            seen.append("sync saw CancelledError")
            raise

    task = asyncio.create_task(sync_to_async(sync_code)())
    await asyncio.to_thread(inner_started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await sync_to_async(lambda: None)()  # wait until the worker thread is free again
    assert seen == ["inner cancelled", "sync saw CancelledError"]


async def test_cancellation_before_the_nested_async_to_sync_is_delivered_to_it() -> None:
    # The cancel arrives while the sync code has not reached async_to_sync yet (the window in
    # which the inner task is scheduled but not started is the same case): the next
    # async_to_sync raises CancelledError at once instead of running its coroutine.
    seen: list[str] = []
    in_sync = threading.Event()
    release = threading.Event()

    async def never_runs() -> None:
        seen.append("inner ran")

    def sync_code() -> None:
        in_sync.set()
        release.wait(5)
        try:
            async_to_sync(never_runs)()
        except asyncio.CancelledError:
            seen.append("sync saw CancelledError")
        async_to_sync(asyncio.sleep)(0)  # delivered once: a later call runs normally
        seen.append("second call ran")

    task = asyncio.create_task(sync_to_async(sync_code)())
    await asyncio.to_thread(in_sync.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    await sync_to_async(lambda: None)()  # wait until the worker thread is free again
    assert seen == ["sync saw CancelledError", "second call ran"]


# -- 8b. what the caller awaits is Future-compatible: timeouts, shield, gather, uvloop -------
# A sync_to_async call is its own future (no asyncio.Future per call) and wakes the waiting task
# in the worker's callback; asyncio's Task, wait_for, timeout, shield and gather must not see
# the difference.


async def test_a_timeout_cancels_the_wait_and_the_next_call_runs() -> None:
    release = threading.Event()

    def slow() -> str:
        release.wait(5)
        return "slow"

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sync_to_async(slow, thread_sensitive=False)(), 0.01)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await sync_to_async(slow, thread_sensitive=False)()
    release.set()
    assert await sync_to_async(lambda: "next")() == "next"


async def test_the_cancel_message_reaches_the_awaiting_coroutine() -> None:
    started = threading.Event()
    release = threading.Event()
    seen: list[tuple[object, ...]] = []

    def blocked() -> None:
        started.set()
        release.wait(5)

    async def caller() -> None:
        try:
            await sync_to_async(blocked, thread_sensitive=False)()
        except asyncio.CancelledError as exc:
            seen.append(exc.args)
            raise

    task = asyncio.create_task(caller())
    await asyncio.to_thread(started.wait, 5)
    task.cancel("shutting down")
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    assert seen == [("shutting down",)]


async def test_shield_keeps_the_call_running_for_another_awaiter() -> None:
    release = threading.Event()
    call = asyncio.ensure_future(sync_to_async(lambda: release.wait(5) and "done")())
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(call), 0.01)
    release.set()
    assert await call == "done"


async def test_gather_returns_every_result_and_exception_in_order() -> None:
    def square_or_fail(n: int) -> int:
        if n % 10 == 3:
            raise Boom(str(n))
        return n * n

    call = sync_to_async(square_or_fail, thread_sensitive=False)
    results = await asyncio.gather(*(call(n) for n in range(100)), return_exceptions=True)
    for n, result in enumerate(results):
        if n % 10 == 3:
            assert isinstance(result, Boom) and result.args == (str(n),)
        else:
            assert result == n * n


def test_results_exceptions_and_cancellation_on_uvloop() -> None:
    # On uvloop the caller awaits a plain asyncio.Future instead (see bridges._Call).
    uvloop = pytest.importorskip("uvloop")
    release = threading.Event()

    async def main() -> list[object]:
        seen: list[object] = [await sync_to_async(lambda: 1)()]
        seen.append(await sync_to_async(lambda: 2, thread_sensitive=False)())
        with pytest.raises(Boom):
            await sync_to_async(explode)()
        with pytest.raises(RuntimeError, match="StopIteration"):
            await sync_to_async(next)(iter(()))
        seen.append("raised")
        task = asyncio.create_task(sync_to_async(release.wait)(5))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        seen.append(await sync_to_async(lambda: "after")())
        return seen

    assert uvloop.run(main()) == [1, 2, "raised", "after"]


# -- asgiref defect: late thread-sensitive call from a task that outlived async_to_sync -------


async def test_task_outliving_async_to_sync_can_still_make_thread_sensitive_calls() -> None:
    late: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    returned = asyncio.Event()

    async def later() -> None:
        await returned.wait()  # async_to_sync has returned: this task outlived it
        try:
            late.set_result(await sync_to_async(thread_name)())
        except BaseException as exc:  # report, do not lose
            late.set_exception(exc)

    keep: list[asyncio.Task[None]] = []

    async def spawn() -> None:
        keep.append(asyncio.get_running_loop().create_task(later()))

    await sync_to_async(lambda: async_to_sync(spawn)())()
    returned.set()
    assert isinstance(await asyncio.wait_for(late, 5), str)


# -- 11. nothing leaks ------------------------------------------------------------------------


@pytest.fixture
def settle() -> Iterator[None]:
    gc.collect()
    yield
    gc.collect()


def wait_for_thread_count(limit: int) -> int:
    """Threads retire on their own (nothing to wait on): poll their count for up to 3 s."""
    wait_until(lambda: threading.active_count() <= limit, timeout=3)
    return threading.active_count()


def test_no_threads_or_loops_leak_after_many_mixed_calls(settle: None) -> None:
    async def coro(x: int) -> int:
        return x

    def sync(x: int) -> int:
        return async_to_sync(coro)(x)

    async def round_trip(x: int) -> int:
        async with ThreadSensitiveContext():
            a = await sync_to_async(sync)(x)
        b = await sync_to_async(sync, thread_sensitive=False)(x)
        return a + b

    async def batch(n: int) -> int:
        return sum(await asyncio.gather(*(round_trip(i) for i in range(n))))

    asyncio.run(batch(50))  # warm up pools and runner threads
    async_to_sync(coro)(1)
    baseline = wait_for_thread_count(threading.active_count())
    # type(), not isinstance(): isinstance reads __class__, which a lazy object (Django's
    # settings) answers by loading itself.
    loops_before = sum(issubclass(type(o), asyncio.AbstractEventLoop) for o in gc.get_objects())
    total = 0
    for _ in range(25):
        total += asyncio.run(batch(100))
        total += sum(async_to_sync(coro)(i) for i in range(100))
    assert total == 25 * (2 * sum(range(100)) + sum(range(100)))
    gc.collect()
    assert wait_for_thread_count(baseline) <= baseline
    loops_after = sum(
        issubclass(type(o), asyncio.AbstractEventLoop) and not o.is_closed()
        for o in gc.get_objects()
    )
    assert loops_after <= loops_before


def test_origin_with_a_stopped_loop_falls_back_to_a_runner_instead_of_hanging() -> None:
    from wsgi2asgi.bridges import origin

    stopped = asyncio.new_event_loop()
    try:

        async def which_loop() -> asyncio.AbstractEventLoop:
            return asyncio.get_running_loop()

        with origin(stopped):
            used = async_to_sync(which_loop)()
        assert used is not stopped
    finally:
        stopped.close()


# -- 12. fork: a child starts clean ------------------------------------------------------------


def use_every_bridge() -> list[str]:
    """Each bridge once, from sync code; what a forked child does (it must not hang)."""

    async def nested() -> str:
        return await sync_to_async(lambda: "async_to_sync, then back to the calling thread")()

    async def from_async() -> list[str]:
        return [
            await sync_to_async(lambda: "thread-sensitive")(),
            await sync_to_async(lambda: "pool", thread_sensitive=False)(),
        ]

    return [async_to_sync(nested)(), *asyncio.run(from_async())]


EVERY_BRIDGE = ["async_to_sync, then back to the calling thread", "thread-sensitive", "pool"]


def fork_and_use_every_bridge() -> object:
    return in_forked_child(use_every_bridge)


@needs_fork
@forks_with_threads
@pytest.mark.parametrize("thread_sensitive", [True, False], ids=["sensitive", "pool"])
async def test_a_child_forked_in_a_sync_to_async_worker_can_use_the_bridges(
    thread_sensitive: bool,
) -> None:
    # multiprocessing's fork start method, called from a view: the child is a copy of the worker
    # thread, which thought it worked for this (the parent's) loop.
    fork = sync_to_async(fork_and_use_every_bridge, thread_sensitive=thread_sensitive)
    assert await fork() == EVERY_BRIDGE


@needs_fork
@forks_with_threads
async def test_a_child_forked_in_a_thread_sensitive_context_can_use_the_bridges() -> None:
    async with ThreadSensitiveContext():
        assert await sync_to_async(fork_and_use_every_bridge)() == EVERY_BRIDGE


@needs_fork
@forks_with_threads
def test_a_child_forked_under_async_to_sync_can_use_the_bridges() -> None:
    # The worker's context routes thread-sensitive calls to this thread, blocked in
    # async_to_sync: it does not exist in the child.
    async def fork_from_a_pool_worker() -> object:
        return await sync_to_async(fork_and_use_every_bridge, thread_sensitive=False)()

    assert async_to_sync(fork_from_a_pool_worker)() == EVERY_BRIDGE


@needs_fork
@forks_with_threads
@pytest.mark.parametrize("thread_sensitive", [True, False], ids=["sensitive", "pool"])
async def test_a_child_that_returns_from_the_function_it_forked_in_ends(
    thread_sensitive: bool,
) -> None:
    # The child's only thread is the worker's, back in its loop with nothing left to serve:
    # it must end there, not wait for the parent's work for ever.
    pid = await sync_to_async(os.fork, thread_sensitive=thread_sensitive)()
    status = wait_for_exit(pid)
    assert status is not None, "the child lives on as an idle worker thread"
    assert os.waitstatus_to_exitcode(status) == 0


async def current_thread_async() -> threading.Thread:
    return threading.current_thread()


# Each bridge used from plain sync code: the thread that ran the callee.
THREAD_OF: dict[str, Callable[[], threading.Thread]] = {
    "async_to_sync": async_to_sync(current_thread_async),
    "sensitive": lambda: asyncio.run(sync_to_async(threading.current_thread)()),
    "pool": lambda: asyncio.run(sync_to_async(threading.current_thread, thread_sensitive=False)()),
}


@needs_fork
@forks_with_threads
@pytest.mark.parametrize("bridge", list(THREAD_OF))
def test_a_child_forked_after_the_parent_used_the_bridges_gets_fresh_threads(
    bridge: str,
) -> None:
    # gunicorn --preload, uWSGI: the app (and the bridges' threads) start in the master, then
    # it forks. The threads the bridges keep for reuse exist only in the parent.
    in_parent = THREAD_OF[bridge]()

    def in_child() -> tuple[bool, bool]:
        thread = THREAD_OF[bridge]()
        return thread is not in_parent, thread.is_alive()

    assert in_forked_child(in_child) == (True, True)
