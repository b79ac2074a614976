"""``Server``: lifespan, listening sockets, signals and graceful shutdown around the protocol.

Sequence (``docs/server.md``):

1. Load the app (``module:attr``, WSGI or ASGI, mounts composed with the router).
2. Lifespan startup (``--lifespan auto|on|off``); a failure stops here, exit status 3.
3. Listen (host/port, ``--uds`` or ``--fd``); log one line per mount with its interface.
4. On SIGTERM or SIGINT, or after ``--limit-max-requests`` requests: stop accepting; close
   idle keep-alive connections; let in-flight requests finish (their connections close after
   the response) for up to ``--timeout-graceful-shutdown`` seconds; then tell the apps still
   running that their clients are gone (``http.disconnect``; a WSGI response's ``close()``
   runs), give them ``SHUTDOWN_GRACE`` seconds, cancel what is left; lifespan shutdown; exit 0.

Example::

    from wsgi2asgi.server import serve
    serve("myproject.wsgi:application", port=8080)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wsgi2asgi.exceptions import ConfigError, LifespanFailed
from wsgi2asgi.interface import app_name
from wsgi2asgi.lifespan import LifespanDriver
from wsgi2asgi.server.binding import bind_config
from wsgi2asgi.server.config import Config
from wsgi2asgi.server.http11 import Limits
from wsgi2asgi.server.loading import load
from wsgi2asgi.server.logs import configure_logging
from wsgi2asgi.server.reloader import run_with_reload
from wsgi2asgi.server.state import ServerState
from wsgi2asgi.server.supervisor import run_workers, worker_command
from wsgi2asgi.server.tcp import HTTPProtocol
from wsgi2asgi.typing import ASGIApp

if TYPE_CHECKING:
    from wsgi2asgi.blocking import BlockingDetector

__all__ = ["EXIT_STARTUP_FAILED", "SHUTDOWN_GRACE", "Server", "run", "run_config", "serve"]

logger = logging.getLogger("wsgi2asgi.error")

#: Exit status when lifespan startup fails (as uvicorn).
EXIT_STARTUP_FAILED = 3
#: Seconds the apps still running at the graceful-shutdown deadline have to end once told
#: that their clients are gone (a WSGI response's ``close()`` to run); then they are cancelled.
SHUTDOWN_GRACE = 1.0

#: Wraps the loaded app before it is served, given the blocking-call detector (``None`` when
#: off); how ``wsgi2asgi serve --dashboard`` adds the dashboard, which lives in a later layer
#: than the server (``docs/architecture.md``).
AppWrapper = Callable[[ASGIApp, "BlockingDetector | None"], ASGIApp]


class Server:
    """Run one server process for ``config``.

    Example::

        server = Server(Config(app=app, port=0))
        await server.serve()          # until server.should_exit is set or a signal arrives

    Args:
        config: the settings; ``workers`` and ``reload`` start other processes, which a
            ``Server`` does not: :func:`serve` does.
        wrap_app: called with the loaded app (and the blocking-call detector); serves what it
            returns. ``config.dashboard`` needs one (the command line passes the dashboard's).
    """

    def __init__(self, config: Config, *, wrap_app: AppWrapper | None = None) -> None:
        if config.workers > 1 or config.reload:
            asked = f"workers={config.workers}" if config.workers > 1 else "reload=True"
            raise ConfigError(
                f"Server runs one process; for {asked} use serve('module:attr', ...) or "
                "`wsgi2asgi serve` (docs/server.md)"
            )
        self.config = config
        self.wrap_app = wrap_app
        self.should_exit = asyncio.Event()
        self.started = asyncio.Event()
        self.state: ServerState | None = None
        self.servers: list[asyncio.AbstractServer] = []
        self.sockets: list[socket.socket] = []

    async def serve(self, sockets: list[socket.socket] | None = None) -> int:
        """Serve until told to stop; return the process exit status.

        Args:
            sockets: listening sockets to serve on (gunicorn's, a supervisor's); they are ours
                to close. Without them, the config's are bound first, before the app loads.

        Raises:
            ConfigError: the address cannot be listened on, or the TLS files or the app cannot
                be loaded; nothing of the app has run then.
        """
        config = self.config
        logger.info("Started server process [%d]", os.getpid())
        from wsgi2asgi.server.allocator import limit_arenas, reuse_large_blocks

        reuse_large_blocks()  # bodies stream through in pieces of up to 256 KiB
        if config.malloc_arena_max is not None:
            limit_arenas(config.malloc_arena_max)  # before any worker thread allocates
        sockets = bind_config(config) if sockets is None else list(sockets)
        try:
            tls = _tls_context(config)
            app, described, detector = self._load()
        except BaseException:
            _close(sockets)
            raise
        state = self.state = self._state(app)
        driver: LifespanDriver | None = None
        if config.lifespan != "off":
            driver = LifespanDriver(
                app, state=state.lifespan_state, name="app", required=config.lifespan == "on"
            )
            if not await _start(driver):
                if detector is not None:
                    detector.stop()
                _close(sockets)
                return EXIT_STARTUP_FAILED
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        try:
            await self._listen(state, sockets, tls)
            self._log_startup(described)
            self.started.set()
            await self.should_exit.wait()
        finally:
            self._remove_signals(loop)
            logger.info("Shutting down")
            await self._shutdown(state)
            if driver is not None and driver.supported:
                await _stop(driver)
            if detector is not None:
                detector.stop()
            logger.info("Finished server process [%d]", os.getpid())
        return 0

    def _load(self) -> tuple[ASGIApp, list[tuple[str, str, str]], BlockingDetector | None]:
        """The app to serve, its description, and the blocking-call detector if asked for."""
        config = self.config
        if config.dashboard is not None and self.wrap_app is None:
            raise ConfigError(
                "--dashboard is added by `wsgi2asgi serve`; from Python, wrap the app in "
                "wsgi2asgi.dashboard.WithDashboard (docs/dashboard.md)"
            )
        app, described = load(config)
        detector = None
        if config.debug_blocking is not None:
            from wsgi2asgi.blocking import install

            detector = install(asyncio.get_running_loop(), config.debug_blocking)
            logger.info("blocking-call detector on: threshold %s ms", config.debug_blocking)
        if self.wrap_app is not None:
            app = self.wrap_app(app, detector)
        if detector is None:
            return app, described, None
        from wsgi2asgi.blocking import BlockingDetectorMiddleware

        return BlockingDetectorMiddleware(app), described, detector

    def _state(self, app: ASGIApp) -> ServerState:
        config = self.config
        limits = Limits(
            max_target=config.max_target_size,
            max_header_bytes=config.max_header_size,
            max_headers=config.max_headers,
            max_body=config.max_body_size,
        )
        state = ServerState(config=config, app=app, limits=limits)
        if config.limit_max_requests is not None:
            jitter = random.randint(0, config.limit_max_requests_jitter)
            state.max_requests = config.limit_max_requests + jitter
            state.on_max_requests = functools.partial(self._max_requests_reached, state)
        return state

    def _max_requests_reached(self, state: ServerState) -> None:
        logger.info(
            "served %d requests (--limit-max-requests): finishing in-flight requests and exiting",
            state.requests,
        )
        self.should_exit.set()

    async def _listen(
        self, state: ServerState, sockets: list[socket.socket], tls: ssl.SSLContext | None
    ) -> None:
        loop = asyncio.get_running_loop()
        config = self.config

        def factory() -> HTTPProtocol:
            return HTTPProtocol(state)

        common: dict[str, Any] = {"backlog": config.backlog, "ssl": tls}
        if tls is not None:
            # The connection's own timers start only once the handshake is done; until then a
            # client that sends nothing (or half a ClientHello) would hold the socket for the
            # loop's default 60 s. The handshake gets the request head's time limit.
            common["ssl_handshake_timeout"] = config.timeout_request_header
        for sock in sockets:
            if sock.family == socket.AF_UNIX:
                server = await loop.create_unix_server(factory, sock=sock, **common)
            else:
                server = await loop.create_server(factory, sock=sock, **common)
            self.servers.append(server)
            self.sockets.extend(getattr(server, "sockets", ()))

    def _log_startup(self, described: list[tuple[str, str, str]]) -> None:
        where = ", ".join(_url(sock, self.config) for sock in self.sockets)
        logger.info("wsgi2asgi serving on %s (pid %d)", where, os.getpid())
        if self.config.app is not None:
            logger.info("  app   %s", app_name(self.config.app))
        for prefix, kind, pool in described:
            logger.info("  mount %-12s %-5s %s", prefix, kind, pool)

    async def _shutdown(self, state: ServerState) -> None:
        state.shutting_down = True
        for server in self.servers:
            server.close()
        for connection in list(state.connections):
            connection.shutdown()
        if not await _drained(state, self.config.timeout_graceful_shutdown):
            await _disconnect_all(state)
        for server in self.servers:
            await server.wait_closed()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        if sys.platform == "win32":  # pragma: no cover - not supported
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.should_exit.set)
            except (RuntimeError, ValueError):  # not the main thread
                return

    def _remove_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (RuntimeError, ValueError):
                pass


async def _start(driver: LifespanDriver) -> bool:
    """Lifespan startup, logged as uvicorn logs it; whether the app may be served."""
    logger.info("Waiting for application startup.")
    try:
        await driver.startup()
    except LifespanFailed as exc:
        logger.error("Application startup failed: %s", exc.message or exc)
        await driver.aclose()
        return False
    if not driver.supported:
        logger.info("ASGI 'lifespan' protocol appears unsupported.")
    logger.info("Application startup complete.")
    return True


async def _stop(driver: LifespanDriver) -> None:
    logger.info("Waiting for application shutdown.")
    try:
        await driver.shutdown()
    except LifespanFailed as exc:
        logger.error("Application shutdown failed: %s", exc.message or exc)
    else:
        logger.info("Application shutdown complete.")


def _close(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


async def _drained(state: ServerState, timeout: float | None) -> bool:
    """Wait up to ``timeout`` seconds (``None``: for ever) for every connection and request to
    end; whether they did. A request's task may outlive its connection (a WSGI ``close()``)."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while state.connections or state.tasks:
        if deadline is not None and loop.time() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _disconnect_all(state: ServerState) -> None:
    """The graceful-shutdown deadline: tell every app its client is gone, then cut what is left.

    Aborting the connections is what tells them: ``receive()`` returns ``http.disconnect``
    (``websocket.disconnect``) and ``send()`` raises, so a WSGI response stops being iterated
    and its ``close()`` runs on its thread. Apps get ``SHUTDOWN_GRACE`` seconds to end; then
    their tasks are cancelled. (Cancelling first would cut them: ``CancelledError`` in
    ``receive()``, and a WSGI ``close()`` cut off by the process exit.)
    """
    logger.warning(
        "graceful shutdown timed out; disconnecting %d connections, %d requests in flight",
        len(state.connections),
        len(state.tasks),
    )
    for connection in list(state.connections):
        if connection.transport is not None:
            connection.transport.abort()
    if not state.tasks:
        return
    _, pending = await asyncio.wait(set(state.tasks), timeout=SHUTDOWN_GRACE)
    if pending:
        logger.warning("cancelling %d requests that did not end when told", len(pending))
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)


def _tls_context(config: Config) -> ssl.SSLContext | None:
    """The server's TLS context: the ``--ssl-*`` settings (TLS 1.2 at least).

    Raises:
        ConfigError: a file that cannot be read, a wrong key password, a cipher list OpenSSL
            refuses.
    """
    if config.ssl_certfile is None or config.ssl_keyfile is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(
            config.ssl_certfile, config.ssl_keyfile, password=config.ssl_keyfile_password
        )
        if config.ssl_ca_certs is not None:
            context.load_verify_locations(config.ssl_ca_certs)
        # ssl.CERT_NONE/OPTIONAL/REQUIRED are 0/1/2: whether client certificates are asked
        # for, and whether a client without one is refused.
        context.verify_mode = ssl.VerifyMode(config.ssl_cert_reqs)
        if config.ssl_ciphers is not None:
            context.set_ciphers(config.ssl_ciphers)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot set up TLS (--ssl-* files or options): {exc}") from exc
    return context


def _url(sock: socket.socket, config: Config) -> str:
    name = sock.getsockname()
    if isinstance(name, str):
        return f"unix:{name}"
    host, port = name[0], name[1]
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if config.ssl_certfile else "http"
    return f"{scheme}://{host}:{port}"


def serve(app: Any, *, wrap_app: AppWrapper | None = None, **options: Any) -> int:
    """Serve ``app`` (a callable or ``"module:attr"``) until SIGINT/SIGTERM; return the status.

    ``workers`` and ``reload`` start server processes that import the app, so they need the
    app (and every mount's) as an import string, as ``uvicorn.run`` does.

    Example::

        serve("examples.flask_in_django.asgi:application", port=8000)
        serve("myproject.wsgi:application", port=8000, workers=4)

    Args:
        app: the app, or ``None`` with ``mounts=[(prefix, app), ...]``.
        wrap_app: what wraps the loaded app (see :class:`Server`); one process only.
        **options: any :class:`~wsgi2asgi.server.config.Config` field.

    Raises:
        ConfigError: invalid options, an app that cannot be imported, or ``workers`` or
            ``reload`` with an app object or ``wrap_app``.
    """
    return run_config(Config(app=app, **options), wrap_app=wrap_app)


def run_config(config: Config, *, wrap_app: AppWrapper | None = None) -> int:
    """Serve as ``config`` says: one server process, or a supervisor of ``config.workers``, or
    a reloader (``config.reload``); return the exit status. See :func:`serve`.

    Raises:
        ConfigError: as :func:`serve`.
    """
    if config.workers == 1 and not config.reload:
        configure_logging(config)
        return run(Server(config, wrap_app=wrap_app))
    _check_importable(config, wrap_app)
    configure_logging(config)
    if config.workers > 1:
        return run_workers(config)
    command, env = worker_command(config, reload=False)
    return run_with_reload(
        command,
        config.reload_dirs or [config.app_dir],
        includes=config.reload_includes,
        excludes=config.reload_excludes,
        delay=config.reload_delay,
        env=env,
    )


def _check_importable(config: Config, wrap_app: AppWrapper | None) -> None:
    """Other processes import the apps: each must be ``module:attr``, and nothing wraps them.

    Raises:
        ConfigError: ``workers=2 runs the app in other processes, which import it: ...``.
    """
    asked = f"workers={config.workers}" if config.workers > 1 else "reload=True"
    apps = [config.app, *(app for _, app in config.mounts)]
    apps += [app for _, _, app in config.host_mounts]
    for app in apps:
        if app is not None and not isinstance(app, str):
            raise ConfigError(
                f"{asked} runs the app in other processes, which import it: give "
                f"'module:attr', not {app!r} (as uvicorn.run wants; docs/server.md)"
            )
    if wrap_app is not None:
        raise ConfigError(f"{asked} runs the app in other processes: wrap_app cannot reach them")


def run(server: Server) -> int:
    """Run ``server`` on a new event loop (uvloop when installed)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional
        return asyncio.run(server.serve())
    return uvloop.run(server.serve())
