"""``Split``: canary traffic. A sticky share of users goes to the migrated app, the rest to legacy.

Between :class:`~wsgi2asgi.shadow.Shadow` (compare, the client never sees the new code) and
:class:`~wsgi2asgi.fallback.Fallback` (the new code in front for everyone). Rules this module
keeps:

* Sticky per user: the *key* (a cookie, a header, or the client address) is hashed (BLAKE2b,
  the same in every process and worker) into one of 10,000 buckets; a request goes to the
  migrated app when its bucket is below ``percent`` x 100. So a user never flips while the
  percentage stays, raising it only moves users from legacy to migrated (lowering it moves the
  same users back), and every worker process agrees. A request without the key (no cookie
  yet) goes to legacy and is counted as ``unkeyed``.
* One arm per request: the request goes to one app, once; nothing is recorded or replayed, so
  a POST is never run twice. WebSockets follow the same key rule as HTTP.
* Per arm: requests, WebSocket sessions, errors (a 5xx response, or an exception: it is counted
  then propagates to the server as it would without the split), the error rate, latency
  percentiles (the app call's duration, over the last ``keep_latencies`` HTTP requests) and
  the requests in flight; :meth:`Split.report` returns them as a JSON-ready dict.
* Rollback: when the migrated arm's error rate over the last ``window`` seconds is above
  ``max_error_rate`` with at least ``min_requests`` requests in that window, all its traffic
  goes back to legacy, and a WARNING on ``wsgi2asgi.split`` says so. ``percent`` keeps its
  value; setting it again (a person decided) clears the rollback.
* ``percent`` changes at run time, from code (``split.percent = 25``) or :meth:`Split.set_percent`
  (what a dashboard or an admin endpoint calls); no restart, no signal.
* Lifespan reaches both apps, once each, each with a ``state`` of its own, and each request
  gets the state of the app answering it (:mod:`wsgi2asgi.fanout`). Scope types other than
  ``http``, ``websocket`` and ``lifespan`` raise (ASGI: "Applications should actively reject
  any protocol that they do not understand").

Example::

    app = Split(starlette_app(new_api), wsgi_to_asgi(legacy), percent=5, key="cookie:sessionid")
    ...
    app.set_percent(25)
    app.report()["arms"]["migrated"]["error_rate"]
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from wsgi2asgi.exceptions import ClientDisconnected
from wsgi2asgi.fanout import run_lifespans, with_app_state
from wsgi2asgi.routing import reverse
from wsgi2asgi.typing import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ArmStats", "Split"]

logger = logging.getLogger(__name__)

KeyRule = str | Callable[[Scope], str | None]

_BUCKETS = 10_000  # percent has two decimals of resolution: 0.01 % is one bucket
_ARMS = ("migrated", "legacy")


class ArmStats:
    """The counters of one arm of a :class:`Split`.

    Example::

        split.stats["migrated"].error_rate

    Args:
        window: seconds of recent traffic kept for the error rate that triggers rollback.
        keep_latencies: how many recent HTTP latencies the percentiles are computed over.
        clock: where time comes from (``time.monotonic``).
    """

    def __init__(self, *, window: float, keep_latencies: int, clock: Callable[[], float]) -> None:
        self.requests = self.errors = self.websockets = self.in_flight = 0
        self.latencies: deque[float] = deque(maxlen=keep_latencies)
        self.recent = _Window(window, clock)

    @property
    def error_rate(self) -> float:
        """Errors over requests since the start (0.0 before any request)."""
        return self.errors / self.requests if self.requests else 0.0

    def record(self, *, error: bool, latency: float | None, websocket: bool = False) -> None:
        """Count one finished request (``latency`` in seconds, ``None`` for a WebSocket)."""
        self.requests += 1
        self.errors += error
        self.websockets += websocket
        if latency is not None:
            self.latencies.append(latency)
        self.recent.add(error)

    def as_dict(self) -> dict[str, Any]:
        """Return the counters as a JSON-ready dict (latencies in milliseconds)."""
        requests, errors = self.recent.totals()
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            "websockets": self.websockets,
            "in_flight": self.in_flight,
            "latency_ms": _percentiles(self.latencies),
            "window": {
                "seconds": self.recent.seconds,
                "requests": requests,
                "errors": errors,
                "error_rate": round(errors / requests, 4) if requests else 0.0,
            },
        }


class Split:
    """Send a sticky ``percent`` of users to ``migrated``, the others to ``legacy``.

    Example::

        Split(new_app, legacy_app, percent=10, key="header:x-user-id", max_error_rate=0.02)

    Args:
        migrated: the new app.
        legacy: the app answering today.
        percent: the share of users (0 to 100, two decimals) sent to ``migrated``.
        key: who a request belongs to: ``"client"`` (the client address, the default),
            ``"cookie:NAME"``, ``"header:NAME"``, or a callable ``scope -> str | None``.
        max_error_rate: above this error rate (0 to 1) in the window, roll back (``None``:
            never roll back).
        min_requests: the fewest requests in the window that can trigger a rollback.
        window: the seconds of recent migrated traffic the error rate is taken over.
        salt: mixed into the hash, to pick another set of users for the same percentage.
        keep_latencies: recent HTTP latencies kept per arm for the percentiles.
        clock: where time comes from (``time.monotonic``); tests pass their own.

    Raises:
        ValueError: ``percent`` outside 0 to 100, a ``key`` that is not a rule, or a limit
            out of range.
    """

    def __init__(
        self,
        migrated: ASGIApp,
        legacy: ASGIApp,
        *,
        percent: float = 10.0,
        key: KeyRule = "client",
        max_error_rate: float | None = 0.05,
        min_requests: int = 20,
        window: float = 60.0,
        salt: str = "",
        keep_latencies: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_error_rate is not None and not 0.0 <= max_error_rate <= 1.0:
            raise ValueError(f"max_error_rate must be from 0 to 1, not {max_error_rate!r}")
        if min_requests < 1 or window <= 0 or keep_latencies < 1:
            raise ValueError("min_requests, window and keep_latencies must be positive")
        self.migrated = migrated
        self.legacy = legacy
        self.key = key if isinstance(key, str) else getattr(key, "__qualname__", repr(key))
        self._key_of = _key_reader(key)
        self.max_error_rate = max_error_rate
        self.min_requests = min_requests
        self.salt = salt
        self.clock = clock
        self.stats = {
            arm: ArmStats(window=window, keep_latencies=keep_latencies, clock=clock)
            for arm in _ARMS
        }
        self.unkeyed = 0
        self.rollback: dict[str, Any] | None = None
        self._percent = _checked_percent(percent)
        self._threshold = round(self._percent * _BUCKETS / 100)

    @property
    def percent(self) -> float:
        """The share of users sent to the migrated app; setting it is :meth:`set_percent`."""
        return self._percent

    @percent.setter
    def percent(self, value: float) -> None:
        self.set_percent(value)

    @property
    def rolled_back(self) -> bool:
        """Whether errors sent the migrated arm's traffic back to legacy."""
        return self.rollback is not None

    def set_percent(self, value: float) -> None:
        """Send ``value`` percent of users to the migrated app from the next request on.

        Also clears a rollback: the migrated arm gets traffic again, with a fresh window.

        Raises:
            ValueError: ``value`` is not a number from 0 to 100.
        """
        value = _checked_percent(value)
        logger.info("split: %s%% of users to the migrated app (was %s%%)", value, self._percent)
        self._percent = value
        self._threshold = round(value * _BUCKETS / 100)
        if self.rollback is not None:
            self.rollback = None
            self.stats["migrated"].recent.clear()

    def choose(self, scope: Scope) -> str:
        """The arm (``"migrated"`` or ``"legacy"``) a request with ``scope`` goes to."""
        key = self._key_of(scope)
        if key is None or self.rollback is not None:
            return "legacy"
        digest = hashlib.blake2b(f"{self.salt}\0{key}".encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest, "big") % _BUCKETS
        return "migrated" if bucket < self._threshold else "legacy"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await run_lifespans(self.lifespan_apps(), scope, receive, send, per_app_state=True)
            return
        if kind != "http" and kind != "websocket":
            raise ValueError(f"Split cannot handle scope type {kind!r}")
        if self._key_of(scope) is None:
            self.unkeyed += 1
        arm = self.choose(scope)
        app = self.migrated if arm == "migrated" else self.legacy
        await self._serve(arm, app, with_app_state(scope, app), receive, send)

    def report(self) -> dict[str, Any]:
        """Return the split's setting and per-arm statistics as a JSON-ready dict.

        Example::

            json.dumps(split.report())
        """
        return {
            "percent": self._percent,
            "effective_percent": 0.0 if self.rollback is not None else self._percent,
            "key": self.key,
            "rolled_back": self.rollback is not None,
            "rollback": dict(self.rollback) if self.rollback is not None else None,
            "max_error_rate": self.max_error_rate,
            "min_requests": self.min_requests,
            "unkeyed": self.unkeyed,
            "arms": {arm: stats.as_dict() for arm, stats in self.stats.items()},
        }

    def lifespan_apps(self) -> list[tuple[str, ASGIApp]]:
        """The apps whose lifespans this one stands for: the migrated one, then legacy."""
        return [("migrated", self.migrated), ("legacy", self.legacy)]

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        """Reverse ``name`` in the legacy app, else in the migrated one (Starlette's protocol)."""
        from starlette.routing import NoMatchFound as StarletteNoMatchFound

        try:
            return reverse(self.legacy, "", name, path_params)
        except StarletteNoMatchFound:
            return reverse(self.migrated, "", name, path_params)

    async def _serve(
        self, arm: str, app: ASGIApp, scope: Scope, receive: Receive, send: Send
    ) -> None:
        stats = self.stats[arm]
        status: list[int] = []

        async def observed(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                status.append(int(message["status"]))
            await send(message)

        websocket = scope["type"] == "websocket"
        started = self.clock()
        stats.in_flight += 1
        try:
            await app(scope, receive, observed)
        except ClientDisconnected:  # the client left: not the app's error
            stats.record(error=False, latency=None, websocket=websocket)
            raise
        except Exception:
            self._finished(arm, error=True, latency=None, websocket=websocket)
            raise
        finally:
            stats.in_flight -= 1
        # An HTTP app that returns without a response is answered 500 by the server.
        error = (status[0] >= 500) if status else not websocket
        latency = None if websocket else self.clock() - started
        self._finished(arm, error=error, latency=latency, websocket=websocket)

    def _finished(self, arm: str, *, error: bool, latency: float | None, websocket: bool) -> None:
        self.stats[arm].record(error=error, latency=latency, websocket=websocket)
        if arm == "migrated" and error and self.rollback is None:
            self._check_rollback()

    def _check_rollback(self) -> None:
        if self.max_error_rate is None:
            return
        requests, errors = self.stats["migrated"].recent.totals()
        if requests < self.min_requests or errors / requests <= self.max_error_rate:
            return
        seconds = self.stats["migrated"].recent.seconds
        reason = (
            f"{errors} of {requests} requests ({errors / requests:.0%}) failed in the last "
            f"{seconds:g} s, above {self.max_error_rate:.0%}"
        )
        self.rollback = {"at": time.time(), "reason": reason}
        logger.warning("split: migrated app: %s: sending its traffic back to legacy", reason)


class _Window:
    """Requests and errors of the last ``seconds``, kept in 10 buckets (memory stays bounded)."""

    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self.seconds = seconds
        self._span = seconds / 10
        self._clock = clock
        self._buckets: deque[list[int]] = deque()  # [bucket number, requests, errors]

    def add(self, error: bool) -> None:
        number = self._prune()
        if not self._buckets or self._buckets[-1][0] != number:
            self._buckets.append([number, 0, 0])
        self._buckets[-1][1] += 1
        self._buckets[-1][2] += error

    def totals(self) -> tuple[int, int]:
        """``(requests, errors)`` in the window."""
        self._prune()
        return sum(b[1] for b in self._buckets), sum(b[2] for b in self._buckets)

    def clear(self) -> None:
        self._buckets.clear()

    def _prune(self) -> int:
        number = int(self._clock() // self._span)
        while self._buckets and self._buckets[0][0] <= number - 10:
            self._buckets.popleft()
        return number


def _checked_percent(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"percent must be a number from 0 to 100, not {value!r}")
    if not 0 <= value <= 100:
        raise ValueError(f"percent must be a number from 0 to 100, not {value!r}")
    return float(value)


def _key_reader(rule: KeyRule) -> Callable[[Scope], str | None]:
    """The function reading a request's key for ``rule`` (see :class:`Split`'s ``key``)."""
    if callable(rule):
        return rule
    kind, _, name = rule.partition(":")
    if rule == "client":
        return _client_address
    if kind == "cookie" and name:
        return lambda scope: _cookie(scope, name)
    if kind == "header" and name:
        wanted = name.lower().encode("latin-1")
        return lambda scope: _header(scope, wanted)
    raise ValueError(
        f"key must be 'client', 'cookie:NAME', 'header:NAME' or a callable, not {rule!r}"
    )


def _client_address(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    # RFC 6265 §5.4: Cookie: name=value; name2=value2 (possibly in several header lines).
    for key, value in scope.get("headers", ()):
        if key.lower() != b"cookie":
            continue
        for pair in bytes(value).decode("latin-1").split(";"):
            cookie_name, _, cookie_value = pair.strip().partition("=")
            if cookie_name == name and cookie_value:
                return cookie_value
    return None


def _percentiles(latencies: deque[float]) -> dict[str, float | None]:
    """p50, p90, p99 and max in milliseconds (nearest rank), ``None`` before any request."""
    if not latencies:
        return dict.fromkeys(("p50", "p90", "p99", "max"))
    ordered = sorted(latencies)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000, 3)

    return {"p50": rank(0.5), "p90": rank(0.9), "p99": rank(0.99), "max": rank(1.0)}
