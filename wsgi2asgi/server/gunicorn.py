"""A gunicorn worker class, for teams whose process manager is gunicorn.

::

    gunicorn -k wsgi2asgi.server.gunicorn.Worker -w 4 myproject.asgi:application
    gunicorn -k wsgi2asgi.server.gunicorn.Worker -w 4 myproject.wsgi:application   # WSGI works too

Gunicorn keeps what it is good at (binding, forking, restarting workers, ``--max-requests``
style management, signals); each worker runs our server on gunicorn's listening sockets. The
app is detected as WSGI or ASGI like ``wsgi2asgi serve`` does. Gunicorn settings used:
``timeout`` (heartbeat), ``graceful_timeout``, ``keepalive``, ``limit_request_line``
(→ 414), ``limit_request_fields`` (→ 431), ``forwarded_allow_ips``, ``threads`` (the WSGI
pool), ``backlog``, and ``keyfile``/``certfile`` for TLS.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from gunicorn.workers.base import Worker as GunicornWorker

from wsgi2asgi.server.config import Config
from wsgi2asgi.server.main import Server

__all__ = ["Worker"]


class Worker(GunicornWorker):  # type: ignore[misc]
    """Run the wsgi2asgi server inside a gunicorn worker process."""

    def init_signals(self) -> None:
        # Our server installs its own SIGTERM/SIGINT handlers on the event loop; gunicorn's
        # arbiter sends SIGTERM for a graceful stop and SIGQUIT for a quick one.
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, lambda *_: self.log.reopen_files())

    def run(self) -> None:
        asyncio.run(self._serve())

    def _config(self) -> Config:
        cfg: Any = self.cfg
        allow = cfg.forwarded_allow_ips
        if isinstance(allow, str):
            allow = [a.strip() for a in allow.split(",")]
        return Config(
            app=self.wsgi,
            timeout_keep_alive=float(cfg.keepalive or 5),
            timeout_graceful_shutdown=float(cfg.graceful_timeout),
            max_target=int(cfg.limit_request_line or 8190),
            max_headers=int(cfg.limit_request_fields or 100),
            forwarded_allow_ips=tuple(allow),
            max_threads=max(int(cfg.threads or 1), 1) * 8,
            multiprocess=int(cfg.workers) > 1,
            # gunicorn's --max-requests (its jitter already added by the base worker).
            limit_max_requests=int(self.max_requests) if cfg.max_requests else None,
            backlog=int(cfg.backlog),
            access_log=False,
            ssl_keyfile=cfg.keyfile,
            ssl_certfile=cfg.certfile,
        )

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
