"""``wsgi2asgi.dashboard.access``: who may see the dashboard (this machine, or the token), and
the token's cookie.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.apps import dashboard_site
from tests.apps.dashboard_site import LOCAL, TOKEN, served
from wsgi2asgi.dashboard import Dashboard, WithDashboard
from wsgi2asgi.exceptions import WebSocketRejected
from wsgi2asgi.testing import TestClient


@pytest.mark.parametrize("path", ["/", "/api/snapshot", "/static/dashboard.js"])
def test_a_client_of_another_machine_without_the_token_gets_403(path: str) -> None:
    app, _ = served()
    with TestClient(app, base_url=LOCAL, client=("203.0.113.7", 40000)) as client:
        response = client.get("/_wsgi2asgi" + path)
        assert response.status_code == 403
        assert "token" in response.text
        assert client.get("/api/items/1").status_code == 200  # the app itself is not guarded
        with pytest.raises(WebSocketRejected):
            with client.websocket_connect("/_wsgi2asgi/api/live"):
                pass


def test_without_a_token_the_dashboard_is_for_this_machine_only() -> None:
    app = WithDashboard(dashboard_site.create_app())
    with TestClient(app, base_url=LOCAL, client=("203.0.113.7", 40000)) as client:
        response = client.get("/_wsgi2asgi/api/snapshot", params={"token": "x" * 20})
        assert response.status_code == 403 and "--dashboard-token" in response.text
    with TestClient(app, base_url="http://localhost:8000", client=("::1", 40000)) as client:
        assert client.get("/_wsgi2asgi/api/snapshot").status_code == 200


@pytest.mark.parametrize(
    "offer",
    [
        {"headers": {"Authorization": f"Bearer {TOKEN}"}},
        {"cookies": {"wsgi2asgi_dashboard": TOKEN}},
        {"params": {"token": TOKEN}},
    ],
)
def test_the_token_lets_another_machine_in(offer: dict[str, Any]) -> None:
    app, _ = served()
    with TestClient(app, base_url="http://dash.example", client=("203.0.113.7", 1)) as client:
        client.cookies.update(offer.pop("cookies", {}))
        assert client.get("/_wsgi2asgi/api/snapshot", **offer).status_code == 200


def test_the_token_in_the_address_becomes_a_strict_cookie_and_leaves_the_address() -> None:
    app, _ = served()
    with TestClient(app, base_url="https://dash.example", client=("203.0.113.7", 1)) as client:
        response = client.get("/_wsgi2asgi/", params={"token": TOKEN}, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/_wsgi2asgi/")
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"wsgi2asgi_dashboard={TOKEN};")
        for attribute in ("Path=/_wsgi2asgi/", "HttpOnly", "SameSite=Strict", "Secure"):
            assert attribute in cookie
        assert client.get("/_wsgi2asgi/").status_code == 200  # the cookie now
        assert client.get("/_wsgi2asgi/api/snapshot").status_code == 200
        assert client.get("/_wsgi2asgi/", params={"token": TOKEN + "x"}).status_code == 200
        client.cookies.clear()
        assert client.get("/_wsgi2asgi/", params={"token": TOKEN + "x"}).status_code == 403


@pytest.mark.parametrize(
    ("base_url", "headers"),
    [
        ("http://attacker.example:8000", {}),  # DNS rebinding: a loopback client, a foreign name
        (LOCAL, {"X-Forwarded-For": "203.0.113.7"}),  # a proxy on this machine
        (LOCAL, {"Forwarded": "for=203.0.113.7"}),
        (LOCAL, {"X-Real-IP": "203.0.113.7"}),
    ],
)
def test_a_loopback_client_is_not_local_behind_a_proxy_or_a_foreign_name(
    base_url: str, headers: dict[str, str]
) -> None:
    app, _ = served()
    with TestClient(app, base_url=base_url) as client:
        assert client.get("/_wsgi2asgi/api/snapshot", headers=headers).status_code == 403


def test_a_short_token_or_the_root_as_path_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 characters"):
        Dashboard(dashboard_site.create_app(), token="short")
    with pytest.raises(ValueError, match="not the root"):
        WithDashboard(dashboard_site.create_app(), "/")
