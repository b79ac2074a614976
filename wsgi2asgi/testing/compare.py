"""``assert_same_responses``: the check a team runs in CI before switching a route.

Rules this module keeps:

* Every request is sent to both apps, in the given order, each app behind its own
  :class:`~wsgi2asgi.testing.client.TestClient` (its lifespan runs; its cookies carry over from
  one request to the next, so a login then a page works). App exceptions are answered 500, as
  served, so one crash is a difference in the report rather than the end of the replay.
* Compared, as :class:`~wsgi2asgi.shadow.Shadow` compares: the status, the ``compare_headers``
  (every value, in order) and the body after the ``ignore`` normalisations (regexes whose
  matches become ``<ignored>``, or callables ``bytes -> bytes``).
* All differences are collected, then one ``AssertionError`` lists them, each with a unified
  diff of the bodies (legacy ``-``, migrated ``+``).
* Requests: ``"GET /path?q=1"`` (or just ``"/path"``), ``(method, path)``,
  ``(method, path, body)``, a dict (``method``, ``path``, ``headers``, ``body``), an
  ``httpx.Request``; or what a :class:`~wsgi2asgi.shadow.Shadow` recorded: its ``report()``, or
  its differences. Shadow keeps a difference's route, not its query or body: a route it
  recorded as a template (``/items/{id}``, Starlette's matched route) cannot be replayed and
  is a ``ValueError``.

Example::

    assert_same_responses(legacy_app, migrated_app, ["GET /items/1", ("POST", "/items", b"{}")],
                          ignore=[rb'"now": "[^"]*"'])
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import httpx

from wsgi2asgi.testing.client import TestClient
from wsgi2asgi.typing import ASGIApp

__all__ = ["assert_same_responses"]

Normaliser = Callable[[bytes], bytes] | str | bytes | re.Pattern[str] | re.Pattern[bytes]


@dataclasses.dataclass(frozen=True)
class _Replay:
    """One request to send to both apps."""

    method: str
    path: str
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def assert_same_responses(
    legacy: ASGIApp,
    migrated: ASGIApp,
    requests: Iterable[Any] | Mapping[str, Any],
    *,
    compare_headers: Sequence[str] = ("content-type",),
    ignore: Sequence[Normaliser] = (),
    base_url: str = "http://testserver",
) -> None:
    """Replay ``requests`` against both apps; fail with a readable diff where they differ.

    Example::

        assert_same_responses(legacy, migrated, shadow.report())   # what Shadow saw differ

    Args:
        legacy: the app answering today.
        migrated: the app meant to replace it.
        requests: the requests (see the module's rules), or a Shadow report.
        compare_headers: response header names compared besides status and body.
        ignore: body normalisations applied to both bodies before comparing.
        base_url: the URL the paths are relative to (its host is the ``Host`` header).

    Raises:
        AssertionError: some requests were answered differently; the message lists them.
        ValueError: a request that cannot be replayed (an unknown form, a route template).
        TypeError: ``requests`` is one request, not a list of them.
    """
    replays = [_to_replay(item) for item in _items(requests)]
    normalisers = [_normaliser(item) for item in ignore]
    found: list[str] = []
    options: dict[str, Any] = {"base_url": base_url, "raise_app_exceptions": False}
    with TestClient(legacy, **options) as old, TestClient(migrated, **options) as new:
        for replay in replays:
            answers = _send(old, replay), _send(new, replay)
            problems = _compare(*answers, compare_headers, normalisers)
            if problems:
                found.append("\n".join([f"{replay}:", *("  " + p for p in problems)]))
    if found:
        count = f"{len(found)} of {len(replays)} requests answered differently"
        raise AssertionError("\n\n".join([f"{count} (legacy != migrated):", *found]))


def _to_replay(item: Any) -> _Replay:
    """The :class:`_Replay` for one item of ``requests`` (see the module's rules).

    Raises:
        ValueError: ``item`` is no request form this module knows, or a route template.
    """
    if isinstance(item, str):
        method, _, path = item.strip().rpartition(" ")
        return _checked(_Replay(method.upper() or "GET", path))
    if isinstance(item, httpx.Request):
        path = item.url.raw_path.decode("ascii")
        return _Replay(item.method, path, list(item.headers.items()), item.read())
    if isinstance(item, tuple) and len(item) in (2, 3):
        body = item[2] if len(item) == 3 else b""
        return _checked(_Replay(item[0].upper(), item[1], (), _bytes(body)))
    route = item.get("route") if isinstance(item, Mapping) else getattr(item, "route", None)
    if isinstance(route, str):  # a Shadow Difference, or its dict in a report
        return _to_replay(route)
    if isinstance(item, Mapping) and "path" in item:
        headers = list(dict(item.get("headers", {})).items())
        body = _bytes(item.get("body", b""))
        return _checked(
            _Replay(str(item.get("method", "GET")).upper(), item["path"], headers, body)
        )
    raise ValueError(f"not a request assert_same_responses can replay: {item!r}")


def _items(requests: Iterable[Any] | Mapping[str, Any]) -> Iterable[Any]:
    if isinstance(requests, str | bytes | httpx.Request):
        raise TypeError(f"requests must be a list of requests, not one: [{requests!r}]")
    if isinstance(requests, Mapping):
        if "differences" not in requests:
            raise ValueError("a mapping of requests must be a Shadow report (no 'differences')")
        differences: Iterable[Any] = requests["differences"]
        return differences
    return requests


def _checked(replay: _Replay) -> _Replay:
    if not replay.path.startswith("/"):
        raise ValueError(f"{replay}: a path must start with '/'")
    if "{" in replay.path:
        raise ValueError(
            f"{replay} is a route template (Shadow records Starlette's matched route), not a "
            "path: replay it with a path of that route instead"
        )
    return replay


def _bytes(body: Any) -> bytes:
    return body.encode() if isinstance(body, str) else bytes(body)


def _send(client: TestClient, replay: _Replay) -> httpx.Response:
    headers = dict(replay.headers)
    return client.request(replay.method, replay.path, headers=headers, content=replay.body)


def _compare(
    old: httpx.Response,
    new: httpx.Response,
    header_names: Sequence[str],
    normalisers: Sequence[Callable[[bytes], bytes]],
) -> list[str]:
    problems: list[str] = []
    if old.status_code != new.status_code:
        problems.append(f"status {old.status_code} != {new.status_code}")
    for name in header_names:
        mine, theirs = old.headers.get_list(name), new.headers.get_list(name)
        if mine != theirs:
            problems.append(f"{name.lower()}: {mine!r} != {theirs!r}")
    old_body, new_body = old.content, new.content
    for normalise in normalisers:
        old_body, new_body = normalise(old_body), normalise(new_body)
    if old_body != new_body:
        problems.append("body differs:")
        problems.extend("  " + line for line in _diff(old_body, new_body))
    return problems


def _diff(legacy: bytes, migrated: bytes, limit: int = 40) -> list[str]:
    mine = legacy.decode("utf-8", "replace").splitlines()
    theirs = migrated.decode("utf-8", "replace").splitlines()
    lines = list(difflib.unified_diff(mine, theirs, "legacy", "migrated", n=2, lineterm=""))
    if len(lines) > limit:
        lines = [*lines[:limit], f"... {len(lines) - limit} more lines"]
    return [line[:200] for line in lines]


def _normaliser(item: Normaliser) -> Callable[[bytes], bytes]:
    if callable(item):
        return item
    source = item.pattern if isinstance(item, re.Pattern) else item
    flags = item.flags & ~re.UNICODE if isinstance(item, re.Pattern) else 0
    pattern = re.compile(source.encode() if isinstance(source, str) else source, flags)
    return lambda body: pattern.sub(b"<ignored>", body)
