"""``Fallback``: answer from a new app, and from the legacy app where the new one has no route.

This is how routes move one at a time: the migrated app goes in front, the legacy app behind
it, and each request the new app answers with a fallback status (404 by default) is served
again, from the start, by the legacy app.

Rules this module keeps:

* Nothing the primary sends for a discarded attempt reaches the client: ``http.response.start``
  is held until its status is known, and a fallback status makes every later message of that
  attempt disappear.
* The request body is replayed: the messages the primary received are recorded (up to
  ``max_replay_bytes``) and handed to the fallback before the rest of the stream. If the
  primary read more than that, the request cannot be replayed, so the primary's answer is sent
  as it is (and logged).
* A primary that raises before starting a response is *not* an excuse to fall back: its error
  propagates, like any other app error, so bugs in the new code stay visible.
* WebSocket: a primary that closes the handshake before accepting falls back; the
  ``websocket.connect`` message is replayed.
* Lifespan reaches both apps, once each, each with a ``state`` of its own, and each request
  gets the state of the app answering it (see :mod:`wsgi2asgi.fanout`).
* Scope types other than ``http``, ``websocket`` and ``lifespan`` raise (ASGI: "Applications
  should actively reject any protocol that they do not understand").

Example::

    app = Fallback(starlette_api, wsgi_to_asgi(legacy_flask_app))
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from wsgi2asgi.fanout import run_lifespans, with_app_state
from wsgi2asgi.routing import reverse
from wsgi2asgi.typing import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Fallback"]

logger = logging.getLogger(__name__)


class Fallback:
    """Serve from ``primary``; where it answers a status in ``statuses``, serve from ``fallback``.

    Args:
        primary: the new app, tried first.
        fallback: the legacy app, which gets the requests the primary does not take.
        statuses: the statuses that mean "not mine" (default ``{404}``; ``{404, 405}`` is common).
        max_replay_bytes: how much request body to record for a replay (default 1 MiB).
    """

    def __init__(
        self,
        primary: ASGIApp,
        fallback: ASGIApp,
        *,
        statuses: Collection[int] = (404,),
        max_replay_bytes: int = 1 << 20,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.statuses = frozenset(statuses)
        self.max_replay_bytes = max_replay_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await run_lifespans(self.lifespan_apps(), scope, receive, send, per_app_state=True)
            return
        if kind != "http" and kind != "websocket":
            raise ValueError(f"Fallback cannot handle scope type {kind!r}")
        attempt = _Attempt(kind, receive, send, self)
        primary_scope = with_app_state(scope, self.primary)
        await self.primary(dict(primary_scope), attempt.receive, attempt.send)
        if attempt.discarded:
            await self.fallback(with_app_state(scope, self.fallback), attempt.replay, send)

    def lifespan_apps(self) -> list[tuple[str, ASGIApp]]:
        """The apps whose lifespans this one stands for: the primary, then the fallback."""
        return [("primary", self.primary), ("fallback", self.fallback)]

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        """Reverse ``name`` in the primary, else in the fallback (Starlette's protocol)."""
        from starlette.routing import NoMatchFound as StarletteNoMatchFound

        try:
            return reverse(self.primary, "", name, path_params)
        except StarletteNoMatchFound:
            return reverse(self.fallback, "", name, path_params)


class _Attempt:
    """One try at the primary app: records what it reads, holds back what it answers."""

    def __init__(self, kind: str, receive: Receive, send: Send, owner: Fallback) -> None:
        self.kind = kind
        self._receive = receive
        self._send = send
        self._owner = owner
        self.recorded: list[Message] = []
        self.recorded_bytes = 0
        self.replayable = True
        self.decided = False
        self.discarded = False

    async def receive(self) -> Message:
        message = await self._receive()
        if self.replayable:
            self.recorded_bytes += len(message.get("body", b"") or message.get("bytes", b""))
            if self.recorded_bytes > self._owner.max_replay_bytes:
                self.replayable = False
                self.recorded.clear()
            else:
                self.recorded.append(message)
        return message

    async def send(self, message: Message) -> None:
        if not self.decided:
            self._decide(message)
        if not self.discarded:
            await self._send(message)

    def _decide(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start" or kind == "websocket.http.response.start":
            status = int(message["status"])
            self.decided = True
            if status in self._owner.statuses:
                self._discard(f"status {status}")
        elif kind == "websocket.close":
            # Closing before accept is the websocket way of saying "not here" (403).
            self.decided = True
            self._discard("websocket closed before accept")
        elif kind == "websocket.accept":
            self.decided = True

    def _discard(self, why: str) -> None:
        if self.replayable:
            self.discarded = True
            logger.debug("fallback: primary answered %s; replaying", why)
        else:
            logger.warning(
                "fallback: primary answered %s after reading more than %d bytes; "
                "sending its answer (request body cannot be replayed)",
                why,
                self._owner.max_replay_bytes,
            )

    async def replay(self) -> Message:
        if self.recorded:
            return self.recorded.pop(0)
        return await self._receive()
