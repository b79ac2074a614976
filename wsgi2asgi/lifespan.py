"""Drive one ASGI app's lifespan protocol from the outside, as a server does.

Rules this module keeps (ASGI spec, ``lifespan.rst``):

* The app is called once with a ``lifespan`` scope and lives as long as the driver; it receives
  ``lifespan.startup`` then, later, ``lifespan.shutdown``.
* "If an exception is raised when calling the application callable with a lifespan.startup
  message or a scope with type lifespan, the server must continue but not send any lifespan
  events." An app that raises, or returns, before answering startup is therefore *unsupported*:
  the driver reports that and carries on, unless ``required=True`` (``--lifespan on``).
* An app that ignores ``scope["type"]`` (a bare Starlette ``Response``) answers the lifespan
  scope with another protocol's message, such as ``http.response.start``. Its ``send`` raises
  :class:`ASGIContractError` (as uvicorn's fails an assertion) and, during startup, the app is
  *unsupported* too, logged in one INFO line; with ``required=True`` it is an error.
* An app that returns without an error once startup is complete (it does not wait for
  ``lifespan.shutdown``), or after receiving ``lifespan.shutdown`` without answering, has shut
  down: there is nothing left to stop (uvicorn's rule). One that raised has failed.
* ``lifespan.startup.failed`` / ``lifespan.shutdown.failed`` carry a ``message``; the driver
  raises :class:`LifespanFailed` with it.
* ``state`` is the namespace the app may fill during startup; the server copies it into each
  request scope.

Example::

    driver = LifespanDriver(app, state={})
    await driver.startup()      # raises LifespanFailed if the app says so
    ...                         # serve requests
    await driver.shutdown()
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from wsgi2asgi.exceptions import ASGIContractError, LifespanFailed
from wsgi2asgi.typing import ASGIApp, Message

__all__ = ["LifespanDriver"]

logger = logging.getLogger(__name__)


class LifespanDriver:
    """Run an ASGI app's lifespan in a background task and talk to it.

    Args:
        app: the ASGI application.
        state: the ``state`` dict given in the lifespan scope (shared with requests).
        name: how failures name this app in messages and logs.
        required: when true, an app that does not support lifespan is an error
            (``--lifespan on``); otherwise it is logged at debug level and skipped.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        state: dict[str, Any] | None = None,
        name: str = "app",
        required: bool = False,
    ) -> None:
        self.app = app
        self.state: dict[str, Any] = {} if state is None else state
        self.name = name
        self.required = required
        self.supported = True
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def startup(self) -> None:
        """Start the app's lifespan and wait for ``lifespan.startup.complete``.

        Raises:
            LifespanFailed: the app answered ``lifespan.startup.failed``, or raised while
                ``required`` is true.
        """
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        self._task = asyncio.create_task(self._run(scope))
        await self._exchange("startup")
        if not self.supported:
            await self.aclose()  # an app that ignored the scope type may still be waiting

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown``, wait for the answer, then for the app to return.

        Raises:
            LifespanFailed: the app answered ``lifespan.shutdown.failed``.
        """
        if self._task is None or not self.supported:
            return
        try:
            await self._exchange("shutdown")
        finally:
            await self._finish()

    async def aclose(self) -> None:
        """Stop the lifespan task without a shutdown exchange (after a failed startup)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self.app(scope, self._inbox.get, self._send)
        except BaseException as exc:  # reported through the outbox; re-raised if cancelled
            self._error = exc
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            # The app returned (or raised): wake up whoever waits for an answer.
            self._outbox.put_nowait({"type": "lifespan.returned"})

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if isinstance(kind, str) and kind.startswith("lifespan."):
            await self._outbox.put(message)
            return
        # The app ignored scope["type"] and answered as if this were a request.
        self._outbox.put_nowait({"type": "lifespan.foreign", "sent": kind})
        raise ASGIContractError(f"{self.name} sent {kind!r} to the lifespan scope")

    async def _exchange(self, phase: str) -> None:
        await self._inbox.put({"type": f"lifespan.{phase}"})
        message = await self._outbox.get()
        kind = message["type"]
        if kind == f"lifespan.{phase}.complete":
            return
        if kind == f"lifespan.{phase}.failed":
            raise LifespanFailed(self.name, str(message.get("message", "")))
        if phase == "startup" and kind == "lifespan.foreign":
            self._unsupported(f"it answered {message.get('sent')!r}", logging.INFO)
        elif phase == "startup" and kind == "lifespan.returned":
            self._unsupported(repr(self._error), logging.DEBUG if self._error else logging.NOTSET)
        elif kind == "lifespan.returned" and self._error is not None:
            raise LifespanFailed(self.name, f"app raised {self._error!r}")
        elif kind == "lifespan.foreign":
            raise LifespanFailed(self.name, f"app sent {message.get('sent')!r} during {phase}")
        elif kind != "lifespan.returned":  # returned cleanly: nothing left to shut down
            raise LifespanFailed(self.name, f"unexpected message {kind!r} during {phase}")

    def _unsupported(self, why: str, level: int) -> None:
        # ASGI lifespan spec: "If an exception is raised ... the server must continue but not
        # send any lifespan events." Under --lifespan on that is an error instead.
        self.supported = False
        if self.required:
            raise LifespanFailed(self.name, f"lifespan unsupported or crashed: {why}")
        if level != logging.NOTSET:
            message = "ASGI 'lifespan' unsupported by %s (%s): serving it without lifespan"
            logger.log(level, message, self.name, why)

    async def _finish(self) -> None:
        if self._task is not None:
            await self._task
            self._task = None
