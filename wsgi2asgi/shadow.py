"""Shadow traffic: answer from the primary app, replay to a candidate, compare the two answers.

Rules this module keeps:

* The client only ever talks to the primary. Its response is passed through message by message
  as it is sent (a tee records a copy, up to ``max_body``), so Shadow adds no latency and
  changes no byte of it.
* A request is shadowed when it is selected (``methods``, ``paths``, ``sample``) *and* it can be
  replayed faithfully: its body is known in full (the primary read all of it, or the headers say
  there is none) and fits ``max_body``, the client did not disconnect, the primary's response
  completed and fits ``max_body``, and fewer than ``max_concurrency`` replays are running.
  A selected request that fails one of these is counted as ``skipped``, with the reason.
* Memory is bounded: at most ``max_pending`` requests are being recorded or replayed at once
  (each holding at most ``max_body`` of request and of response); past that, requests pass
  through unrecorded and count as ``skipped`` (``busy``).
* The replay starts in a background task *after* the primary returns. The candidate gets a copy
  of the original scope (no ``extensions``, so it cannot answer with ``pathsend``) and the
  recorded body; its answer is captured, never sent. A candidate that raises, breaks the ASGI
  contract or runs past ``timeout`` is counted in ``candidate_errors``; the client never knows.
* Compared: the status, the ``compare_headers`` (all values, in order) and the body after the
  ``ignore`` normalisations (callables ``bytes -> bytes``, or regexes whose matches become
  ``<ignored>``). A difference is logged at WARNING on ``wsgi2asgi.shadow`` with a diff.
* WebSocket scopes go to the primary only; lifespan reaches both apps, each with a ``state`` of
  its own (the primary's requests see the primary's, replays the candidate's), and shutdown
  waits for the replays in flight.

Example::

    app = Shadow(wsgi_to_asgi(legacy_flask_app), new_starlette_app, paths=("/api/",))
    ...
    await app.drain()
    print(app.report())
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import json
import logging
import random
import re
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Collection, Sequence
from typing import Any

from wsgi2asgi.exceptions import ASGIContractError
from wsgi2asgi.fanout import run_lifespans, with_app_state
from wsgi2asgi.headers import content_length
from wsgi2asgi.prefixes import route_path
from wsgi2asgi.typing import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "Difference",
    "Shadow",
    "ShadowStats",
    "fetch_report",
    "format_report",
]

logger = logging.getLogger(__name__)

Normaliser = Callable[[bytes], bytes] | str | bytes | re.Pattern[str] | re.Pattern[bytes]
PathFilter = Sequence[str] | Callable[[str], bool] | None


_MAX_ROUTES = 500
_COUNTERS = ("compared", "equal", "different", "candidate_errors", "skipped")


@dataclasses.dataclass(frozen=True)
class Difference:
    """One request whose candidate answer differed from the primary's.

    Example::

        Difference("GET /items/{id}", ["status 200 != 500"], "", time.time())

    Args:
        route: ``"METHOD template-or-path"``.
        problems: what differed, one phrase each (status, a header, the body).
        diff: a unified diff of the (normalised) bodies, cut short; ``""`` if bodies agree.
        at: when it was seen (seconds since the epoch).
    """

    route: str
    problems: list[str]
    diff: str
    at: float = dataclasses.field(default_factory=time.time)


class ShadowStats:
    """The counters of a :class:`Shadow`: totals, per route, skip reasons, recent differences.

    ``compared == equal + different``; ``candidate_errors`` and ``skipped`` were not compared.
    Routes beyond the first 500 seen are counted under ``"(other)"`` so memory stays bounded.

    Example::

        shadow.stats.different, shadow.stats.routes["GET /api/items"]["equal"]

    Args:
        keep_differences: how many recent differences to keep.
    """

    def __init__(self, *, keep_differences: int = 20) -> None:
        self.compared = self.equal = self.different = 0
        self.candidate_errors = self.skipped = 0
        self.skipped_reasons: dict[str, int] = {}
        self.routes: dict[str, dict[str, int]] = {}
        self.differences: deque[Difference] = deque(maxlen=keep_differences)

    def _count(self, route: str, *names: str) -> None:
        if route not in self.routes and len(self.routes) >= _MAX_ROUTES:
            route = "(other)"
        counters = self.routes.setdefault(route, dict.fromkeys(_COUNTERS, 0))
        for name in names:
            setattr(self, name, getattr(self, name) + 1)
            counters[name] += 1

    def record_equal(self, route: str) -> None:
        """Count a replay whose answer matched."""
        self._count(route, "compared", "equal")

    def record_difference(self, difference: Difference) -> None:
        """Count a replay whose answer differed, and keep it."""
        self._count(difference.route, "compared", "different")
        self.differences.append(difference)

    def record_error(self, route: str) -> None:
        """Count a replay where the candidate failed (raised, timed out, broke the protocol)."""
        self._count(route, "candidate_errors")

    def record_skip(self, route: str, reason: str) -> None:
        """Count a selected request that could not be replayed, and why."""
        self._count(route, "skipped")
        self.skipped_reasons[reason] = self.skipped_reasons.get(reason, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        """Return everything as a JSON-ready dict."""
        return {
            **{name: getattr(self, name) for name in _COUNTERS},
            "skipped_reasons": dict(self.skipped_reasons),
            "routes": {route: dict(counters) for route, counters in self.routes.items()},
            "differences": [dataclasses.asdict(d) for d in self.differences],
        }


class Shadow:
    """Serve every request from ``primary``; replay selected ones to ``candidate`` and compare.

    Example::

        app = Shadow(legacy, rewrite, ignore=[rb'"now": "[^"]*"'], report_path="/__shadow__")

    Args:
        primary: the app that answers the client.
        candidate: the app under test; its answers are compared, never sent.
        methods: the HTTP methods to replay (default: the safe ones).
        paths: path prefixes, or a predicate on the path, selecting what to replay (all).
            Paths are relative to where the Shadow is mounted (below ``root_path``).
        compare_headers: response header names compared besides status and body.
        ignore: body normalisations applied to both bodies before comparing.
        max_body: the largest request or response body recorded (default 1 MiB).
        max_concurrency: replays running at once; above it requests are skipped.
        max_pending: requests recorded or replayed at once (default ``4 * max_concurrency``);
            above it requests pass through unrecorded and are skipped. Bounds memory.
        sample: the fraction of selected requests replayed (``0.0`` to ``1.0``).
        timeout: seconds the candidate gets per replay.
        report_path: a path answering ``GET`` with :meth:`report` as JSON (off by default).
        keep_differences: how many recent differences the stats keep.
        logger: where differences and candidate errors are logged.

    Raises:
        ValueError: ``sample`` outside ``[0, 1]`` or a limit that is not positive.
    """

    def __init__(
        self,
        primary: ASGIApp,
        candidate: ASGIApp,
        *,
        methods: Collection[str] = ("GET", "HEAD", "OPTIONS"),
        paths: PathFilter = None,
        compare_headers: Collection[str] = ("content-type",),
        ignore: Sequence[Normaliser] = (),
        max_body: int = 1 << 20,
        max_concurrency: int = 8,
        max_pending: int | None = None,
        sample: float = 1.0,
        timeout: float = 10.0,
        report_path: str | None = None,
        keep_differences: int = 20,
        logger: logging.Logger | None = None,
    ) -> None:
        if not 0.0 <= sample <= 1.0:
            raise ValueError(f"sample must be between 0 and 1, not {sample!r}")
        if max_pending is None:
            max_pending = 4 * max_concurrency
        if max_body < 0 or max_concurrency < 1 or max_pending < 1 or timeout <= 0:
            raise ValueError("max_body, max_concurrency, max_pending and timeout must be positive")
        self.primary = primary
        self.candidate = candidate
        self.methods = frozenset(m.upper() for m in methods)
        self.paths = paths
        self.compare_headers = tuple(name.lower().encode("latin-1") for name in compare_headers)
        self.normalisers = [_normaliser(item) for item in ignore]
        self.max_body = max_body
        self.max_concurrency = max_concurrency
        self.max_pending = max_pending
        self.sample = sample
        self.timeout = timeout
        self.report_path = report_path
        self.logger = logger if logger is not None else logging.getLogger(__name__)
        self.stats = ShadowStats(keep_differences=keep_differences)
        self._tasks: set[asyncio.Task[None]] = set()
        self._recording = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            apps = [("primary", self.primary), ("candidate", self.candidate)]
            # Each app gets a lifespan state of its own (docs/routing.md, "Lifespan state").
            await run_lifespans(apps, scope, self._draining(receive), send, per_app_state=True)
            return
        candidate_scope = with_app_state(scope, self.candidate)
        scope = with_app_state(scope, self.primary)
        if scope["type"] != "http":
            await self.primary(scope, receive, send)
            return
        if self.report_path is not None and route_path(scope) == self.report_path:
            await self._send_report(send)
            return
        if not self._selected(scope):
            await self.primary(scope, receive, send)
            return
        if self._recording + len(self._tasks) >= self.max_pending:
            await self.primary(scope, receive, send)
            self.stats.record_skip(_route_of(scope), "busy")
            return
        replay_scope = _replay_scope(candidate_scope)
        tee = _Tee(scope, receive, send, self.max_body)
        self._recording += 1
        try:
            await self.primary(scope, tee.receive, tee.send)
        finally:
            self._recording -= 1
        self._schedule(scope, replay_scope, tee)

    def report(self) -> dict[str, Any]:
        """Return the statistics as a JSON-ready dict (counters, per route, recent differences).

        Example::

            json.dumps(shadow.report())
        """
        return self.stats.as_dict()

    async def drain(self) -> None:
        """Wait until every replay started so far has been compared."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _draining(self, receive: Receive) -> Receive:
        """Finish the replays in flight (each bounded by ``timeout``) before shutdown."""

        async def receive_then_drain() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.drain()
            return message

        return receive_then_drain

    def _selected(self, scope: Scope) -> bool:
        if scope.get("method", "GET") not in self.methods:
            return False
        # Like report_path, relative to where Shadow is mounted (the path below root_path).
        path = route_path(scope)
        if callable(self.paths):
            if not self.paths(path):
                return False
        elif self.paths is not None and not any(path.startswith(p) for p in self.paths):
            return False
        return self.sample >= 1.0 or random.random() < self.sample

    def _schedule(self, scope: Scope, replay_scope: Scope, tee: _Tee) -> None:
        route = _route_of(scope)
        reason = tee.unreplayable()
        if reason is None and len(self._tasks) >= self.max_concurrency:
            reason = "busy"
        if reason is not None:
            self.stats.record_skip(route, reason)
            return
        primary = _Answer(tee.status or 0, tee.headers, bytes(tee.response))
        task = asyncio.create_task(self._replay(route, replay_scope, bytes(tee.body), primary))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replay(self, route: str, scope: Scope, body: bytes, primary: _Answer) -> None:
        capture = _Capture(body, self.max_body)
        try:
            await asyncio.wait_for(
                self.candidate(scope, capture.receive, capture.send), self.timeout
            )
            answer = capture.answer()
        except Exception as exc:  # the candidate's failure is data, never the client's problem
            reason = "timeout" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            self.stats.record_error(route)
            self.logger.warning("shadow: candidate failed on %s: %s", route, reason)
            return
        self._compare(route, primary, answer)

    def _compare(self, route: str, primary: _Answer, candidate: _Answer) -> None:
        problems: list[str] = []
        if primary.status != candidate.status:
            problems.append(f"status {primary.status} != {candidate.status}")
        for name in self.compare_headers:
            mine, theirs = primary.header(name), candidate.header(name)
            if mine != theirs:
                problems.append(f"{name.decode()}: {mine!r} != {theirs!r}")
        mine_body, their_body = self._normalise(primary.body), self._normalise(candidate.body)
        diff = ""
        if mine_body != their_body:
            problems.append("body differs")
            diff = _diff(mine_body, their_body)
        if not problems:
            self.stats.record_equal(route)
            return
        self.stats.record_difference(Difference(route, problems, diff))
        self.logger.warning("shadow: %s differs: %s\n%s", route, "; ".join(problems), diff)

    def _normalise(self, body: bytes) -> bytes:
        for normalise in self.normalisers:
            body = normalise(body)
        return body

    async def _send_report(self, send: Send) -> None:
        body = json.dumps(self.report(), indent=2).encode()
        headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _Answer:
    """A response as compared: status, headers, body."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def header(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key.lower() == name]


class _Tee:
    """Pass the primary's messages through unchanged while recording a copy."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, max_body: int) -> None:
        self._receive, self._send, self._max = receive, send, max_body
        self.body = bytearray()
        self.body_complete = _has_no_body(scope)
        self.body_too_large = (content_length(scope.get("headers", ())) or 0) > max_body
        self.disconnected = False
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.response = bytearray()
        self.response_complete = False
        self.response_too_large = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if len(self.body) + len(chunk) > self._max:
                self.body_too_large = True
            elif not self.body_too_large:
                self.body += chunk
            if not message.get("more_body", False):
                self.body_complete = True
        elif message["type"] == "http.disconnect":
            self.disconnected = True
        return message

    async def send(self, message: Message) -> None:
        await self._send(message)
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", ())]
        elif message["type"] == "http.response.body" and self.status is not None:
            chunk = message.get("body", b"")
            if len(self.response) + len(chunk) > self._max:
                self.response_too_large = True
            elif not self.response_too_large:
                self.response += chunk
            if not message.get("more_body", False):
                self.response_complete = True

    def unreplayable(self) -> str | None:
        """Return why this exchange cannot be replayed faithfully, or ``None``."""
        if self.body_too_large:
            return "request body too large"
        if self.disconnected:
            return "client disconnected"
        if not self.body_complete:
            return "request body not read by the primary"
        if not self.response_complete:
            return "primary response incomplete"
        if self.response_too_large:
            return "response body too large"
        return None


class _Capture:
    """The candidate's receive and send: replay the recorded body, capture the answer."""

    def __init__(self, body: bytes, max_body: int) -> None:
        self._body: bytes | None = body
        self._max = max_body
        self._done = asyncio.Event()
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.truncated = False

    async def receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        # ASGI: receive blocks until there is something; the client is "gone" once answered.
        await self._done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self._done.is_set():
            return
        if kind == "http.response.start" and self.status is None:
            self.status = int(message["status"])
            self.headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", ())]
        elif kind == "http.response.body" and self.status is not None:
            self._keep(message.get("body", b""))
            if not message.get("more_body", False):
                self._done.set()
        else:
            raise ASGIContractError(f"candidate sent {kind!r} out of order")

    def _keep(self, chunk: bytes) -> None:
        room = self._max - len(self.body)
        if len(chunk) > room:
            self.truncated = True
        self.body += chunk[: max(room, 0)]

    def answer(self) -> _Answer:
        if self.status is None or not self._done.is_set():
            raise ASGIContractError("candidate returned without a complete response")
        body = bytes(self.body) + (b"\n<truncated at max_body>" if self.truncated else b"")
        return _Answer(self.status, self.headers, body)


def _replay_scope(scope: Scope) -> Scope:
    replay = dict(scope)
    replay["headers"] = list(scope.get("headers", ()))
    replay["extensions"] = {}
    if isinstance(scope.get("state"), dict):
        replay["state"] = dict(scope["state"])
    return replay


def _has_no_body(scope: Scope) -> bool:
    """RFC 9112: without Content-Length or Transfer-Encoding a request has no body."""
    names = {name.lower() for name, _ in scope.get("headers", ())}
    if b"transfer-encoding" in names:
        return False
    return not content_length(scope.get("headers", ()))


def _route_of(scope: Scope) -> str:
    """``"METHOD template"``: Starlette's matched route when it left one in the scope."""
    template = getattr(scope.get("route"), "path", None)
    path = f"{scope.get('root_path', '')}{template}" if isinstance(template, str) else scope["path"]
    return f"{scope.get('method', 'GET')} {path}"


def _normaliser(item: Normaliser) -> Callable[[bytes], bytes]:
    if callable(item):
        return item
    pattern: re.Pattern[bytes]
    if isinstance(item, re.Pattern):
        source = item.pattern
        flags = item.flags & ~re.UNICODE  # str patterns carry UNICODE, which bytes patterns refuse
        pattern = re.compile(source.encode() if isinstance(source, str) else source, flags)
    else:
        pattern = re.compile(item.encode() if isinstance(item, str) else item)
    return lambda body: pattern.sub(b"<ignored>", body)


def _diff(primary: bytes, candidate: bytes, limit: int = 40) -> str:
    mine = primary.decode("utf-8", "replace").splitlines()
    theirs = candidate.decode("utf-8", "replace").splitlines()
    lines = list(difflib.unified_diff(mine, theirs, "primary", "candidate", n=2, lineterm=""))
    if len(lines) > limit:
        lines = [*lines[:limit], f"... {len(lines) - limit} more lines"]
    return "\n".join(line[:200] for line in lines)


def fetch_report(url: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """Fetch the :meth:`Shadow.report` that a running Shadow serves at its ``report_path``.

    Example::

        report = fetch_report("http://127.0.0.1:8000/__shadow__")
        print(format_report(report))            # ``wsgi2asgi shadow-report URL`` does this

    Raises:
        OSError: the URL could not be fetched (refused, timed out, an HTTP error status).
        ValueError: the answer is not a shadow report (a health check's JSON, an HTML page);
            the message says why.
    """
    with urllib.request.urlopen(url, timeout=timeout) as response:
        content_type = response.headers.get("content-type") or "no content-type"
        body = response.read()
    return _parse_report(body, content_type)


def _parse_report(body: bytes, content_type: str) -> dict[str, Any]:
    """Return the :meth:`Shadow.report` in ``body``; ``ValueError`` says why it is not one."""
    try:
        report = json.loads(body)
    except ValueError:
        raise ValueError(f"it is {content_type}, not JSON") from None
    if not isinstance(report, dict):
        raise ValueError(f"its JSON is {_json_kind(report)}, not an object")
    missing = [name for name in _COUNTERS if not _is_count(report.get(name))]
    if missing:
        raise ValueError(f"its JSON has no {', '.join(missing)}")
    reasons, routes = report.get("skipped_reasons", {}), report.get("routes", {})
    differences = report.get("differences", [])
    fits = {
        "skipped_reasons": isinstance(reasons, dict) and all(map(_is_count, reasons.values())),
        "routes": isinstance(routes, dict) and all(map(_is_counters, routes.values())),
        "differences": isinstance(differences, list) and all(map(_is_difference, differences)),
    }
    wrong = [name for name, fit in fits.items() if not fit]
    if wrong:
        raise ValueError(f"its JSON has {' and '.join(wrong)} that are not a report's")
    return report


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_counters(value: object) -> bool:
    return isinstance(value, dict) and all(_is_count(value.get(name)) for name in _COUNTERS)


def _is_difference(value: object) -> bool:
    if not isinstance(value, dict):
        return False
    problems, route, diff = value.get("problems"), value.get("route"), value.get("diff")
    listed = isinstance(problems, list) and all(isinstance(p, str) for p in problems)
    return listed and isinstance(route, str) and isinstance(diff, str)


def _json_kind(value: object) -> str:
    kinds = {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def format_report(report: dict[str, Any]) -> str:
    """Render a :meth:`Shadow.report` dict as readable text."""
    totals = "  ".join(f"{name} {report.get(name, 0)}" for name in _COUNTERS)
    lines = [f"shadow: {totals}"]
    for reason, count in sorted(report.get("skipped_reasons", {}).items()):
        lines.append(f"  skipped ({reason}): {count}")
    routes = report.get("routes", {})
    if routes:
        width = max(len(route) for route in routes)
        lines.append("")
        lines.append(f"{'ROUTE'.ljust(width)}  EQUAL  DIFFERENT  ERRORS  SKIPPED")
        for route, c in sorted(routes.items()):
            counts = f"{c['equal']:>5}  {c['different']:>9}  {c['candidate_errors']:>6}"
            lines.append(f"{route.ljust(width)}  {counts}  {c['skipped']:>7}")
    for difference in report.get("differences", []):
        lines.append("")
        lines.append(f"{difference['route']}: {'; '.join(difference['problems'])}")
        if difference["diff"]:
            lines.append(difference["diff"])
    return "\n".join(lines)
