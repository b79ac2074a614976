"""Fuzz target: an ASGI scope built from arbitrary data → WSGI environ → scope again.

Invariants: :func:`build_environ` either refuses the scope with :class:`TooManyHeaders` or
builds an environ that ``wsgiref.validate`` accepts, with every value a latin-1 native string
(PEP 3333); ``SCRIPT_NAME + PATH_INFO`` is the request path; and :func:`build_scope` of that
environ gives back the path, root path, query string and header values (headers whose names
hold ``_`` are dropped, never passed on: they would be ambiguous in the environ).
"""

from __future__ import annotations

import io
from typing import Any
from wsgiref.validate import check_environ  # type: ignore[attr-defined]

import atheris

from wsgi2asgi.environ import WSGIErrors, build_environ
from wsgi2asgi.exceptions import TooManyHeaders
from wsgi2asgi.scope import build_scope

_TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"


def _scope(provider: atheris.FuzzedDataProvider) -> dict[str, Any]:
    segment = provider.ConsumeUnicodeNoSurrogates(6).replace("/", "")
    root = "/" + segment if segment and provider.ConsumeBool() else ""  # "" or "/x", as ASGI
    rest = "/" + provider.ConsumeUnicodeNoSurrogates(24)
    headers = []
    for _ in range(provider.ConsumeIntInRange(0, 6)):
        name = "".join(_TOKEN[b % len(_TOKEN)] for b in provider.ConsumeBytes(6)) or "x"
        value = provider.ConsumeBytes(12).replace(b"\r", b"").replace(b"\n", b"")
        headers.append((name.encode(), value.replace(b"\x00", b"")))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "root_path": root,
        "path": root + rest,
        "raw_path": None,
        "query_string": provider.ConsumeBytes(16).replace(b"#", b""),
        "headers": headers,
        "server": ("example.org", 80),
        "client": ("10.0.0.1", 4000),
    }


def one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    scope = _scope(provider)
    try:
        environ = build_environ(scope, io.BytesIO(), WSGIErrors())
    except TooManyHeaders:
        return
    check_environ(environ)
    for value in environ.values():
        if isinstance(value, str):
            value.encode("latin-1")  # PEP 3333: native strings hold bytes as latin-1
    full = (environ["SCRIPT_NAME"] + environ["PATH_INFO"]).encode("latin-1").decode("utf-8")
    assert full == scope["path"], (full, scope["path"])
    again = build_scope(environ)
    assert again["path"] == scope["path"]
    assert again["root_path"] == scope["root_path"]
    assert again["query_string"] == scope["query_string"]
    names = {name for name, _ in scope["headers"]} - {b"content-type", b"content-length"}
    for name in names:
        if b"_" in name:
            # Dropped on purpose: HTTP_X_A would be ambiguous with X-A (header spoofing).
            assert not any(n == name for n, _ in again["headers"]), name
            continue
        original = b",".join(v for n, v in scope["headers"] if n == name)
        back = [v for n, v in again["headers"] if n == name]
        assert back and back[0].strip() == original.strip(), (name, original, back)
