"""The gunicorn worker class: its import paths."""

from __future__ import annotations

import importlib

import pytest

from wsgi2asgi.server.gunicorn import Worker


def test_old_import_path_warns_and_gives_the_same_worker() -> None:
    old = importlib.import_module("wsgi2asgi.workers")
    with pytest.warns(DeprecationWarning, match="wsgi2asgi.server.gunicorn"):
        moved = old.Worker
    assert moved is Worker
