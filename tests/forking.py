"""Run a function in a real ``os.fork()`` child and get its result back, with a bounded wait.

The child runs ``body``, pickles what it returned (or the repr of what it raised) into a pipe and
leaves with ``os._exit``, so nothing of pytest runs twice. The parent reads the pipe until EOF;
a child that has not finished within ``timeout`` seconds is killed and the test fails, so a
hang in the child is a failure, never a hung suite.

Python 3.12+ warns (``DeprecationWarning``) when a process with threads forks; a test that
forks after starting threads says so with ``@forks_with_threads``.

Example::

    @forks_with_threads
    def test_child() -> None:
        assert in_forked_child(lambda: 1 + 1) == 2
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
from collections.abc import Callable

import pytest

__all__ = ["forks_with_threads", "in_forked_child", "needs_fork", "wait_for_exit"]

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

#: "This process (pid=N) is multi-threaded, use of fork() may lead to deadlocks in the child."
forks_with_threads = pytest.mark.filterwarnings(
    r"ignore:This process \(pid=\d+\) is multi-threaded, use of fork\(\):DeprecationWarning"
)


def in_forked_child(body: Callable[[], object], timeout: float = 15.0) -> object:
    """Fork; return what ``body()`` returned in the child (it must pickle).

    Raises:
        pytest.fail.Exception: the child raised, died, or did not finish within ``timeout``.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(body, read_end, write_end)  # never returns
    os.close(write_end)
    try:
        data = _read_until_eof(read_end, time.monotonic() + timeout)
    finally:
        os.close(read_end)
        if data is None:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    if data is None:
        pytest.fail(f"the forked child did not finish within {timeout} s (it hangs)")
    if not data:
        pytest.fail("the forked child died without reporting")
    outcome, value = pickle.loads(data)
    if outcome != "returned":
        pytest.fail(f"the forked child raised {value}")
    return value


def _child(body: Callable[[], object], read_end: int, write_end: int) -> None:
    try:
        os.close(read_end)
        try:
            report = ("returned", body())
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, whatever it is
            report = ("raised", repr(exc))
        os.write(write_end, pickle.dumps(report))
    finally:
        os._exit(0)


def _read_until_eof(fd: int, deadline: float) -> bytes | None:
    chunks: list[bytes] = []
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
    return None


def wait_for_exit(pid: int, timeout: float = 15.0) -> int | None:
    """Wait for child ``pid`` to end (through a pidfd); its wait status, or None if it did not.

    A child still running after ``timeout`` seconds is killed (and reaped).
    """
    pidfd = os.pidfd_open(pid)
    try:
        ended, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    if not ended:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return None
    return os.waitpid(pid, 0)[1]
