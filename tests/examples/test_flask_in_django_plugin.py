"""The flask_in_django example, tested the way its team would: with the wsgi2asgi pytest plugin.

Nothing to install or configure beyond ``pip install 'wsgi2asgi[testing]'``: the plugin's
fixtures (``wsgi2asgi_client``, ``wsgi2asgi_live_server``) serve whatever the ``wsgi2asgi_app``
fixture below returns, with the lifespan of every mounted app (Django's migrations, the
Starlette API's) run around each test. ``docs/testing.md`` walks through this file.

Django's settings are process-wide. Run alone, this module sets them up for the example; in
our whole suite another module has configured Django differently first, so there these tests
skip and ``tests/test_pytest_plugin.py`` runs this module in a pytest process of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect

from wsgi2asgi.testing import LiveServer, TestClient, assert_same_responses
from wsgi2asgi.typing import ASGIApp

SETTINGS = "examples.flask_in_django.djsite.settings"


@pytest.fixture(scope="session")
def wsgi2asgi_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ASGIApp]:
    """The example's composite, on a throwaway database (Django reads its settings once)."""
    from django.conf import settings

    if settings.configured and settings.SETTINGS_MODULE != SETTINGS:
        pytest.skip(
            "Django is configured by another test module in this process "
            "(tests/test_pytest_plugin.py runs this module in a process of its own)"
        )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FLASK_IN_DJANGO_DB", str(tmp_path_factory.mktemp("db") / "db.sqlite3"))
        env.setenv("DJANGO_SETTINGS_MODULE", SETTINGS)
        from examples.flask_in_django.asgi import application

        yield application


def csrf_token(page: httpx.Response, field: str) -> str:
    token = re.search(rf'name="{field}" value="([^"]+)"', page.text)
    assert token is not None, page.text
    return token[1]


def test_a_note_added_in_django_is_read_back_by_the_starlette_api(
    wsgi2asgi_client: TestClient,
) -> None:
    client = wsgi2asgi_client
    token = csrf_token(client.get("/"), "csrfmiddlewaretoken")  # sets Django's csrftoken cookie
    added = client.post("/notes/add/", data={"csrfmiddlewaretoken": token, "text": "hello"})
    assert (added.status_code, added.headers["location"]) == (302, "/")
    notes = client.get("/api/notes").json()
    assert [note["text"] for note in notes["notes"]] == ["hello"]
    assert notes["self"] == "http://testserver/api/notes"


def test_the_flask_guestbook_stays_under_its_prefix(wsgi2asgi_client: TestClient) -> None:
    client = wsgi2asgi_client
    page = client.get("/flask/")
    assert "Path=/flask" in page.headers["set-cookie"]  # the session cookie, scoped
    token = csrf_token(page, "token")
    signed = client.post("/flask/sign", data={"name": "Ada", "token": token})
    assert (signed.status_code, signed.headers["location"]) == (302, "/flask/")
    assert "Thanks, Ada!" in client.get("/flask/").text


def test_the_migrated_route_is_served_by_starlette(wsgi2asgi_client: TestClient) -> None:
    response = wsgi2asgi_client.get("/flask/stream")
    assert response.headers["x-served-by"] == "starlette"
    assert response.text.splitlines() == [f"line {n}" for n in range(1, 6)]


def test_the_api_websocket_echoes(wsgi2asgi_client: TestClient) -> None:
    with wsgi2asgi_client.websocket_connect("/api/ws") as ws:
        ws.send_text("hello")
        assert ws.receive_text() == "HELLO"


def test_the_migrated_stream_answers_as_the_flask_view_did() -> None:
    # The check to run in CI before deleting the Flask view: same status, type and body.
    from adapters.flask import flask_app
    from adapters.starlette import starlette_app
    from examples.flask_in_django import legacy, migrated

    assert_same_responses(
        flask_app(legacy.app), starlette_app(migrated.app), ["GET /stream", "GET /stream?x=1"]
    )


def test_the_site_over_a_real_socket(wsgi2asgi_live_server: LiveServer) -> None:
    server = wsgi2asgi_live_server
    health = httpx.get(f"{server.url}/api/health")
    assert health.json()["status"] == "ok"
    assert httpx.get(f"{server.url}/flask/").status_code == 200
    with connect(f"{server.ws_url}/api/ws") as ws:
        ws.send("over a socket")
        assert ws.recv(timeout=5) == "OVER A SOCKET"
