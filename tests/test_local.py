"""``wsgi2asgi.local.Local``: thread- and task-local values that travel across the bridges."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import pytest

from tests.forking import forks_with_threads, in_forked_child, needs_fork
from wsgi2asgi.bridges import async_to_sync, sync_to_async
from wsgi2asgi.local import Local


def test_attribute_namespace() -> None:
    local = Local()
    assert not hasattr(local, "x")
    local.x = 1
    assert local.x == 1
    del local.x
    with pytest.raises(AttributeError):
        local.x  # noqa: B018
    with pytest.raises(AttributeError):
        del local.x


def test_names_like_internals_are_plain_attributes() -> None:
    local = Local()
    local._var = 5
    local._thread = "t"
    assert (local._var, local._thread) == (5, "t")
    local.y = 1
    assert local.y == 1


def test_sync_code_in_one_thread_shares_values_like_threading_local() -> None:
    local = Local()

    def setter() -> None:
        local.x = "set"

    setter()
    assert local.x == "set"
    seen: list[bool] = []
    thread = threading.Thread(target=lambda: seen.append(hasattr(local, "x")))
    thread.start()
    thread.join()
    assert seen == [False]


async def test_tasks_see_a_snapshot_and_do_not_leak_writes() -> None:
    local = Local()
    local.x = "parent"

    async def child(value: str) -> str:
        seen = str(local.x)
        local.x = value
        await asyncio.sleep(0)  # a loop turn, not a timer: the other child runs meanwhile
        assert local.x == value
        return seen

    assert await asyncio.gather(child("a"), child("b")) == ["parent", "parent"]
    assert local.x == "parent"


async def test_concurrent_requests_are_isolated() -> None:
    local = Local()
    everyone_wrote = asyncio.Barrier(5)

    async def request(n: int) -> int:
        local.user = n
        await everyone_wrote.wait()  # all five have written before any reads back
        await sync_to_async(lambda: None)()
        return int(local.user)

    assert await asyncio.gather(*(request(n) for n in range(5))) == list(range(5))


async def test_values_cross_sync_to_async_both_ways() -> None:
    local = Local()
    local.x = "async"

    def callee() -> str:
        seen = str(local.x)
        local.x = "sync"
        return seen

    assert await sync_to_async(callee)() == "async"
    assert local.x == "sync"


def test_values_cross_async_to_sync_both_ways_through_many_layers() -> None:
    local = Local()
    local.x = 0

    async def layer1() -> None:
        local.x += 1

        def layer2() -> None:
            local.x += 1

            async def layer3() -> None:
                local.x += 1

            async_to_sync(layer3)()

        await sync_to_async(layer2)()

    async_to_sync(layer1)()
    assert local.x == 3


async def test_thread_critical_values_never_cross_a_bridge() -> None:
    local = Local(thread_critical=True)
    local.x = "loop thread"

    def callee() -> bool:
        local.y = "worker"
        return hasattr(local, "x")

    assert await sync_to_async(callee)() is False
    assert not hasattr(local, "y")
    assert local.x == "loop thread"


def test_thread_critical_is_thread_local_in_sync_threads() -> None:
    local = Local(thread_critical=True)
    local.x = 1
    seen: list[bool] = []
    thread = threading.Thread(target=lambda: seen.append(hasattr(local, "x")))
    thread.start()
    thread.join()
    assert seen == [False]
    assert local.x == 1


def test_local_is_garbage_collected() -> None:
    local = Local(thread_critical=True)
    local.x = 1
    ref = weakref.ref(local)
    del local
    gc.collect()
    assert ref() is None


@needs_fork
@forks_with_threads
def test_values_survive_fork_in_the_forking_thread_and_cross_the_bridges_there() -> None:
    # What gunicorn --preload does with a Local set while the app loads in the master.
    context_local, critical = Local(), Local(thread_critical=True)
    context_local.x, critical.x = "set before fork", "this thread's"
    async_to_sync(sync_to_async(lambda: None))()  # the parent's bridge threads exist

    def in_child() -> tuple[str, str, str, bool]:
        async def read_in_async() -> str:
            return str(await sync_to_async(lambda: context_local.x)())

        critical_in_worker = asyncio.run(sync_to_async(lambda: hasattr(critical, "x"))())
        return context_local.x, critical.x, async_to_sync(read_in_async)(), critical_in_worker

    assert in_forked_child(in_child) == (
        "set before fork",
        "this thread's",
        "set before fork",
        False,
    )
