"""Runners: event loops, each running forever on a daemon thread of its own.

The one "event loop on a thread" class of the package. ``async_to_sync`` called from plain
threads takes runners from a pool, where asgiref starts a new thread and a new event loop for
every call (``asyncio.run`` in a fresh ``ThreadPoolExecutor``); ``asgi_to_wsgi`` keeps one per
adapter, where every request is a task. Rules this module keeps:

* A runner's loop runs forever until ``close()``; then, like ``asyncio.run``, it cancels what is
  left, finalises async generators, shuts down its default executor and closes. With a
  ``stop_timeout`` each of those waits is bounded, and so is ``close()``'s wait for the thread:
  what does not stop in time is left behind, with a warning, never waited for forever.
* An exception that escapes the loop (an app let ``SystemExit`` out of a task) is logged, and
  the loop is still cleaned up and closed; ``on_exit`` runs on the thread after that, whatever
  ended the loop.
* ``RunnerPool`` hands each caller a runner of its own (never two calls on one runner at once),
  keeps up to ``keep`` idle ones for reuse, and closes the rest. The pool closes at exit.
* Tasks a call leaves behind are cancelled when it returns (``cancel_leftovers``), as
  ``asyncio.run`` would, so a reused loop starts each call clean.
* Across ``fork()``: the runner threads do not exist in the child, so every ``RunnerPool``
  forgets its idle runners there (``os.register_at_fork``) and makes new ones on demand. The
  old runners' loops still look running in the child, so they can be neither used nor closed:
  they stay referenced (:func:`orphan`), as collecting them would warn of unclosed loops.

Example::

    runner = runners.take()
    future = asyncio.run_coroutine_threadsafe(coro(), runner.loop)
    result = future.result()
    runners.give(runner)
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["Runner", "RunnerPool", "cancel_leftovers", "finish_loop", "orphan", "runners"]

logger = logging.getLogger(__name__)


class Runner:
    """An event loop running forever on a daemon thread of its own, until :meth:`close`.

    Example::

        runner = Runner("my-loop", stop_timeout=5)
        runner.run(main(), timeout=10)       # on the runner's loop; this thread waits
        runner.close()

    Args:
        name: the thread's name.
        stop_timeout: how long each clean-up step of ``close()`` may take (cancelled tasks,
            the default executor); ``close()`` then waits ``3 * stop_timeout + 1`` seconds at
            most for the thread. ``None``: as long as it takes.
        on_exit: called on the runner's thread once its loop is closed, whatever stopped it.
        report: the message under which exceptions of the tasks cancelled at close go to the
            loop's exception handler; ``None`` when their owner reports them.
    """

    def __init__(
        self,
        name: str = "wsgi2asgi-runner",
        *,
        stop_timeout: float | None = None,
        on_exit: Callable[[], None] | None = None,
        report: str | None = None,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self._stop_timeout = stop_timeout
        self._on_exit = on_exit
        self._report = report
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        ready = threading.Event()
        self.loop.call_soon(ready.set)
        self.thread.start()
        ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        except BaseException:  # an app let KeyboardInterrupt or SystemExit out of a task
            logger.exception("the event loop of %s stopped on an error", self.thread.name)
        finally:
            # Stopped for good (close(), or the error above): clean up like asyncio.run does.
            try:
                finish_loop(self.loop, timeout=self._stop_timeout, report=self._report)
            finally:
                asyncio.set_event_loop(None)
                self.loop.close()
                if self._on_exit is not None:
                    self._on_exit()

    def call_soon(self, callback: Callable[..., object], *args: Any) -> bool:
        """Schedule ``callback(*args)`` on the loop from any thread; False if it is closed."""
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            return False
        return True

    def run(self, coroutine: Coroutine[Any, Any, object], timeout: float | None) -> None:
        """Run ``coroutine`` on the loop and wait for it; cancel it on ``TimeoutError``.

        Raises:
            TimeoutError: it did not finish within ``timeout`` seconds.
            RuntimeError: the loop is closed.
        """
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        except RuntimeError:
            coroutine.close()
            raise
        try:
            future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        """Stop the loop (it cleans up like ``asyncio.run``) and join the thread.

        From the runner's own thread it only stops the loop. Idempotent.
        """
        stopping = self.call_soon(self.loop.stop)
        if self.is_current():
            return
        if stopping:
            limit = None if self._stop_timeout is None else 3 * self._stop_timeout + 1
            self.thread.join(limit)
        if self.thread.is_alive():
            logger.warning("the event loop thread %s did not stop; left running", self.thread.name)

    def is_current(self) -> bool:
        """Whether the caller runs on this runner's thread."""
        return threading.current_thread() is self.thread


class RunnerPool:
    """Idle runners kept for reuse (at most ``keep``); more are made when threads call at once."""

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self._idle: list[Runner] = []
        self._lock = threading.Lock()
        self._closed = False
        _POOLS.add(self)

    def take(self) -> Runner:
        """A runner for one call: an idle one, else a new one."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return Runner(report="unhandled exception in a task left by async_to_sync")

    def give(self, runner: Runner) -> None:
        """Return ``runner`` after a call: kept if there is room, else closed."""
        with self._lock:
            if not self._closed and len(self._idle) < self.keep:
                self._idle.append(runner)
                return
        runner.close()

    def close(self) -> None:
        """Close every idle runner; runners given back later are closed too."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for runner in idle:
            runner.close()

    def _after_fork(self) -> None:
        """In a fork child: the idle runners' threads are gone; make new runners on demand."""
        for runner in self._idle:
            orphan(runner)
        self._idle = []
        self._lock = threading.Lock()


#: Every RunnerPool, emptied in a fork child (weakly held).
_POOLS: weakref.WeakSet[RunnerPool] = weakref.WeakSet()
#: Runners inherited through fork(): unusable in the child, kept so nothing finalises them.
_ORPHANED: list[Runner] = []


def orphan(runner: Runner) -> None:
    """In a fork child: keep ``runner``, whose thread did not survive the fork, for good.

    Its loop still looks running there, so it can be neither used nor closed, and collecting
    it would warn of an unclosed loop.
    """
    _ORPHANED.append(runner)


def _forget_runners_after_fork() -> None:
    for pool in list(_POOLS):
        pool._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_runners_after_fork)


#: The process-wide pool ``async_to_sync`` takes runners from; closed at interpreter exit.
runners = RunnerPool()
atexit.register(runners.close)


def finish_loop(
    loop: asyncio.AbstractEventLoop, *, timeout: float | None = None, report: str | None = None
) -> None:
    """What ``asyncio.run`` does once its coroutine is done, for a loop that has stopped.

    Cancel the tasks left and wait for them, close async generators, stop the default
    executor; each wait at most ``timeout`` seconds (a task that ignores cancellation is left
    behind, with a warning). Exceptions of the cancelled tasks go to the loop's exception
    handler with the message ``report``; without one they are only retrieved (their owner has
    reported them).

    Example::

        loop.run_forever()      # until loop.stop()
        finish_loop(loop, timeout=5)
        loop.close()
    """
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        done, pending = loop.run_until_complete(asyncio.wait(tasks, timeout=timeout))
        for task in done:
            if task.cancelled() or task.exception() is None or report is None:
                continue
            loop.call_exception_handler(
                {"message": report, "exception": task.exception(), "task": task}
            )
        if pending:
            logger.warning("%d task(s) ignored cancellation; left behind", len(pending))
    loop.run_until_complete(loop.shutdown_asyncgens())
    try:
        loop.run_until_complete(asyncio.wait_for(loop.shutdown_default_executor(), timeout))
    except TimeoutError:
        logger.warning("a loop's default executor did not stop within %s s", timeout)


async def cancel_leftovers(before: set[asyncio.Task[Any]]) -> None:
    """Cancel the tasks of the running loop created since ``before``, and wait for them."""
    me = asyncio.current_task()
    leftover = {t for t in asyncio.all_tasks() if t not in before and t is not me}
    if leftover:
        for task in leftover:
            task.cancel()
        await asyncio.gather(*leftover, return_exceptions=True)
