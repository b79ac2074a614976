"""``adapters.flask``: real Flask apps mounted by our router, URLs and cookies under the prefix."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
from flask import Flask, redirect, session, url_for

from adapters.flask import MountAwareSessionInterface, flask_app
from wsgi2asgi.routing import Mount, Router


def make_flask(name: str, **config: Any) -> Flask:
    app = Flask(name)
    app.config.update(SECRET_KEY="test", **config)

    @app.get("/")
    def index() -> dict[str, Any]:
        session["hits"] = session.get("hits", 0) + 1
        return {
            "hits": session["hits"],
            "self": url_for("index"),
            "external": url_for("index", _external=True),
            "static": url_for("static", filename="app.css"),
        }

    @app.get("/go")
    def go() -> Any:
        return redirect(url_for("index"))

    @app.get("/async")
    async def in_loop() -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"loop": id(asyncio.get_running_loop()), "thread": threading.get_ident()}

    return app


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_urls_redirects_and_static_carry_the_prefix() -> None:
    app = Router([Mount("/outer", Router([Mount("/legacy", flask_app(make_flask("a")))]))])
    async with client_for(app) as client:
        body = (await client.get("/outer/legacy/")).json()
        redirected = await client.get("/outer/legacy/go")
        bare = await client.get("/outer/legacy")
    assert body["self"] == "/outer/legacy/"
    assert body["external"] == "http://testserver/outer/legacy/"
    assert body["static"] == "/outer/legacy/static/app.css"
    assert redirected.status_code == 302
    assert redirected.headers["location"] == "/outer/legacy/"
    assert bare.status_code == 308
    assert bare.headers["location"] == "http://testserver/outer/legacy/"


async def test_two_flask_apps_side_by_side_keep_separate_sessions() -> None:
    app = Router([Mount("/a", flask_app(make_flask("a"))), Mount("/b", flask_app(make_flask("b")))])
    async with client_for(app) as client:
        first = await client.get("/a/")
        assert "Path=/a" in first.headers["set-cookie"]
        assert (await client.get("/a/")).json()["hits"] == 2
        second = await client.get("/b/")
        assert "Path=/b" in second.headers["set-cookie"]
        assert second.json()["hits"] == 1
        assert (await client.get("/a/")).json()["hits"] == 3


async def test_configured_session_cookie_path_is_respected() -> None:
    app = Router([Mount("/a", flask_app(make_flask("a", SESSION_COOKIE_PATH="/")))])
    async with client_for(app) as client:
        response = await client.get("/a/")
    assert "Path=/;" in response.headers["set-cookie"] + ";"


async def test_custom_session_interface_is_kept() -> None:
    class Custom(MountAwareSessionInterface):
        pass

    flask = make_flask("a")
    flask.session_interface = Custom()
    flask_app(flask)
    assert type(flask.session_interface) is Custom


async def test_async_view_runs_on_the_callers_event_loop() -> None:
    app = Router([Mount("/a", flask_app(make_flask("a")))])
    async with client_for(app) as client:
        body = (await client.get("/a/async")).json()
    assert body["loop"] == id(asyncio.get_running_loop())
    assert body["thread"] == threading.get_ident()


def test_server_root_path_prefixes_raw_path_so_flask_gets_the_exact_bytes() -> None:
    # wsgi2asgi serve --root-path /site: the proxy stripped /site, the server puts it back in
    # front of path *and* raw_path (as uvicorn does), so PATH_INFO keeps the byte %FF stands for.
    from flask import request

    from tests.servers import start_server

    flask = Flask("root_path")

    @flask.get("/item/<name>")
    def item(name: str) -> dict[str, str]:
        return {
            "path_info": request.environ["PATH_INFO"],
            "script_name": request.environ["SCRIPT_NAME"],
        }

    running = start_server(Router([Mount("/x", flask_app(flask))]), root_path="/site")
    try:
        with httpx.Client(base_url=running.url) as client:
            response = client.get("/x/item/%FF")
    finally:
        assert running.stop() == 0
    assert response.json() == {"path_info": "/item/\xff", "script_name": "/site/x"}
