"""``adapters.django``: a real Django project mounted by our router, over ASGI and a real server.

Django's settings are process-wide: :func:`tests.apps.django_app.configure` sets them once and
each test overrides ``ROOT_URLCONF`` (this module) and ``MIDDLEWARE`` around building the app,
since Django's handlers read the middleware when they are built.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.http import HttpRequest, HttpResponse
from django.urls import path
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.server.conftest import start_server
from wsgi2asgi.routing import Mount, Router


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"index {request.path} {request.META['QUERY_STRING']}")


urlpatterns = [path("", index)]

COMMON = ["django.middleware.common.CommonMiddleware"]


@pytest.fixture
def django_settings() -> Iterator[None]:
    from django.test.utils import override_settings

    from tests.apps import django_app

    django_app.configure()
    with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], MIDDLEWARE=[]):
        yield


def mounted(interface: str = "asgi", middleware: list[str] | None = None) -> Router:
    from django.test.utils import override_settings

    from adapters.django import django_app

    with override_settings(MIDDLEWARE=middleware or []):
        return Router([Mount("/dj", django_app(interface=interface))])  # type: ignore[arg-type]


async def request(app: Any, method: str, url: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(method, url)


@pytest.mark.usefixtures("django_settings")
@pytest.mark.parametrize("middleware", [[], COMMON], ids=["plain", "common-middleware"])
@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
async def test_bare_prefix_of_an_asgi_django_mount_redirects_with_308(
    middleware: list[str], method: str
) -> None:
    app = mounted("asgi", middleware)
    response = await request(app, method, "/dj?a=1&b=%C3%A9")
    assert response.status_code == 308
    assert response.headers["location"] == "/dj/?a=1&b=%C3%A9"
    assert response.content == b""
    followed = await request(app, "GET", response.headers["location"])
    assert followed.text == "index /dj/ a=1&b=%C3%A9"


@pytest.mark.usefixtures("django_settings")
async def test_bare_prefix_redirect_keeps_the_percent_encoded_prefix() -> None:
    from adapters.django import django_app

    app = Router([Mount("/café", django_app())])
    response = await request(app, "GET", "/caf%C3%A9")
    assert response.status_code == 308
    assert response.headers["location"] == "/caf%C3%A9/"


@pytest.mark.usefixtures("django_settings")
async def test_bare_prefix_of_a_wsgi_django_mount_is_answered_by_django() -> None:
    # Django's WSGIHandler answers an empty PATH_INFO as "/": it does answer, so no redirect.
    response = await request(mounted("wsgi"), "GET", "/dj")
    assert response.status_code == 200
    assert response.text == "index /dj/ "


def websocket_status(port: int, path: str) -> int:
    with pytest.raises(InvalidStatus) as info:
        connect(f"ws://127.0.0.1:{port}{path}", open_timeout=5)
    return info.value.response.status_code


@pytest.mark.usefixtures("django_settings")
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_websocket_to_a_django_mount_or_nowhere_is_403(loop: str, interface: str) -> None:
    running = start_server(mounted(interface), loop=loop, lifespan="on")
    try:
        assert websocket_status(running.port, "/dj/chat") == 403
        assert websocket_status(running.port, "/dj") == 403  # never redirected
        assert websocket_status(running.port, "/nowhere") == 403
        with httpx.Client(base_url=running.url) as client:
            assert client.get("/dj/").text == "index /dj/ "  # the server is fine afterwards
    finally:
        assert running.stop() == 0
