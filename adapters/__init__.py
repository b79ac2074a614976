"""Framework adapters: one small module per framework, each returning a mountable ASGI app.

The core package (``wsgi2asgi``) never imports this package, so it stays framework-free.
"""

from __future__ import annotations
