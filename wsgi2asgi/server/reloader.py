"""``--reload``: restart the server when a ``.py`` file changes (development only).

Polls modification times (no extra dependency, no inotify): every ``interval`` seconds the
``.py`` files under the watched directories are listed; on any change the server process gets
SIGTERM (a graceful shutdown), and a new one is started. A server that fails to start (a syntax
error) is started again after the next change. SIGTERM/SIGINT stop the reloader and its server.

Example::

    wsgi2asgi serve myproject.asgi:application --reload
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence

from wsgi2asgi.server.supervisor import StopSignals, reap

__all__ = ["run_with_reload", "snapshot"]

logger = logging.getLogger("wsgi2asgi.error")

_SKIP = {".git", ".venv", "venv", "__pycache__", "node_modules", ".mypy_cache", ".ruff_cache"}


def snapshot(directories: Sequence[str]) -> dict[str, float]:
    """Modification times of every ``.py`` file under ``directories``."""
    times: dict[str, float] = {}
    for directory in directories:
        for root, dirs, files in os.walk(directory):
            dirs[:] = [d for d in dirs if d not in _SKIP and not d.endswith(".egg-info")]
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(root, name)
                    try:
                        times[path] = os.stat(path).st_mtime
                    except OSError:
                        continue
    return times


def run_with_reload(argv: Sequence[str], directories: Sequence[str], interval: float = 0.5) -> int:
    """Run ``argv`` as the server process and restart it whenever a watched file changes."""
    with StopSignals(signal.SIGTERM, signal.SIGINT) as stop:
        before = snapshot(directories)
        process = subprocess.Popen(list(argv))
        logger.info("reloader %d watching %s", os.getpid(), ", ".join(directories))
        try:
            while not stop.requested:
                time.sleep(interval)
                now = snapshot(directories)
                if now == before:
                    continue
                changed = sorted(
                    p for p in now.keys() | before.keys() if now.get(p) != before.get(p)
                )
                before = now
                logger.info("changed: %s; restarting", ", ".join(changed[:5]))
                _stop(process)
                process = subprocess.Popen(list(argv))
        finally:
            _stop(process)
    return 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        reap(process, 30)
