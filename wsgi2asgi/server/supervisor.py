"""``--workers N``: one listening socket, N server processes, restarted when they die.

Rules this module keeps:

* The supervisor binds the socket once and hands it to every worker (``--fd``), so all
  workers accept on the same port and a restart never drops the listener.
* A worker that exits while the supervisor is running is restarted (at most once a second per
  slot, so a crash loop does not spin); its exit status is logged.
* SIGTERM/SIGINT/SIGHUP reach the supervisor, which forwards SIGTERM to every worker (each
  shuts down gracefully: in-flight requests finish, lifespan shutdown runs), waits for them,
  and exits 0. Workers still alive after the graceful timeout plus 5 s are killed.
* Each worker runs its own lifespan, like uvicorn's and gunicorn's workers.

Example::

    wsgi2asgi serve myproject.wsgi:application --workers 4
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType, TracebackType
from typing import Any

from wsgi2asgi.server import binding

__all__ = ["StopSignals", "bind", "reap", "supervise", "worker_command"]

logger = logging.getLogger("wsgi2asgi.error")

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def bind(host: str, port: int, uds: str | None, backlog: int) -> socket.socket:
    """Bind and listen (:func:`wsgi2asgi.server.binding.bind`); the socket is inheritable so
    workers can use it. A host with several addresses is served on the first one.

    Raises:
        ConfigError: one line naming the address and why it cannot be listened on.
    """
    first, *others = binding.bind(host, port, uds, backlog)
    for sock in others:
        sock.close()
    first.set_inheritable(True)
    return first


def supervise(
    worker_argv: Sequence[str],
    workers: int,
    sock: socket.socket,
    graceful_timeout: float | None,
) -> int:
    """Run ``workers`` copies of ``worker_argv + ["--fd", FD]`` until a stop signal.

    Returns:
        0 after a signal-initiated stop.
    """
    fd = sock.fileno()
    argv = [*worker_argv, "--fd", str(fd)]

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, pass_fds=[fd])

    with StopSignals(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as stop:
        logger.info("Started supervisor process [%d]", os.getpid())
        slots = [spawn() for _ in range(workers)]
        started = [time.monotonic()] * workers
        logger.info(
            "supervisor %d started %d workers: %s",
            os.getpid(),
            workers,
            " ".join(str(p.pid) for p in slots),
        )
        try:
            while not stop.requested:
                time.sleep(0.1)
                for index, process in enumerate(slots):
                    status = process.poll()
                    if status is None or stop.requested:
                        continue
                    if status == 0:  # it chose to stop (--limit-max-requests)
                        logger.info("worker %d finished; starting a new one", process.pid)
                    else:
                        logger.warning(
                            "worker %d exited with %s; restarting it", process.pid, status
                        )
                    if time.monotonic() - started[index] < 1.0:
                        time.sleep(1.0)
                    slots[index] = spawn()
                    started[index] = time.monotonic()
        finally:
            logger.info("Shutting down: stopping %d workers", len(slots))
            for process in slots:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + (graceful_timeout or 30.0) + 5.0
            for process in slots:
                reap(process, max(0.0, deadline - time.monotonic()))
            sock.close()
            logger.info("Finished supervisor process [%d]", os.getpid())
    return 0


class StopSignals:
    """Note the stop signals a supervising process gets, instead of dying of them.

    The supervisor and the reloader poll ``requested`` in their loops, then stop their
    children in order. Only the main thread can install signal handlers.

    Example::

        with StopSignals(signal.SIGTERM, signal.SIGINT) as stop:
            while not stop.requested:
                time.sleep(0.1)         # watch the children
        # the previous handlers are back

    Args:
        signals: the signals that ask for a stop.
    """

    def __init__(self, *signals: signal.Signals) -> None:
        self.signals = signals
        self.requested = False
        self._previous: dict[signal.Signals, _Handler] = {}

    def __enter__(self) -> StopSignals:
        self._previous = {sig: signal.signal(sig, self._note) for sig in self.signals}
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def reap(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait up to ``timeout`` seconds for a server process to exit; kill it after that."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        logger.error("server process %d did not stop in time; killing it", process.pid)
        process.kill()
        process.wait()


def worker_command(argv: Sequence[str], *, multiprocess: bool = True) -> list[str]:
    """The command line of one worker: the same ``serve`` arguments without ``--workers``.

    With ``multiprocess`` (several workers serve the same app), the worker is told so, and
    its WSGI apps see ``wsgi.multiprocess`` true (PEP 3333).
    """
    cleaned: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        cleaned.append(arg)
    flag = ["--multiprocess"] if multiprocess else []
    return [sys.executable, "-m", "wsgi2asgi", *cleaned, *flag]
