"""The wsgi2asgi server: HTTP/1.1, WebSockets and lifespan for WSGI, ASGI or a mix.

Example::

    from wsgi2asgi.server import Config, Server, run, serve

    serve("myproject.wsgi:application", port=8000)
    # the same, step by step:
    run(Server(Config(app="myproject.wsgi:application", port=8000)))
"""

from __future__ import annotations

from wsgi2asgi.server.config import Config
from wsgi2asgi.server.main import Server, run, serve

__all__ = ["Config", "Server", "run", "serve"]
