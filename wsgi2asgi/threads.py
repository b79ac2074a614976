"""The worker threads behind the bridges: serial workers, a bounded pool and caller queues.

Rules this module keeps:

* A *work item* is a zero-argument callable. Every executor here runs items in FIFO order and
  never lets an exception escape into the thread's loop: items report their own outcome.
* ``SerialWorker``: one daemon thread, one queue; what thread-sensitive code runs on.
* ``Pool``: up to ``max_workers`` daemon threads started on demand; idle threads exit after
  ``idle_timeout`` seconds, so a burst does not leave threads behind for ever.
* A worker that runs out of work spins for a few tens of microseconds before it parks
  (``Spinner``): in a run of calls it takes the next item without an OS wake-up. The spin
  yields the CPU and the GIL every turn, backs off when it finds nothing or the loop thread
  is busy, and ends: an idle worker uses no CPU. A ``Pool`` has one spinner at a time, and
  an item submitted while it spins goes straight to it, waking no parked thread; so does one
  submitted after an item said it is about to report (``finishing``), typically the caller's
  next call, which would otherwise wake a parked thread while this one is still returning.
* ``CallerQueue``: the queue of a thread that is blocked in ``async_to_sync``. While it waits
  for its coroutine, the thread runs the items sent to it (thread-sensitive calls the coroutine
  makes), then returns when the coroutine is done. After that it is *closed*; items sent later
  (by a task that outlived the call) go to the queue's ``fallback`` instead of failing.
  This fixes asgiref's "CurrentThreadExecutor already quit or is broken".
* Across ``fork()``: only the forking thread exists in the child. Every ``SerialWorker`` and
  ``Pool`` forgets its threads, its queue (the parent's items stay the parent's) and its lock
  there (``os.register_at_fork``), and starts new threads on the next ``submit``. If the
  forking thread was one of their workers, it stops serving once its current item returns
  (a child that returns from the function it forked in has nothing left to do).

Example::

    worker = SerialWorker("demo")
    worker.submit(lambda: print("runs on", threading.current_thread().name))
    worker.shutdown()
"""

from __future__ import annotations

import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "BUSY_BACKOFF",
    "MAX_BACKOFF",
    "SPIN",
    "CallerQueue",
    "Executor",
    "Pool",
    "SerialWorker",
    "Spinner",
    "finishing",
]

WorkItem = Callable[[], object]
_STOP = object()
#: Every SerialWorker and Pool, restarted in a fork child (weakly held: they come and go).
_FORK_AWARE: weakref.WeakSet[SerialWorker | Pool] = weakref.WeakSet()


#: How long (seconds) a worker thread that ran out of work keeps looking for more before it
#: parks (blocks on its queue). Waking a parked thread is an OS wake-up (50-90 µs on a busy VM);
#: a spinning one takes the next item at once. 0 turns spinning off.
SPIN = 50e-6
#: After spins that found nothing, a worker parks at once up to this many times in a row.
MAX_BACKOFF = 1024
#: How many times it parks at once after a spin that waited long for the GIL (at least).
BUSY_BACKOFF = 64
_pause: Callable[[], None] | None = getattr(os, "sched_yield", None)


class Spinner:
    """A worker thread's brief spin before it parks; it backs off when spinning does not pay.

    Each turn gives up the CPU and the GIL (``os.sched_yield`` releases the GIL), so the event
    loop runs while a worker spins. A spin that finds nothing within ``SPIN`` makes the next
    1, 2, 4, ... ``MAX_BACKOFF`` waits park at once. One whose turn waited longer than that for
    the GIL (a busy loop thread, which would make the worker wait for the GIL twice per item:
    up to the 5 ms switch interval each) starts that doubling at ``BUSY_BACKOFF``. A spin that
    finds work in time resets it. So an idle worker spins once, for ``SPIN`` at most, then
    uses no CPU.

    Example::

        spinner = Spinner()
        while True:
            if work.empty():
                spinner.wait(work.empty)
            work.get()()
    """

    __slots__ = ("_penalty", "_skip")

    def __init__(self) -> None:
        self._skip = 0
        self._penalty = 1

    def rests(self) -> bool:
        """Whether to park at once this time (backing off after spins that found nothing)."""
        if self._skip:
            self._skip -= 1
            return True
        return _pause is None or SPIN <= 0

    def wait(self, empty: Callable[[], bool]) -> None:
        """Spin while ``empty()``, unless resting; return when it is false or time is up."""
        if not self.rests():
            self.spin(empty)

    def spin(self, empty: Callable[[], bool]) -> None:
        """Spin while ``empty()``, for ``SPIN`` seconds at most (call when not resting)."""
        pause, clock = _pause, time.perf_counter
        deadline = clock() + SPIN
        while empty() and pause is not None and clock() < deadline:
            pause()
        late = clock() - deadline
        if late < 0:  # work came in time
            self._penalty = 1
            return
        if late > SPIN:  # a turn waited long for the GIL: the loop thread is busy
            self._penalty = max(self._penalty, BUSY_BACKOFF)
        self._skip = self._penalty
        self._penalty = min(2 * self._penalty, MAX_BACKOFF)


class Executor(Protocol):
    """Anything that accepts work items: ours, or a ``concurrent.futures`` executor's shape."""

    def submit(self, item: WorkItem, /) -> object:
        """Run ``item`` on a thread of this executor, eventually."""
        ...


class SerialWorker:
    """One daemon thread running work items one after the other, in submission order.

    Args:
        name: the thread's name (shown in logs and stack dumps).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False
        _FORK_AWARE.add(self)

    def submit(self, item: WorkItem, /) -> None:
        """Queue ``item``; start the thread on first use.

        Raises:
            RuntimeError: the worker was shut down.
        """
        with self._lock:
            if self._stopped:
                raise RuntimeError(f"{self.name} is shut down")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._queue.put(item)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the thread after the items already queued; join it when ``wait``."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            thread = self._thread
            if thread is not None:
                self._queue.put(_STOP)
        if thread is not None and wait and thread is not threading.current_thread():
            thread.join()

    @property
    def thread(self) -> threading.Thread | None:
        """The worker thread, once started."""
        return self._thread

    def _after_fork(self) -> None:
        """In a fork child: the thread is gone; a new one starts on the next ``submit``."""
        if self._thread is threading.current_thread():
            _stop_serving(self._queue)
        self._queue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread = None

    def _run(self) -> None:
        get, empty = self._queue.get, self._queue.empty
        spinner = Spinner()
        while True:
            if not _hushed() and empty():
                spinner.wait(empty)
            if (item := get()) is _STOP:
                return
            item()  # type: ignore[operator]
            del item


class Pool:
    """Up to ``max_workers`` threads sharing one queue; idle threads exit after a while.

    Example::

        pool = Pool("io", max_workers=8)
        pool.submit(lambda: urllib.request.urlopen(url).read())

    Args:
        name: prefix of the thread names.
        max_workers: the bound (default ``min(32, cpu + 4)``, like ``ThreadPoolExecutor``).
        idle_timeout: seconds an idle thread waits for work before it exits.
    """

    def __init__(self, name: str, max_workers: int | None = None, idle_timeout: float = 60.0):
        if max_workers is None:
            max_workers = min(32, (os.cpu_count() or 1) + 4)
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.name = name
        self.max_workers = max_workers
        self.idle_timeout = idle_timeout
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._counter = 0
        self._stopped = False
        # The hand of the one thread spinning for work, if any: submit() puts an item there
        # instead of in the queue, so no parked thread is woken for it.
        self._catch: list[WorkItem] | None = None
        # Whether spinning pays depends on the loop, not on the thread: one back-off for all.
        self._spinner = Spinner()
        _FORK_AWARE.add(self)

    def submit(self, item: WorkItem, /) -> None:
        """Queue ``item``; start a thread when none is idle and the bound allows."""
        with self._lock:
            if self._stopped:
                raise RuntimeError(f"{self.name} pool is shut down")
            catch = self._catch
            if catch is not None and not catch and self._queue.empty():  # FIFO: none older
                catch.append(item)  # the catching thread counts itself busy when it takes it
                return
            if self._idle > 0:
                self._idle -= 1
            elif len(self._threads) < self.max_workers:
                self._counter += 1
                name = f"{self.name}-{self._counter}"
                thread = threading.Thread(target=self._run, name=name, daemon=True)
                self._threads.add(thread)
                thread.start()
            self._queue.put(item)

    def shutdown(self, wait: bool = True) -> None:
        """Stop every thread after the queued items; join them when ``wait``."""
        with self._lock:
            self._stopped = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(_STOP)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()

    @property
    def size(self) -> int:
        """How many threads the pool has right now."""
        return len(self._threads)

    def _after_fork(self) -> None:
        """In a fork child: the threads are gone; new ones start on demand."""
        self._queue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = set()
        self._idle = 0
        self._catch = None

    def _run(self) -> None:
        work = self._queue
        get = work.get
        here = _here
        here.pool = self
        while True:
            # Items queued and none caught: straight to the queue (the common case under load).
            item = None if here.hand is None and not work.empty() else self._take_hand(here)
            if item is None:
                try:
                    item = get(timeout=self.idle_timeout)
                except queue.Empty:
                    if self._retire():
                        return
                    continue
            if item is _STOP:
                with self._lock:
                    self._threads.discard(threading.current_thread())
                return
            here.item = item
            item()  # type: ignore[operator]
            here.item = item = None
            with self._lock:
                if self._queue is not work:  # we forked in the item: this is the child
                    return
                self._idle += 1

    def _open_hand(self) -> list[WorkItem] | None:
        """Make the calling thread the pool's one catcher, unless there is one already.

        One at a time: more spinning threads would only fight for the GIL.
        """
        if self._catch is not None or not self._queue.empty():
            return None
        with self._lock:
            if self._catch is not None or not self._queue.empty():  # FIFO: none older
                return None
            hand: list[WorkItem] = []
            self._catch = hand
            return hand

    def _take_hand(self, here: _WorkerThread) -> object | None:
        """The item caught in this thread's hand, after spinning for one unless resting."""
        hand, here.hand = here.hand, None
        empty = self._queue.empty
        if not _hushed() and not hand and empty() and not self._spinner.rests():
            if hand is None:
                hand = self._open_hand()
            if hand is not None:
                caught = hand
                self._spinner.spin(lambda: not caught and empty())
        if hand is None:
            return None
        with self._lock:
            if self._catch is hand:
                self._catch = None
            if hand:  # counted idle after its last item (submit() left the count alone)
                self._idle -= 1
        return hand[0] if hand else None

    def _retire(self) -> bool:
        """After ``idle_timeout`` without work: leave the pool, unless work just came."""
        with self._lock:
            # An item may have been queued for us between the timeout and the lock.
            if self._idle > 0 and self._queue.empty():
                self._idle -= 1
                self._threads.discard(threading.current_thread())
                return True
        return False


class _WorkerThread(threading.local):
    """What a worker thread is doing (``pool``, ``item``, ``hand``: on a ``Pool`` thread)."""

    pool: Pool | None = None
    item: object = None
    hand: list[WorkItem] | None = None
    #: The item just run asked this thread not to spin before it parks next.
    hushed = False


_here = _WorkerThread()


def finishing(item: object, *, spin: bool = True) -> None:
    """Say that ``item``, running on this thread, is about to hand its result over.

    Call it last thing before an item reports (before its ``loop.call_soon_threadsafe``). On a
    ``Pool`` thread, an item submitted from then on (typically the caller's next call, made as
    soon as it has the result) comes straight to this thread, waking no parked one. With
    ``spin=False`` the thread neither does that nor spins before it parks next: for an event
    loop that a spinning worker slows down (uvloop takes the GIL once per callback, and a
    worker taking it between two callbacks makes the loop thread sleep and wake up again).

    Example::

        def item():
            result = work()
            finishing(item)
            loop.call_soon_threadsafe(future.set_result, result)
    """
    here = _here
    if not spin:
        here.hushed = True  # and no hand: without a spin this thread may well park first
    elif here.item is item and here.pool is not None and here.hand is None:
        here.hand = here.pool._open_hand()


def _hushed() -> bool:
    """Whether the item just run asked this thread not to spin (asked once: cleared here)."""
    here = _here
    if here.hushed:
        here.hushed = False
        return True
    return False


def _stop_serving(old: queue.SimpleQueue[object]) -> None:
    """Drop the parent's items from ``old``, then make the thread serving it stop."""
    while True:
        try:
            old.get_nowait()
        except queue.Empty:
            break
    old.put(_STOP)


def _restart_after_fork() -> None:
    for executor in list(_FORK_AWARE):
        executor._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_after_fork)


class CallerQueue:
    """The work queue of a thread blocked in ``async_to_sync``.

    Args:
        fallback: where items go once the waiting is over.
    """

    __slots__ = ("_queue", "closed", "fallback", "thread")

    def __init__(self, fallback: Executor) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.closed = False
        self.fallback = fallback
        self.thread = threading.current_thread()

    def submit(self, item: WorkItem, /) -> None:
        """Run ``item`` on the waiting thread, or on ``fallback`` once it stopped waiting."""
        if self.closed:
            self.fallback.submit(item)
            return
        self._queue.put(item)
        if self.closed:
            # Closed while we queued: serve() may already have drained and returned. Take the
            # item back if it is still there (it runs exactly once either way).
            self._drain_to_fallback()

    def done(self) -> None:
        """Wake the waiting thread: its coroutine has finished (thread-safe)."""
        self._queue.put(_STOP)

    def serve(self) -> None:
        """Run items until ``done()``; then close, sending late items to ``fallback``."""
        get, empty = self._queue.get, self._queue.empty
        spinner = Spinner()
        while True:
            if not _hushed() and empty():
                spinner.wait(empty)
            if (item := get()) is _STOP:
                break
            item()  # type: ignore[operator]
            del item
        self.closed = True
        self._drain_to_fallback()

    def _drain_to_fallback(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                self.fallback.submit(item)  # type: ignore[arg-type]
