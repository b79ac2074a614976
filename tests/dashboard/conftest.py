"""Fixtures of the dashboard tests; the app and the readers of its JSON live in
``tests/apps/dashboard_site.py``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.apps.dashboard_site import LOCAL, served
from wsgi2asgi.testing import TestClient


@pytest.fixture
def client() -> Iterator[TestClient]:
    """An in-process client of the example composite with its dashboard, from this machine."""
    with TestClient(served()[0], base_url=LOCAL) as client:
        yield client
