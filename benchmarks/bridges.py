"""The bridges side by side: ours and asgiref's, same process, same loop, same functions.

Prints microseconds per call (median of the rounds) and the ratio ours/asgiref (< 1.0 means
ours is faster): the median of the per-round ratios, each round running both back to back.

Run::

    python benchmarks/bridges.py            # asyncio loop
    python benchmarks/bridges.py --uvloop   # uvloop
    python benchmarks/bridges.py --only s2a # the cases whose label contains "s2a"

Cases:

* ``s2a sensitive``: ``await sync_to_async(f)()`` one after the other (thread-sensitive).
* ``s2a pool``: the same with ``thread_sensitive=False``.
* ``s2a pool x100``: 100 concurrent ``thread_sensitive=False`` calls (time per call).
* ``a2s hot``: ``async_to_sync(g)()`` from a ``sync_to_async`` worker (runs on the outer loop).
* ``a2s cold``: ``async_to_sync(g)()`` from a plain thread with no loop.
* ``round trip``: async → sync → async → sync (``s2a(a2s(s2a(f)))``).
* ``Local get+set``: one attribute write and one read on a ``Local()``, inside a task.

``--spin-check`` measures what the workers' spin before parking (``wsgi2asgi.threads.SPIN``)
costs the event loop instead: rounds with the spin off and on, interleaved, while four
"ticker" tasks keep the loop busy (a little Python and ``sleep(0)`` per tick) and some tasks
make back-to-back ``sync_to_async`` calls; it prints the loop's ticks per second and the calls
per second, off and on (medians of the per-round ratios), and the process CPU used over one
idle second after a burst of calls.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asgiref.local  # noqa: E402
import asgiref.sync  # noqa: E402

import wsgi2asgi.bridges  # noqa: E402
import wsgi2asgi.local  # noqa: E402
import wsgi2asgi.threads  # noqa: E402

# The Local class that goes with each bridges module.
LOCALS: dict[ModuleType, type[Any]] = {
    wsgi2asgi.bridges: wsgi2asgi.local.Local,
    asgiref.sync: asgiref.local.Local,
}


def f() -> int:
    return 1


async def g() -> int:
    return 1


async def s2a_sequential(mod: ModuleType, n: int, sensitive: bool) -> float:
    call = mod.sync_to_async(f, thread_sensitive=sensitive)
    start = time.perf_counter()
    for _ in range(n):
        await call()
    return (time.perf_counter() - start) / n


async def s2a_concurrent(mod: ModuleType, n: int) -> float:
    call = mod.sync_to_async(f, thread_sensitive=False)
    start = time.perf_counter()
    for _ in range(n // 100):
        await asyncio.gather(*(call() for _ in range(100)))
    return (time.perf_counter() - start) / n


async def a2s_hot(mod: ModuleType, n: int) -> float:
    def in_worker() -> float:
        call = mod.async_to_sync(g)
        start = time.perf_counter()
        for _ in range(n):
            call()
        return (time.perf_counter() - start) / n

    result: float = await mod.sync_to_async(in_worker)()
    return result


async def a2s_cold(mod: ModuleType, n: int) -> float:
    def plain_thread() -> float:
        call = mod.async_to_sync(g)
        start = time.perf_counter()
        for _ in range(n):
            call()
        return (time.perf_counter() - start) / n

    # A genuinely plain thread: not a loop's executor thread, no context copied into it.
    results: list[float] = []
    thread = threading.Thread(target=lambda: results.append(plain_thread()))
    thread.start()
    await asyncio.to_thread(thread.join)
    return results[0]


async def round_trip(mod: ModuleType, n: int) -> float:
    inner = mod.sync_to_async(f)

    async def middle() -> int:
        result: int = await inner()
        return result

    outer = mod.sync_to_async(mod.async_to_sync(middle))
    start = time.perf_counter()
    for _ in range(n):
        await outer()
    return (time.perf_counter() - start) / n


async def local_get_set(mod: ModuleType, n: int) -> float:
    local = LOCALS[mod]()
    start = time.perf_counter()
    for i in range(n):
        local.value = i
        _ = local.value
    return (time.perf_counter() - start) / n


CASES: list[tuple[str, Callable[[ModuleType, int], Any], int]] = [
    ("s2a sensitive", lambda m, n: s2a_sequential(m, n, True), 3000),
    ("s2a pool", lambda m, n: s2a_sequential(m, n, False), 3000),
    ("s2a pool x100", s2a_concurrent, 3000),
    ("a2s hot", a2s_hot, 2000),
    ("a2s cold", a2s_cold, 1000),
    ("round trip", round_trip, 1000),
    ("Local get+set", local_get_set, 100000),
]


@dataclass
class Load:
    """One ``--spin-check`` configuration: callers of ``func`` beside busy ticker tasks."""

    label: str
    callers: int
    func: Callable[[], object]
    thread_sensitive: bool = False
    tickers: int = 4


def some_work() -> int:
    return sum(range(300))


LOADS = [
    Load("1 caller, pool", 1, f),
    Load("1 caller, sensitive", 1, f, thread_sensitive=True),
    Load("4 callers, pool", 4, f),
    Load("4 callers, pool, work", 4, some_work),
    Load("8 callers, no tickers", 8, f, tickers=0),
]


async def busy_loop_rates(load: Load, seconds: float) -> tuple[float, float]:
    """Ticks per second of the ticker tasks, and calls per second, run side by side."""
    stop = asyncio.Event()
    ticks = calls = 0

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            sum(range(100))
            ticks += 1
            await asyncio.sleep(0)

    async def caller() -> None:
        nonlocal calls
        call = wsgi2asgi.bridges.sync_to_async(load.func, thread_sensitive=load.thread_sensitive)
        while not stop.is_set():
            await call()
            calls += 1

    tasks = [asyncio.create_task(ticker()) for _ in range(load.tickers)]
    tasks += [asyncio.create_task(caller()) for _ in range(load.callers)]
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return ticks / elapsed, calls / elapsed


async def idle_cpu_ms() -> float:
    """Process CPU over one idle second, right after a burst of pool and sensitive calls."""
    call = wsgi2asgi.bridges.sync_to_async(f, thread_sensitive=False)
    await asyncio.gather(*(call() for _ in range(50)))
    await wsgi2asgi.bridges.sync_to_async(f)()
    start = time.process_time()
    await asyncio.sleep(1.0)
    return (time.process_time() - start) * 1e3


async def spin_check(rounds: int) -> None:
    spin = wsgi2asgi.threads.SPIN
    print(f"spin {spin * 1e6:.0f} us; on/off ratios are medians of per-round ratios")
    print(f"{'load':<24}{'ticks/s off':>12}{'on':>10}{'on/off':>8}", end="")
    print(f"{'calls/s off':>13}{'on':>9}{'on/off':>8}")
    for load in LOADS:
        rates: dict[float, list[tuple[float, float]]] = {0.0: [], spin: []}
        for round_number in range(rounds):
            for setting in (0.0, spin) if round_number % 2 == 0 else (spin, 0.0):
                wsgi2asgi.threads.SPIN = setting
                rates[setting].append(await busy_loop_rates(load, 0.3))
        wsgi2asgi.threads.SPIN = spin
        off = [statistics.median(r[i] for r in rates[0.0]) for i in (0, 1)]
        on = [statistics.median(r[i] for r in rates[spin]) for i in (0, 1)]
        ratio = [
            statistics.median(
                a[i] / b[i] for a, b in zip(rates[spin], rates[0.0], strict=True) if b[i]
            )
            if load.tickers or i
            else float("nan")
            for i in (0, 1)
        ]
        print(
            f"{load.label:<24}{off[0]:>12,.0f}{on[0]:>10,.0f}{ratio[0]:>7.2f}x"
            f"{off[1]:>13,.0f}{on[1]:>9,.0f}{ratio[1]:>7.2f}x",
            flush=True,
        )
    for setting in (0.0, spin):
        wsgi2asgi.threads.SPIN = setting
        used = [await idle_cpu_ms() for _ in range(3)]
        shown = ", ".join(f"{ms:.2f}" for ms in used)
        print(f"idle CPU over 1 s after a burst, spin {setting * 1e6:.0f} us: {shown} ms")
    wsgi2asgi.threads.SPIN = spin


async def run_case(
    mods: dict[str, ModuleType], case: Callable[[ModuleType, int], Any], n: int, rounds: int
) -> tuple[dict[str, float], float]:
    """Median time per call of each module, and the median of the per-round ratios.

    Each round runs ours and asgiref back to back (the order alternating between rounds), so
    a burst of load from elsewhere on the machine hits both sides of one ratio.
    """
    times: dict[str, list[float]] = {name: [] for name in mods}
    ratios: list[float] = []
    names = list(mods)
    for round_number in range(rounds):
        order = names if round_number % 2 == 0 else names[::-1]
        for name in order:
            await case(mods[name], max(n // 10, 100))  # warm up
            times[name].append(await case(mods[name], n))
        ratios.append(times["wsgi2asgi"][-1] / times["asgiref"][-1])
    return {name: statistics.median(t) for name, t in times.items()}, statistics.median(ratios)


async def main_async(rounds: int, only: str | None, spin: bool) -> None:
    if spin:
        await spin_check(rounds)
        return
    mods = {"wsgi2asgi": wsgi2asgi.bridges, "asgiref": asgiref.sync}
    print(f"{'case':<16}{'wsgi2asgi us':>14}{'asgiref us':>12}{'ours/asgiref':>14}")
    for label, case, n in CASES:
        if only is not None and only not in label:
            continue
        medians, ratio = await run_case(mods, case, n, rounds)
        ours, theirs = medians["wsgi2asgi"] * 1e6, medians["asgiref"] * 1e6
        print(f"{label:<16}{ours:>14.1f}{theirs:>12.1f}{ratio:>13.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", help="run the cases whose label contains this text")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--spin-check", action="store_true", help="the spin's cost to the loop")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {'uvloop' if args.uvloop else 'asyncio'}")
    if args.uvloop:
        import uvloop

        uvloop.run(main_async(args.rounds, args.only, args.spin_check))
    else:
        asyncio.run(main_async(args.rounds, args.only, args.spin_check))


if __name__ == "__main__":
    main()
