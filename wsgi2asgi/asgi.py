"""``asgi_to_wsgi``: serve an ASGI app (Starlette, FastAPI, Django) from a WSGI server.

For teams still deploying on gunicorn (sync or gthread workers), wsgiref, mod_wsgi or waitress.

How it runs: one long-lived event loop on a daemon thread per adapter, shared by every WSGI
worker thread; each request is a task on that loop. The WSGI thread that called us does all of
the request's blocking I/O, driven by a queue of commands from the task, so the loop never
blocks. Rules this module keeps:

* The loop thread starts on the first request (or ``start()``), and lifespan startup finishes
  before any request is served. A failed startup is logged once; every request then gets 500.
  ``close()`` (also run at exit) waits for requests in progress, runs lifespan shutdown, cancels
  what is left and joins the thread. After ``fork()`` a child starts its own loop thread.
* The WSGI thread blocks in ``__call__`` until ``http.response.start`` (serving the app's
  ``receive()`` calls meanwhile), calls ``start_response``, and returns an iterable that yields
  the body as the app sends it. At most ``WINDOW`` chunks (8) wait for the server: then
  ``send`` waits (backpressure); :mod:`wsgi2asgi.exchange` runs each request. The server's
  ``close()`` on the iterable always ends the request.
* ``receive()`` reads at most 64 KiB of ``wsgi.input`` per call, never more than
  ``CONTENT_LENGTH``, or up to EOF when ``wsgi.input_terminated`` is set (PEP 3333). A body that
  ends short, or a read that fails, is a disconnect, never a complete body.
* When the WSGI side is done (the response ended, or the server closed the iterable early),
  ``receive()`` returns ``http.disconnect`` and ``send`` raises ``ClientDisconnected`` (an
  ``OSError``, as ASGI 2.4 asks); after an early close the task is cancelled if it has not
  finished within ``disconnect_grace`` seconds.
* The app raises or returns before ``http.response.start``: 500, logged. It raises after it, or
  returns with the body unfinished: the exception comes out of the iterable and the WSGI server
  aborts the connection, so a broken response never passes for a whole one.

The threading model, drawn, and the outcome of each app error: ``docs/asgi.md``.

Example::

    from wsgi2asgi.asgi import asgi_to_wsgi
    from myproject.api import app as starlette_app

    application = asgi_to_wsgi(starlette_app)     # gunicorn -k gthread myproject.wsgi:application
"""

from __future__ import annotations

import atexit
import enum
import logging
import os
import threading
import weakref
from collections.abc import Iterable
from typing import Any, Literal, TypedDict, Unpack

from wsgi2asgi.exchange import Exchange
from wsgi2asgi.interface import app_name, as_asgi3
from wsgi2asgi.lifespan import LifespanDriver
from wsgi2asgi.responses import start_plain
from wsgi2asgi.runners import Runner, orphan
from wsgi2asgi.scope import build_scope, request_body_length
from wsgi2asgi.typing import ASGIApp, Environ, StartResponse

__all__ = ["ASGIAdapter", "ASGIOptions", "asgi_to_wsgi"]

logger = logging.getLogger(__name__)


class _Phase(enum.Enum):
    #: Nothing runs yet: the first request (or start()) starts the loop and lifespan startup.
    IDLE = "idle"
    #: The loop runs and startup is over (if it failed, requests get 500).
    RUNNING = "running"
    #: close() was called: requests get 503 and nothing restarts the loop.
    CLOSED = "closed"


class ASGIAdapter:
    """A WSGI app that runs an ASGI app on its own event loop thread.

    These two lines are equivalent::

        application = ASGIAdapter(starlette_app, lifespan="on")
        application = asgi_to_wsgi(starlette_app, lifespan="on")

    Use it as a context manager to start it eagerly and close it at the end::

        with ASGIAdapter(app) as application:
            make_server("127.0.0.1", 8000, application).serve_forever()

    Args:
        app: the ASGI application (ASGI 3, or an ASGI 2 double callable), told apart as
            ``wsgi2asgi serve`` does (:func:`wsgi2asgi.interface.detect_interface`).
        lifespan: ``"auto"`` (run the lifespan protocol if the app supports it), ``"on"``
            (the app must support it) or ``"off"``, as uvicorn's ``--lifespan``.
        lifespan_timeout: seconds to wait for lifespan startup, and again for shutdown.
        disconnect_grace: seconds a request task may go on after the server closed its
            response early (the client went away) before it is cancelled.
        close_timeout: seconds ``close()`` waits for requests in progress, and then for
            cancelled tasks to end.

    Raises:
        ValueError: an unknown ``lifespan`` mode or a negative timeout.
        TypeError: ``app`` is not callable, or is a WSGI app.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        lifespan: Literal["auto", "on", "off"] = "auto",
        lifespan_timeout: float = 60.0,
        disconnect_grace: float = 5.0,
        close_timeout: float = 10.0,
    ) -> None:
        if lifespan not in ("auto", "on", "off"):
            raise ValueError(f"lifespan must be 'auto', 'on' or 'off', not {lifespan!r}")
        if min(lifespan_timeout, disconnect_grace, close_timeout) < 0:
            raise ValueError("timeouts must not be negative")
        self.app = app
        self.lifespan = lifespan
        self.lifespan_timeout = lifespan_timeout
        self.disconnect_grace = disconnect_grace
        self.close_timeout = close_timeout
        #: The lifespan ``state``; each request scope gets a shallow copy.
        self.state: dict[str, Any] = {}
        self._app = as_asgi3(app)
        self._phase = _Phase.IDLE
        self._lock = threading.Lock()
        self._loop_thread: Runner | None = None
        self._driver: LifespanDriver | None = None
        self._startup_error: str | None = None
        self._requests: set[Exchange] = set()
        self._idle = threading.Condition()

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the event loop thread and run lifespan startup, if not done yet.

        The first request does this anyway; call it to pay the cost up front, e.g. in
        gunicorn's ``post_fork`` hook. A failed startup is logged, not raised.

        Example::

            def post_fork(server, worker):      # gunicorn.conf.py
                application.start()

        Raises:
            RuntimeError: the adapter is closed.
        """
        if self._running_loop() is None:
            raise RuntimeError("the adapter is closed")

    def close(self) -> None:
        """Wait for requests in progress, run lifespan shutdown, stop the loop, join its thread.

        Idempotent, and registered with ``atexit`` when the adapter starts. Shutdown problems
        are logged, never raised. Requests arriving after it get 503.

        Example::

            def worker_exit(server, worker):    # gunicorn.conf.py
                application.close()

        Raises:
            RuntimeError: called from the adapter's own event loop (it would deadlock).
        """
        loop_thread = self._loop_thread
        if loop_thread is not None and loop_thread.is_current():
            raise RuntimeError("close() called from the adapter's own event loop")
        with self._lock:
            was_running = self._phase is _Phase.RUNNING
            self._phase = _Phase.CLOSED
            loop_thread, driver = self._loop_thread, self._driver
            self._driver = None
        atexit.unregister(self.close)
        if not was_running or loop_thread is None:
            return
        self._wait_for_requests()
        if driver is not None:
            try:
                loop_thread.run(driver.shutdown(), self.lifespan_timeout)
            except Exception as exc:  # reported, never raised: close() runs at exit
                logger.error("ASGI lifespan shutdown of %s failed: %r", app_name(self.app), exc)
        loop_thread.close()

    def __enter__(self) -> ASGIAdapter:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _running_loop(self) -> Runner | None:
        loop_thread = self._loop_thread
        if self._phase is _Phase.RUNNING and loop_thread is not None:
            return loop_thread
        with self._lock:
            if self._phase is _Phase.IDLE:
                self._begin()
            return self._loop_thread if self._phase is _Phase.RUNNING else None

    def _begin(self) -> None:
        """Under the lock: start the loop thread and run lifespan startup."""
        _ADAPTERS.add(self)
        loop_thread = Runner(
            "wsgi2asgi-asgi-loop", stop_timeout=self.close_timeout, on_exit=self._on_loop_exit
        )
        self._loop_thread = loop_thread
        atexit.unregister(self.close)
        atexit.register(self.close)
        if self.lifespan != "off":
            self._startup(loop_thread)
        self._phase = _Phase.RUNNING

    def _startup(self, loop_thread: Runner) -> None:
        driver = LifespanDriver(
            self._app, state=self.state, name=app_name(self.app), required=self.lifespan == "on"
        )
        try:
            loop_thread.run(driver.startup(), self.lifespan_timeout)
        except TimeoutError:
            self._startup_error = (
                f"lifespan startup of {driver.name} did not finish within {self.lifespan_timeout} s"
            )
        except Exception as exc:  # LifespanFailed, or whatever the app raised under "on"
            self._startup_error = str(exc) or repr(exc)
        else:
            self._driver = driver if driver.supported else None
            return
        logger.error(
            "ASGI app failed to start; every request will get 500: %s", self._startup_error
        )
        try:
            loop_thread.run(driver.aclose(), self.lifespan_timeout)
        except Exception as exc:
            logger.warning("could not stop the failed lifespan task: %r", exc)

    def _wait_for_requests(self) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: not self._requests, self.close_timeout):
                logger.warning("closing with %d request(s) in progress", len(self._requests))

    def track(self, exchange: Exchange) -> None:
        """Count ``exchange`` as in progress: ``close()`` waits for it (called by each
        :class:`~wsgi2asgi.exchange.Exchange`, the :class:`~wsgi2asgi.exchange.Adapter` seam)."""
        with self._idle:
            self._requests.add(exchange)

    def untrack(self, exchange: Exchange) -> None:
        """``exchange`` is over (called by each :class:`~wsgi2asgi.exchange.Exchange`)."""
        with self._idle:
            self._requests.discard(exchange)
            if not self._requests:
                self._idle.notify_all()

    def _on_loop_exit(self) -> None:
        """On the loop thread, as it ends: wake every WSGI thread still waiting on it."""
        if self._phase is not _Phase.CLOSED:
            logger.error("the ASGI event loop thread stopped; requests will get 503")
        with self._idle:
            waiting = list(self._requests)
        for exchange in waiting:
            exchange.abandon()

    def _after_fork(self) -> None:
        """In a fork child: the parent's loop thread did not survive; start afresh on demand."""
        if self._loop_thread is not None:
            orphan(self._loop_thread)  # its loop looks "running": neither usable nor closable
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._requests = set()
        self._loop_thread, self._driver, self._startup_error = None, None, None
        self.state = {}
        if self._phase is _Phase.RUNNING:
            self._phase = _Phase.IDLE

    # -- the WSGI application ---------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one WSGI request with the ASGI app (PEP 3333 application callable)."""
        loop_thread = self._running_loop()
        if loop_thread is None:
            return start_plain(start_response, 503)
        if self._startup_error is not None:
            return start_plain(start_response, 500)
        try:
            length = request_body_length(environ)
            scope = build_scope(environ, state=self.state)
        except ValueError as exc:
            logger.warning("bad request from the WSGI server: %s", exc)
            return start_plain(start_response, 400)
        exchange = Exchange(self, loop_thread, self._app, dict(scope), environ, length)
        return exchange.respond(start_response)


class ASGIOptions(TypedDict, total=False):
    """The keyword options of :class:`ASGIAdapter`, which :func:`asgi_to_wsgi` passes on.

    Their defaults and meaning are the class's (written there once).

    Example::

        options: ASGIOptions = {"lifespan": "on"}
        application = asgi_to_wsgi(starlette_app, **options)
    """

    lifespan: Literal["auto", "on", "off"]
    lifespan_timeout: float
    disconnect_grace: float
    close_timeout: float


def asgi_to_wsgi(app: ASGIApp, **options: Unpack[ASGIOptions]) -> ASGIAdapter:
    """Return a WSGI app that serves the ASGI ``app``: see :class:`ASGIAdapter`.

    ``asgi_to_wsgi(app, lifespan="on")`` and ``ASGIAdapter(app, lifespan="on")`` are the same.

    Example::

        application = asgi_to_wsgi(starlette_app, lifespan="on")

    Args:
        app: the ASGI application (ASGI 3, or an ASGI 2 double callable).
        **options: the keyword options of :class:`ASGIAdapter` (``lifespan``,
            ``lifespan_timeout``, ``disconnect_grace``, ``close_timeout``), with its defaults.

    Returns:
        The adapter, a PEP 3333 application with ``start()`` and ``close()``.

    Raises:
        ValueError: an unknown ``lifespan`` mode or a negative timeout.
        TypeError: ``app`` is not callable, or is a WSGI app.
    """
    return ASGIAdapter(app, **options)


# A loop thread does not survive fork(): children of a process that started an adapter (e.g.
# gunicorn --preload with start() at import) forget it and start their own on first use.
_ADAPTERS: weakref.WeakSet[ASGIAdapter] = weakref.WeakSet()


def _forget_loops_after_fork() -> None:
    for adapter in list(_ADAPTERS):
        adapter._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_loops_after_fork)
