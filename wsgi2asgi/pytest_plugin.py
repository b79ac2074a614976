"""The pytest plugin of wsgi2asgi: fixtures for testing the composite you deploy.

Installing the package registers it (the ``pytest11`` entry point); nothing to configure but
the app. Give it with a fixture named ``wsgi2asgi_app``, in a ``conftest.py`` or a test module
(any scope; build the app there, after setting the environment it needs)::

    @pytest.fixture
    def wsgi2asgi_app():
        from myproject.asgi import application
        return application

    def test_home(wsgi2asgi_client):
        assert wsgi2asgi_client.get("/").status_code == 200

Fixtures (each for one test):

* ``wsgi2asgi_client``: a :class:`wsgi2asgi.testing.TestClient` for the app, its lifespan
  started before the test and shut down after it.
* ``wsgi2asgi_live_server``: a :class:`wsgi2asgi.testing.LiveServer` serving the app on a free
  loopback port (``.url``, ``.ws_url``), stopped after the test.

This module is imported by every pytest run in an environment where wsgi2asgi is installed, so
it imports nothing but pytest: the clients (and httpx) load when a fixture is first used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from wsgi2asgi.testing import LiveServer, TestClient
    from wsgi2asgi.typing import ASGIApp

__all__ = ["wsgi2asgi_app", "wsgi2asgi_client", "wsgi2asgi_live_server"]


@pytest.fixture
def wsgi2asgi_app() -> ASGIApp:
    """The app under test: override this fixture to return yours."""
    pytest.fail(
        "wsgi2asgi: define a fixture named 'wsgi2asgi_app' that returns your ASGI app "
        "(in conftest.py or the test module) to use wsgi2asgi_client or wsgi2asgi_live_server",
        pytrace=False,
    )


@pytest.fixture
def wsgi2asgi_client(wsgi2asgi_app: ASGIApp) -> Iterator[TestClient]:
    """An in-process client for ``wsgi2asgi_app``, inside its lifespan."""
    from wsgi2asgi.testing import TestClient

    with TestClient(wsgi2asgi_app) as client:
        yield client


@pytest.fixture
def wsgi2asgi_live_server(wsgi2asgi_app: ASGIApp) -> Iterator[LiveServer]:
    """``wsgi2asgi_app`` served by our server on a free loopback port."""
    from wsgi2asgi.testing import LiveServer

    with LiveServer(wsgi2asgi_app) as server:
        yield server
