"""``LiveServer``: the app under our own server, on a real loopback socket, for a test.

For what an in-process client cannot be: a browser, a ``requests``-based suite, a WebSocket
library, another process. Rules this class keeps:

* The socket is bound here, to port 0 on the loopback (the kernel picks a free port), and
  handed to the server: no port is guessed free and then raced for.
* The server (:class:`wsgi2asgi.server.Server`, with lifespan, as ``wsgi2asgi serve`` runs it)
  runs on an event loop of its own on a thread; :meth:`start` returns once it is listening,
  or raises what stopped it (a failed lifespan startup: ``LifespanFailed``; a bad option:
  ``ConfigError``).
* :meth:`stop` is a graceful shutdown (the ``SIGTERM`` path): in-flight requests finish,
  lifespan shutdown runs, the socket is closed; it returns the exit status, also kept in
  ``status``. Every wait is bounded.

Example::

    with LiveServer(app) as server:
        httpx.get(server.url + "/api/health")
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any, Literal

from wsgi2asgi.exceptions import LifespanFailed
from wsgi2asgi.typing import ASGIApp

__all__ = ["LiveServer"]


class LiveServer:
    """Serve ``app`` with our server on ``127.0.0.1`` and a free port, on a thread.

    Example::

        server = LiveServer(app, timeout_graceful_shutdown=5).start()
        ...
        assert server.stop() == 0

    Args:
        app: the app (ASGI or WSGI, a composite, or ``"module:attr"``).
        loop: ``"asyncio"`` or ``"uvloop"``.
        start_timeout: seconds to wait for the server to listen (lifespan startup included).
        **options: any :class:`wsgi2asgi.server.Config` field (``lifespan="on"``,
            ``root_path="/site"``, ``timeout_graceful_shutdown=5``, ...).

    Attributes:
        port: the port it listens on (known once started).
        status: the server's exit status once stopped (0), else ``None``.
    """

    def __init__(
        self,
        app: ASGIApp | str,
        *,
        loop: Literal["asyncio", "uvloop"] = "asyncio",
        start_timeout: float = 30.0,
        **options: Any,
    ) -> None:
        options.setdefault("access_log", False)
        options.setdefault("timeout_graceful_shutdown", 5.0)
        self.app = app
        self.loop_name = loop
        self.start_timeout = start_timeout
        self.options = options
        self.port = 0
        self.status: int | None = None
        self._server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (add your paths to it)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT``, for WebSocket clients."""
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        """Bind, start the server on its thread, and wait until it listens.

        Raises:
            LifespanFailed: the app's lifespan startup failed.
            ConfigError: an option is invalid or the app cannot be loaded.
            TimeoutError: it did not listen within ``start_timeout`` seconds.
        """
        from wsgi2asgi.server import Config, Server

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        try:
            self._server = Server(Config(app=self.app, port=self.port, **self.options))
        except BaseException:
            sock.close()
            raise
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name="wsgi2asgi-live-server", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            self.stop()
            raise TimeoutError(f"the live server did not listen within {self.start_timeout} s")
        self._raise_if_failed()
        return self

    def stop(self) -> int:
        """Shut the server down gracefully; return its exit status (0 when all went well).

        Raises:
            RuntimeError: the server thread did not end (graceful timeout plus 15 s).
        """
        thread, loop = self._thread, self._loop
        if thread is None:
            return self.status if self.status is not None else 0
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._server.should_exit.set)
            except RuntimeError:  # the loop closed in between: the server has ended
                pass
        grace = self.options["timeout_graceful_shutdown"]
        thread.join(None if grace is None else float(grace) + 15)
        if thread.is_alive():
            raise RuntimeError("the live server did not stop")
        self._thread = None
        return self.status if self.status is not None else 0

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _run(self, sock: socket.socket) -> None:
        if self.loop_name == "uvloop":
            import uvloop

            uvloop.run(self._serve(sock))
        else:
            asyncio.run(self._serve(sock))

    async def _serve(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        listening = asyncio.create_task(self._server.started.wait())
        listening.add_done_callback(lambda _: self._ready.set())
        try:
            self.status = await self._server.serve(sockets=[sock])
        except BaseException as exc:  # reported by start(); the thread ends quietly
            self._error = exc
        finally:
            listening.cancel()
            self._ready.set()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            self.stop()
            raise self._error
        if self.status is not None and self.status != 0:
            self.stop()
            raise LifespanFailed(
                "app", f"the server stopped at startup with exit status {self.status}"
            )
