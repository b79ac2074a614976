"""Leak checks by allocated-block count: no timing, so they hold on a noisy machine.

``sys.getallocatedblocks()`` counts every block Python's allocator holds, including objects
the garbage collector does not track (a dict of ints, a string). A per-request leak of even one
block shows as hundreds per round, growing round after round; caches that fill once, pool
threads started late and objects in flight do not.
"""

from __future__ import annotations

import gc
import statistics
import sys
from collections.abc import Callable

#: Blocks a round may add, at the median, without counting as a leak: caches that fill slowly
#: (the WSGI stack plateaus at ~600 blocks after 60,000 requests) and freelists.
SLACK = 100


def block_growth(run_round: Callable[[], object], rounds: int = 4) -> list[int]:
    """Run ``run_round`` once to warm up, then ``rounds`` more; blocks held after each."""
    run_round()
    gc.collect()
    base = sys.getallocatedblocks()
    growth = []
    for _ in range(rounds):
        run_round()
        gc.collect()
        growth.append(sys.getallocatedblocks() - base)
    return growth


def assert_no_leak(run_round: Callable[[], object], rounds: int = 4) -> None:
    """Fail if ``run_round`` leaves memory behind that grows with each round.

    What each round adds is compared at the median, so one round that ends with work still in
    flight (a spike that the next round gives back) does not fail the check, while a leak (the
    same growth every round) does.

    Example::

        assert_no_leak(lambda: asyncio.run(send_requests(600)))
    """
    growth = block_growth(run_round, rounds)
    added = [after - before for before, after in zip([0, *growth], growth, strict=False)]
    assert statistics.median(added) < SLACK, f"allocated blocks after each round: {growth}"
