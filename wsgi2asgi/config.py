"""Deprecated: ``Config`` lives in :mod:`wsgi2asgi.server.config` now.

This path keeps working, with a ``DeprecationWarning``, until 1.0::

    from wsgi2asgi.server import Config      # instead of: from wsgi2asgi.config import Config
"""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    # PEP 562: runs for every name looked up here, so each use warns (not only the first import).
    warnings.warn(
        "wsgi2asgi.config is deprecated (removed in 1.0): import Config from wsgi2asgi.server",
        DeprecationWarning,
        stacklevel=2,
    )
    from wsgi2asgi.server import config

    return getattr(config, name)
