"""Runner threads: long-lived event loops for ``async_to_sync`` called from plain threads.

asgiref starts a new thread and a new event loop for every such call (``asyncio.run`` in a
fresh ``ThreadPoolExecutor``); a runner is a daemon thread with its own loop, kept and reused.
Rules this module keeps:

* A runner's loop runs forever until ``close()``; then, like ``asyncio.run``, it cancels what is
  left, finalises async generators, shuts down its default executor and closes.
* ``RunnerPool`` hands each caller a runner of its own (never two calls on one runner at once),
  keeps up to ``keep`` idle ones for reuse, and closes the rest. The pool closes at exit.
* Tasks a call leaves behind are cancelled when it returns (``cancel_leftovers``), as
  ``asyncio.run`` would, so a reused loop starts each call clean.
* Across ``fork()``: the runner threads do not exist in the child, so every ``RunnerPool``
  forgets its idle runners there (``os.register_at_fork``) and makes new ones on demand. The
  old runners' loops still look running in the child, so they can be neither used nor closed:
  they stay referenced (``_ORPHANED``), as collecting them would warn of unclosed loops.

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
from typing import Any

__all__ = ["Runner", "RunnerPool", "cancel_leftovers", "finish_loop", "runners"]

logger = logging.getLogger(__name__)


class Runner:
    """A background thread with its own event loop, for ``async_to_sync`` from plain threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="wsgi2asgi-runner", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # Stopped for good (close()): clean up like asyncio.run does.
        try:
            finish_loop(self.loop, report="unhandled exception in a task left by async_to_sync")
        finally:
            asyncio.set_event_loop(None)
            self.loop.close()

    def close(self) -> None:
        """Stop the loop (it cleans up like ``asyncio.run``) and join the thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not threading.current_thread():
            self.thread.join()


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
        return Runner()

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
        _ORPHANED.extend(self._idle)
        self._idle = []
        self._lock = threading.Lock()


#: Every RunnerPool, emptied in a fork child (weakly held).
_POOLS: weakref.WeakSet[RunnerPool] = weakref.WeakSet()
#: Runners inherited through fork(): unusable in the child, kept so nothing finalises them.
_ORPHANED: list[Runner] = []


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
