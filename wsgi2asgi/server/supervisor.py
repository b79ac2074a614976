"""``--workers N``: one listening socket, N server processes, restarted when they die.

Rules this module keeps:

* The supervisor binds the socket once and hands it to every worker (``--fd``), so all
  workers accept on the same port and a restart never drops the listener.
* A server process it starts (a worker, or the reloader's server) is given every setting it
  needs, and nothing else: :func:`worker_command` puts the settings that differ from their
  defaults in its environment (a secret such as ``--dashboard-token`` stays out of ``ps``) and
  the app on its command line, with ``--config /dev/null`` and none of the parent's
  ``WSGI2ASGI_*`` variables. So a worker never sees the ``--uds`` (from a flag, a variable or
  a file) that the supervisor has already bound, beside the ``--fd`` it is handed.
* It imports the app as the parent could: the parent's ``sys.path`` is its ``PYTHONPATH``.
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

import dataclasses
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType, TracebackType
from typing import Any

from wsgi2asgi.server import binding
from wsgi2asgi.server.config import Config, settings
from wsgi2asgi.server.settings import ENV_PREFIX, Setting, comma_list, header, host_mount, mount

__all__ = ["StopSignals", "bind", "reap", "run_workers", "supervise", "worker_command"]

logger = logging.getLogger("wsgi2asgi.error")

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def run_workers(config: Config) -> int:
    """``--workers N``: bind the socket once, then :func:`supervise` N server processes on it.

    Raises:
        ConfigError: the address cannot be listened on (nothing is started then).
    """
    sock = bind(config)
    command, env = worker_command(
        config, workers=1, reload=False, multiprocess=True, uds=None, fd=sock.fileno()
    )
    return supervise(command, config.workers, sock, config.timeout_graceful_shutdown, env=env)


def bind(config: Config) -> socket.socket:
    """Bind and listen as ``config`` says (:func:`wsgi2asgi.server.binding.bind_config`); the
    socket is inheritable so workers can use it. A host with several addresses is served on
    the first one.

    Raises:
        ConfigError: one line naming the address and why it cannot be listened on.
    """
    first, *others = binding.bind_config(config)
    for sock in others:
        sock.close()
    first.set_inheritable(True)
    return first


def supervise(
    command: Sequence[str],
    workers: int,
    sock: socket.socket,
    graceful_timeout: float | None,
    *,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``workers`` copies of ``command`` (in ``env``), each inheriting ``sock``, until a
    stop signal. The command tells them the socket's descriptor (:func:`worker_command`).

    Returns:
        0 after a signal-initiated stop.
    """
    fd = sock.fileno()

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(list(command), pass_fds=[fd], env=env)

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


def worker_command(config: Config, **changes: Any) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of a server process serving ``config`` with ``changes``.

    Example::

        command, env = worker_command(config, workers=1, multiprocess=True, uds=None, fd=5)
        # command: [sys.executable, "-m", "wsgi2asgi", "serve", APP, "--config", "/dev/null"]
        # env: os.environ without WSGI2ASGI_*, plus WSGI2ASGI_FD=5, WSGI2ASGI_MULTIPROCESS=1...

    Raises:
        ConfigError: ``changes`` make an invalid ``Config``.
    """
    child = dataclasses.replace(config, **changes)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(ENV_PREFIX) and name != "WEB_CONCURRENCY"
    }
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    for setting in settings():
        value = getattr(child, setting.name)
        if not setting.positional and value != setting.default:
            env[setting.env] = _environment_text(setting, value)
    app = [] if child.app is None else [str(child.app)]
    # An empty config file: the settings are all in the environment, none in ./pyproject.toml.
    return [sys.executable, "-m", "wsgi2asgi", "serve", *app, "--config", os.devnull], env


def _environment_text(setting: Setting, value: Any) -> str:
    """The ``WSGI2ASGI_*`` variable's text that means ``value`` (``sources.from_environment``
    reads it back): a repeatable setting's texts split as a shell would."""
    if setting.repeat:
        return shlex.join(_text(setting, item) for item in value)
    return _text(setting, value)


def _text(setting: Setting, value: Any) -> str:
    """The text ``setting.value`` parses as ``value``: the inverse of a setting's parser."""
    if setting.parse is mount:
        prefix, app = value
        return f"{prefix or '/'}={app}"
    if setting.parse is host_mount:
        host, prefix, app = value
        return f"{host}={prefix or '/'}={app}"
    if setting.parse is header:
        return f"{value[0]}: {value[1]}"
    if setting.parse is comma_list:
        return ",".join(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:  # an optional number, off (a text setting's None is its default)
        return "none"
    return str(value)
