"""``--reload``: restart the server when a watched file changes (development only).

Rules this module keeps:

* Watched: files under ``--reload-dir`` (default: ``--app-dir``) whose name matches ``*.py``
  or a ``--reload-include`` glob, and neither it nor a directory above it (below the watched
  one) matches a ``--reload-exclude`` glob or :data:`ALWAYS_EXCLUDED` (hidden directories,
  ``__pycache__``, virtualenvs, ``node_modules``).
* With ``watchfiles`` installed (the library uvicorn uses: OS notifications, no polling), the
  reloader waits on it; without, it lists modification times every ``--reload-delay`` seconds.
  Either way the changes of one save (an editor writes several files) make one restart.
* On a change the server process gets SIGTERM (a graceful shutdown) and a new one is started.
  A server that fails to start (a syntax error) is started again after the next change.
  SIGTERM/SIGINT stop the reloader and its server.

Example::

    wsgi2asgi serve myproject.asgi:application --reload --reload-include '*.html'
"""

from __future__ import annotations

import fnmatch
import importlib.util
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

from wsgi2asgi.server.supervisor import StopSignals, reap

__all__ = ["ALWAYS_EXCLUDED", "FileFilter", "run_with_reload", "snapshot"]

logger = logging.getLogger("wsgi2asgi.error")

#: Never watched, whatever the flags say: tool and cache directories.
ALWAYS_EXCLUDED = (".*", "__pycache__", "venv", "node_modules", "*.egg-info", "*.py[cod]")


class FileFilter:
    """Which paths under the watched directories a change counts for.

    Example::

        watched = FileFilter(["src"], includes=["*.html"], excludes=["*_test.py"])
        watched("src/app/views.py"), watched("src/.git/HEAD")       # (True, False)
    """

    def __init__(
        self, directories: Sequence[str], includes: Sequence[str], excludes: Sequence[str]
    ) -> None:
        self.roots = [os.path.abspath(d) for d in directories]
        self.includes = ("*.py", *includes)
        self.excludes = (*ALWAYS_EXCLUDED, *excludes)

    def __call__(self, path: str) -> bool:
        path = os.path.abspath(path)
        parts = self._parts_below_root(path)
        if any(fnmatch.fnmatch(part, glob) for part in parts for glob in self.excludes):
            return False
        return any(fnmatch.fnmatch(parts[-1], glob) for glob in self.includes)

    def skips_directory(self, name: str) -> bool:
        """Whether a directory called ``name`` is left out (not walked when polling)."""
        return any(fnmatch.fnmatch(name, glob) for glob in self.excludes)

    def _parts_below_root(self, path: str) -> list[str]:
        for root in self.roots:
            if path.startswith(root + os.sep):
                return path[len(root) + 1 :].split(os.sep)
        return [os.path.basename(path)]


def snapshot(directories: Sequence[str], watched: FileFilter | None = None) -> dict[str, float]:
    """Modification times of every watched file under ``directories`` (default: ``*.py``)."""
    watched = watched or FileFilter(directories, (), ())
    times: dict[str, float] = {}
    for directory in directories:
        for root, dirs, files in os.walk(directory):
            dirs[:] = [d for d in dirs if not watched.skips_directory(d)]
            for name in files:
                path = os.path.join(root, name)
                if not watched(path):
                    continue
                try:
                    times[path] = os.stat(path).st_mtime
                except OSError:
                    continue
    return times


def run_with_reload(
    argv: Sequence[str],
    directories: Sequence[str],
    *,
    includes: Sequence[str] = (),
    excludes: Sequence[str] = (),
    delay: float = 0.25,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``argv`` (in ``env``) as the server process and restart it whenever a watched file
    changes.

    Returns:
        0 once SIGTERM or SIGINT has stopped the reloader (and its server).
    """
    watched = FileFilter(directories, includes, excludes)
    with StopSignals(signal.SIGTERM, signal.SIGINT) as stop:
        changes, how = _watch(directories, watched, delay, lambda: stop.requested)
        process = subprocess.Popen(list(argv), env=env)
        logger.info("reloader %d watching %s (%s)", os.getpid(), ", ".join(directories), how)
        try:
            for changed in changes:
                logger.info("changed: %s; restarting", ", ".join(changed[:5]))
                _stop(process)
                process = subprocess.Popen(list(argv), env=env)
        finally:
            _stop(process)
    return 0


def _watch(
    directories: Sequence[str],
    watched: FileFilter,
    delay: float,
    stopped: Callable[[], bool],
) -> tuple[Iterator[list[str]], str]:
    """The batches of changed paths, until ``stopped()``; and how they are found."""
    if importlib.util.find_spec("watchfiles") is None:
        return _poll(directories, watched, delay, stopped), "polling"
    return _notified(directories, watched, delay, stopped), "watchfiles"


def _poll(
    directories: Sequence[str],
    watched: FileFilter,
    delay: float,
    stopped: Callable[[], bool],
) -> Iterator[list[str]]:
    before = snapshot(directories, watched)
    while not stopped():
        time.sleep(max(delay, 0.05))  # the polling interval: nothing here can be waited on
        now = snapshot(directories, watched)
        if now != before:
            yield sorted(p for p in now.keys() | before.keys() if now.get(p) != before.get(p))
            before = now


class _Stopped:
    """What ``watchfiles`` asks every few milliseconds: has a stop signal come?"""

    def __init__(self, stopped: Callable[[], bool]) -> None:
        self.is_set = stopped


def _notified(
    directories: Sequence[str],
    watched: FileFilter,
    delay: float,
    stopped: Callable[[], bool],
) -> Iterator[list[str]]:
    import watchfiles

    changes = watchfiles.watch(
        *directories,
        watch_filter=lambda change, path: watched(path),
        debounce=max(int(delay * 1000), 1),  # the changes of one save: one batch
        stop_event=_Stopped(stopped),
        raise_interrupt=False,
    )
    for batch in changes:
        yield sorted({path for _, path in batch})


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        reap(process, 30)
