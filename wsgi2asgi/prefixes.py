"""Mount prefixes and the scope at a mount boundary: what ``root_path`` and ``path`` mean.

Rules this module keeps (ASGI ``www.rst``: ``root_path`` is "the root path this application
is mounted at; same as SCRIPT_NAME in WSGI", and ``path`` includes it):

* A prefix is checked when a mount is built (:func:`mount_prefix`): prefixes are matched
  against the decoded path, a whole segment at a time, so one that could never match (a
  percent-escape, a space, an empty or dot segment) is an error, not a silent 404.
* A scope entering a router is put in spec form once (:func:`spec_form`): a ``root_path``
  ending in ``/`` loses it, and an older-convention scope whose ``path`` does not include
  ``root_path`` gets ``root_path`` in front of ``path`` and ``raw_path``.
* The path a mount matches against is ``path`` below ``root_path`` (:func:`route_path`).
* A child scope is a copy without other routers' private routing keys (:func:`child_scope`).

Example::

    mount_prefix("/api/")                                        # "/api"
    spec_form({"path": "/x", "raw_path": b"/x", "root_path": "/site/"})["path"]   # "/site/x"
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from wsgi2asgi.typing import Scope

__all__ = ["FOREIGN_KEYS", "child_scope", "mount_prefix", "route_path", "spec_form"]

logger = logging.getLogger(__name__)

#: Keys other routers keep their own routing state in, removed at every boundary of ours:
#: Starlette's ``router``, ``app_root_path``, ``route`` and ``endpoint`` (read by ``url_for``
#: and ``base_url``: left in, a mounted Starlette app reverses names in the outer app's
#: namespace) and channels' ``path_remaining``. ``path_params`` and ``url_route`` are data for
#: the app, not routing state, and stay.
FOREIGN_KEYS = ("router", "app_root_path", "route", "endpoint", "path_remaining")

# RFC 3986: pchar = unreserved / pct-encoded / sub-delims / ":" / "@".
_PCHAR = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@"
)
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_old_style_logged = False


def mount_prefix(prefix: str) -> str:
    """Check a mount prefix and return it normalised: ``"/"`` is ``""``, a trailing ``/`` goes.

    Prefixes are matched against the *decoded* path, one whole segment at a time, so each
    segment must be something a decoded path can hold and a client will send: RFC 3986
    ``pchar`` characters or non-ASCII printable ones, no percent-escape, no dot-segment.

    >>> mount_prefix("/api/"), mount_prefix("/"), mount_prefix("/café")
    ('/api', '', '/café')

    Raises:
        ValueError: the prefix does not start with ``/``, has an empty segment (``//``), a
            ``.``/``..`` segment, a ``%`` or another character a path segment cannot hold.
    """
    if prefix in ("", "/"):
        return ""
    if not prefix.startswith("/"):
        raise ValueError(f"Mount prefix must be '' or start with '/': {prefix!r}")
    text = prefix.removesuffix("/")
    for segment in text[1:].split("/"):
        problem = _segment_problem(segment)
        if problem is not None:
            raise ValueError(f"Mount prefix {prefix!r}: {problem}")
    return text


def _segment_problem(segment: str) -> str | None:
    if not segment:
        return "empty segment ('//')"
    if segment in (".", ".."):
        return f"{segment!r} is a dot-segment, which clients resolve before sending"
    for char in segment:
        if char == "%":
            return (
                "'%' never matches: routes match the decoded path, so write the character "
                "itself ('/café', not '/caf%C3%A9')"
            )
        if char not in _PCHAR and not (char >= "\x80" and char.isprintable()):
            return f"{char!r} is not allowed in a path segment (RFC 3986 pchar)"
    return None


def route_path(scope: Scope) -> str:
    """Return the part of ``scope["path"]`` below ``scope["root_path"]``.

    >>> route_path({"path": "/flask/login", "root_path": "/flask"})
    '/login'
    >>> route_path({"path": "/flask", "root_path": "/flask"})
    ''
    """
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        rest = path[len(root_path) :]
        if rest == "" or rest.startswith("/"):
            return rest
    # Not under root_path: an older-convention scope that did not pass through a Router
    # (which converts it with spec_form); its path is already relative.
    return path


def spec_form(scope: Scope) -> Scope:
    """Return ``scope`` with a clean ``root_path`` that ``path`` includes (a copy if it changes).

    ASGI ``www.rst``: ``path`` includes ``root_path``. Older servers (daphne, hypercorn before
    0.18 with ``--root-path``) send ``path`` without it; then ``root_path`` goes in front of
    ``path`` and of ``raw_path`` (percent-encoded), as uvicorn does. A ``root_path`` ending in
    ``/`` loses it (``"/site/"`` is ``"/site"``, ``"/"`` is ``""``). A ``path`` that already
    starts with ``root_path`` at a segment boundary is taken to be in spec form.

    >>> s = spec_form({"path": "/api/x", "raw_path": b"/api/x", "root_path": "/site/"})
    >>> s["root_path"], s["path"], s["raw_path"]
    ('/site', '/site/api/x', b'/site/api/x')
    """
    root: str = scope.get("root_path", "")
    path: str = scope["path"]
    clean = root.rstrip("/")
    if clean == root and _under(path, root):
        return scope
    child = dict(scope)
    child["root_path"] = clean
    if not _under(path, clean) and (path == "" or path.startswith("/")):
        _log_old_style(root, path)
        child["path"] = clean + path
        raw = scope.get("raw_path")
        if raw is not None:
            child["raw_path"] = quote(clean, safe=_PATH_SAFE).encode("ascii") + raw
    return child


def _under(path: str, root: str) -> bool:
    return not root or path == root or path.startswith(root + "/")


def _log_old_style(root: str, path: str) -> None:
    global _old_style_logged
    if not _old_style_logged:
        _old_style_logged = True
        logger.info(
            "scope path %r does not include root_path %r (an older server convention): "
            "routing %r instead; logged once",
            path,
            root,
            root.rstrip("/") + path,
        )


def child_scope(scope: Scope) -> dict[str, Any]:
    """A copy of ``scope`` for a child app, without other routers' keys (``FOREIGN_KEYS``)."""
    child = dict(scope)
    for key in FOREIGN_KEYS:
        child.pop(key, None)
    return child
