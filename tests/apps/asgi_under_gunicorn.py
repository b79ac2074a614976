"""The Starlette test app as a WSGI app, for ``gunicorn -k gthread`` in ``tests/test_asgi.py``.

With ``ASGI_UNDER_GUNICORN_START=1`` the adapter starts at import: under ``--preload`` that is
in the gunicorn master, before the workers fork.
"""

from __future__ import annotations

import os

from tests.apps.starlette_app import make_starlette
from wsgi2asgi.asgi import asgi_to_wsgi

app = asgi_to_wsgi(make_starlette([]))
if os.environ.get("ASGI_UNDER_GUNICORN_START") == "1":
    app.start()
