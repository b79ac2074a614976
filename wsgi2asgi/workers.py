"""Deprecated: the gunicorn worker class lives in :mod:`wsgi2asgi.server.gunicorn` now.

This path keeps working, with a ``DeprecationWarning``, until 1.0::

    gunicorn -k wsgi2asgi.server.gunicorn.Worker myproject.asgi:application
"""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    # PEP 562: runs for every name looked up here, so each use warns (not only the first import).
    warnings.warn(
        "wsgi2asgi.workers is deprecated (removed in 1.0): use wsgi2asgi.server.gunicorn.Worker",
        DeprecationWarning,
        stacklevel=2,
    )
    from wsgi2asgi.server import gunicorn

    return getattr(gunicorn, name)
