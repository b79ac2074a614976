"""Fuzz target: mount matching on arbitrary paths and prefixes.

Invariants: a mount matches exactly its prefix and what is below it (segment-aware, never a
sibling that shares the text), never rewrites ``path`` or ``raw_path`` (percent-encoding is
preserved), and the child's ``root_path`` plus its route path is the parent's path.
"""

from __future__ import annotations

from typing import Any

import atheris

from wsgi2asgi.routing import Mount, route_path


async def _app(scope: Any, receive: Any, send: Any) -> None:
    return None


def one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    prefix = "/" + provider.ConsumeUnicodeNoSurrogates(8).strip("/")
    root = provider.PickValueInList(["", "/outer", "/a/b"])
    path = "/" + provider.ConsumeUnicodeNoSurrogates(24)
    raw = (root + path).encode("utf-8", "surrogatepass")
    scope = {"type": "http", "path": root + path, "raw_path": raw, "root_path": root}
    try:
        mount = Mount(prefix, _app)
    except ValueError:
        return  # a prefix that could never match is refused at construction (mount_prefix)
    child = mount.match(scope)
    bare = prefix.rstrip("/")
    inside = path == bare or path.startswith(bare + "/")
    assert (child is not None) == inside, (prefix, path)
    if child is None:
        return
    assert child["path"] == scope["path"] and child["raw_path"] == raw
    assert child["root_path"] == root + bare
    rest = route_path(child)
    assert child["root_path"] + rest == scope["path"]
    assert rest == "" or rest.startswith("/")
