"""wsgi2asgi: move a WSGI codebase to ASGI one piece at a time."""

from __future__ import annotations

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
