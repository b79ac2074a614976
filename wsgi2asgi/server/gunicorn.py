"""A gunicorn worker class, for teams whose process manager is gunicorn.

::

    gunicorn -k wsgi2asgi.server.gunicorn.Worker -w 4 myproject.asgi:application
    gunicorn -k wsgi2asgi.server.gunicorn.Worker -w 4 myproject.wsgi:application   # WSGI works too

Gunicorn keeps what it is good at (binding, forking, restarting workers, ``--max-requests``
style management, signals); each worker runs our server on gunicorn's listening sockets. The
app is detected as WSGI or ASGI like ``wsgi2asgi serve`` does. Gunicorn's ``timeout`` is the
heartbeat. The gunicorn settings that set ours are named in our settings' definition
(``gunicorn=`` in :mod:`wsgi2asgi.server.config`; the flags table of ``docs/server.md`` lists
them): ``keepalive``, ``graceful_timeout``, ``limit_request_line`` (→ 414),
``limit_request_fields`` (→ 431), ``forwarded_allow_ips``, ``threads`` (the WSGI pool),
``backlog``, ``max_requests`` (with gunicorn's jitter) and the TLS files and options. One the
user left at gunicorn's default leaves ours at our default (gunicorn's 2 s keep-alive is not
asked for), except the trusted proxies, which gunicorn reads from ``$FORWARDED_ALLOW_IPS``.
Our log lines go through gunicorn's loggers: access lines to ``--access-logfile`` in
``--access-logformat``, the rest to ``--error-logfile`` at gunicorn's ``--log-level``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

from gunicorn.workers.base import Worker as GunicornWorker

from wsgi2asgi.exceptions import ConfigError
from wsgi2asgi.server.config import Config, settings
from wsgi2asgi.server.logs import ForwardHandler
from wsgi2asgi.server.main import Server

__all__ = ["Worker", "gunicorn_options"]


class Worker(GunicornWorker):  # type: ignore[misc]
    """Run the wsgi2asgi server inside a gunicorn worker process."""

    def init_signals(self) -> None:
        # Our server installs its own SIGTERM/SIGINT handlers on the event loop; gunicorn's
        # arbiter sends SIGTERM for a graceful stop and SIGQUIT for a quick one.
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, lambda *_: self.log.reopen_files())

    def run(self) -> None:
        self._route_logs()
        asyncio.run(self._serve())

    def _route_logs(self) -> None:
        """Our lines go where gunicorn's go: ``wsgi2asgi.access`` to its access log
        (``--access-logfile``, in ``--access-logformat``), the others to its error log
        (``--error-logfile``, at its ``--log-level``); files reopen on SIGUSR1 with its own."""
        error_log = getattr(self.log, "error_log", None)
        access_log = getattr(self.log, "access_log", None)
        if not isinstance(error_log, logging.Logger) or not isinstance(access_log, logging.Logger):
            return  # a custom logger_class without gunicorn's two loggers: leave ours alone
        ours = logging.getLogger("wsgi2asgi")
        ours.handlers[:] = [ForwardHandler(error_log)]
        ours.setLevel(error_log.getEffectiveLevel())
        ours.propagate = False
        access = logging.getLogger("wsgi2asgi.access")
        access.handlers[:] = [ForwardHandler(access_log, self.cfg.access_log_format)]
        access.setLevel(logging.INFO)
        access.propagate = False

    def _config(self) -> Config:
        options = gunicorn_options(self.cfg)
        if "limit_max_requests" in options:
            # gunicorn's --max-requests with its jitter, already added by the base worker.
            options["limit_max_requests"] = int(self.max_requests)
        options["access_log"] = bool(getattr(self.log, "access_log_enabled", self.cfg.accesslog))
        return Config(app=self.wsgi, multiprocess=int(self.cfg.workers) > 1, **options)

    async def _serve(self) -> None:
        server = Server(self._config())
        sockets = [listener.sock for listener in self.sockets]
        heartbeat = asyncio.ensure_future(self._heartbeat(server))
        try:
            await server.serve(sockets=sockets)
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, server: Server) -> None:
        """Tell the arbiter we are alive; stop if it goes away."""
        interval = max(self.timeout / 2, 0.5) if self.timeout else 1.0
        while True:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("parent changed, shutting down: %s", self)
                server.should_exit.set()
                return
            await asyncio.sleep(interval)


#: Taken even at gunicorn's default: gunicorn reads it from ``$FORWARDED_ALLOW_IPS``.
_ALWAYS = frozenset({"forwarded_allow_ips"})


def gunicorn_options(cfg: Any) -> dict[str, Any]:
    """The ``Config`` options that gunicorn's settings ``cfg`` give, through each setting's
    ``gunicorn`` name; a gunicorn setting at its default (or unset) gives none.

    Example::

        cfg = gunicorn.config.Config()
        cfg.set("keepalive", 75)
        gunicorn_options(cfg)            # {"timeout_keep_alive": 75.0, "forwarded_allow_ips": ...}

    Raises:
        ConfigError: a gunicorn value our setting refuses.
    """
    options: dict[str, Any] = {}
    for setting in settings():
        if not setting.gunicorn:
            continue
        theirs = cfg.settings[setting.gunicorn]
        value = theirs.value
        unset = value in (None, "", 0) or (
            theirs.default is not None and value == theirs.validator(theirs.default)
        )
        if unset and setting.gunicorn not in _ALWAYS:
            continue
        try:
            options[setting.name] = setting.value(_text(value))
        except ValueError as exc:
            raise ConfigError(f"gunicorn's {setting.gunicorn}: {exc}") from None
    return options


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))  # an IntEnum (ssl.VerifyMode) as its number
    return str(value)
