"""The example composite, served by a real server process on loopback, driven by real clients.

Django, Flask and Starlette each run as if alone; these tests check that each still builds its
URLs, redirects, static paths and cookies under its mount prefix, both as shipped (Django at
``/``) and mounted two levels deep (``tests/apps/nested_example.py``, everything under
``/outer/inner``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.loopback import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = "examples.flask_in_django.asgi:application"
NESTED = "tests.apps.nested_example:application"


def server_command(app: str, port: int) -> list[str]:
    """Our own server, as the README's main command runs it (``port`` 0: the kernel picks)."""
    return [
        sys.executable,
        "-m",
        "wsgi2asgi",
        "serve",
        app,
        "--port",
        str(port),
        "--lifespan",
        "on",
    ]


@dataclass
class Site:
    """A running server: where it listens and the prefix the example lives under."""

    url: str
    prefix: str
    server: ServerProcess
    env: dict[str, str]

    def stop(self) -> tuple[int, str]:
        """Stop the server gracefully (SIGTERM): its exit status and everything it printed.

        Waits beyond the server's own 30 s graceful-shutdown timeout, so a slow shutdown is
        not cut short by a kill (which would lose the lifespan shutdown).
        """
        self.server.process.terminate()
        return self.server.finish(timeout=45)


def start(app: str, prefix: str, db: Path, django_interface: str = "wsgi", **more_env: str) -> Site:
    env = dict(os.environ, FLASK_IN_DJANGO_DB=str(db), PYTHONUNBUFFERED="1", **more_env)
    env["NESTED_DJANGO_INTERFACE"] = django_interface
    env.pop("DJANGO_SETTINGS_MODULE", None)
    server = ServerProcess(server_command(app, 0), cwd=ROOT, env=env)
    try:
        port = server.port()  # from its "serving on" line; fails with its output
    except AssertionError:
        server.process.terminate()
        server.finish(timeout=20)
        raise
    return Site(f"http://127.0.0.1:{port}", prefix, server, env)


@pytest.fixture(
    scope="module",
    params=[
        (SHIPPED, "", "asgi"),
        (NESTED, "/outer/inner", "wsgi"),
        (NESTED, "/outer/inner", "asgi"),
    ],
    ids=["root", "nested-django-wsgi", "nested-django-asgi"],
)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    app, prefix, django_interface = request.param
    db = tmp_path_factory.mktemp("db") / "db.sqlite3"
    running = start(app, prefix, db, django_interface)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=10) as client:
        yield client


def django_token(client: httpx.Client, page_url: str) -> str:
    page = client.get(page_url)
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None
    return token[1]


def add_note(client: httpx.Client, p: str, text: str) -> httpx.Response:
    token = django_token(client, f"{p}/")
    return client.post(f"{p}/notes/add/", data={"csrfmiddlewaretoken": token, "text": text})


def flask_token(client: httpx.Client, p: str) -> str:
    page = client.get(f"{p}/flask/")
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token is not None
    return token[1]


def test_django_urls_form_post_and_redirect(site: Site, client: httpx.Client) -> None:
    p = site.prefix
    page = client.get(f"{p}/")
    assert f'action="{p}/notes/add/"' in page.text
    assert f'href="{p}/admin/"' in page.text
    added = add_note(client, p, "from django")
    assert added.status_code == 302
    assert added.headers["location"] == f"{p}/"
    assert "<li>from django</li>" in client.get(f"{p}/").text


def test_django_async_view_reads_the_notes(site: Site, client: httpx.Client) -> None:
    p = site.prefix
    add_note(client, p, "for the async view")
    body = client.get(f"{p}/notes/latest/").json()
    assert "for the async view" in body["latest"]
    assert body["count"] >= 1


def test_django_cookies_are_scoped_to_the_mount(site: Site, client: httpx.Client) -> None:
    page = client.get(f"{site.prefix}/")
    assert "csrftoken=" in page.headers["set-cookie"]
    assert f"Path={site.prefix or '/'}" in page.headers["set-cookie"]


def test_django_rejects_post_without_csrf_token(site: Site) -> None:
    with httpx.Client(base_url=site.url) as fresh:
        refused = fresh.post(f"{site.prefix}/notes/add/", data={"text": "x"})
    assert refused.status_code == 403


def test_django_admin_login_and_static(site: Site, client: httpx.Client) -> None:
    p = site.prefix
    user = f"admin{abs(hash(p))}"
    code = (
        "import django; django.setup(); from django.contrib.auth.models import User; "
        f"User.objects.create_superuser({user!r}, 'a@example.com', 'pw-123-example')"
    )
    env = dict(site.env, DJANGO_SETTINGS_MODULE="examples.flask_in_django.djsite.settings")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)

    admin = client.get(f"{p}/admin/")
    assert admin.status_code == 302
    assert admin.headers["location"] == f"{p}/admin/login/?next={p}/admin/"
    login_page = client.get(f"{p}/admin/login/")
    css = re.search(r'href="([^"]+/admin/css/base\.css)"', login_page.text)
    assert css is not None
    assert css[1] == f"{p}/static/admin/css/base.css"
    style = client.get(css[1])
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")

    token = django_token(client, f"{p}/admin/login/")
    form = {"csrfmiddlewaretoken": token, "username": user, "password": "pw-123-example"}
    logged_in = client.post(f"{p}/admin/login/?next={p}/admin/", data=form)
    assert logged_in.status_code == 302, logged_in.text
    assert logged_in.headers["location"] == f"{p}/admin/"
    assert "Site administration" in client.get(f"{p}/admin/").text


def test_flask_prefix_without_slash_redirects(site: Site, client: httpx.Client) -> None:
    response = client.get(f"{site.prefix}/flask")
    assert response.status_code in (301, 308)
    assert response.headers["location"].endswith(f"{site.prefix}/flask/")


def test_flask_urls_static_and_session_under_prefix(site: Site, client: httpx.Client) -> None:
    p = site.prefix
    page = client.get(f"{p}/flask/")
    assert f'href="{p}/flask/static/style.css"' in page.text
    assert f'action="{p}/flask/sign"' in page.text
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("session=")
    assert f"Path={p}/flask" in cookie
    assert client.get(f"{p}/flask/static/style.css").text.startswith("body")
    assert '<span id="visits">2</span>' in client.get(f"{p}/flask/").text


def test_flask_form_post_with_token_redirect_and_flash(site: Site, client: httpx.Client) -> None:
    # Through Fallback: the migrated Starlette app has no /sign (404), so the POST body is
    # replayed to Flask, which must see the form token intact.
    p = site.prefix
    signed = client.post(f"{p}/flask/sign", data={"name": "Ada", "token": flask_token(client, p)})
    assert signed.status_code == 302
    assert signed.headers["location"] == f"{p}/flask/"
    page = client.get(f"{p}/flask/")
    assert "Thanks, Ada!" in page.text
    assert "<li>Ada</li>" in page.text


def test_flask_form_post_with_wrong_token_is_refused(site: Site, client: httpx.Client) -> None:
    p = site.prefix
    flask_token(client, p)
    refused = client.post(f"{p}/flask/sign", data={"name": "Eve", "token": "forged"})
    assert refused.status_code == 400
    assert "<li>Eve</li>" not in client.get(f"{p}/flask/").text


def test_flask_upload_streams_through(site: Site, client: httpx.Client) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    response = client.post(f"{site.prefix}/flask/upload", files={"file": ("blob.bin", payload)})
    assert response.json() == {"filename": "blob.bin", "size": len(payload)}


def test_migrated_route_is_served_by_the_new_app(site: Site, client: httpx.Client) -> None:
    with client.stream("GET", f"{site.prefix}/flask/stream") as response:
        lines = list(response.iter_lines())
        assert response.headers["x-served-by"] == "starlette"
    assert lines == [f"line {n}" for n in range(1, 6)]


def test_flask_async_view_runs_on_the_servers_loop(site: Site, client: httpx.Client) -> None:
    flask_loop = client.get(f"{site.prefix}/flask/async").json()["loop"]
    api_loop = client.get(f"{site.prefix}/api/health").json()["loop"]
    assert flask_loop == api_loop


def test_starlette_api_reads_django_models(site: Site, client: httpx.Client) -> None:
    p = site.prefix
    add_note(client, p, "for the api")
    body = client.get(f"{p}/api/notes").json()
    assert "for the api" in [note["text"] for note in body["notes"]]
    assert body["self"] == f"{site.url}{p}/api/notes"


def test_starlette_websocket_echo_through_the_router(site: Site) -> None:
    with connect(site.url.replace("http", "ws", 1) + f"{site.prefix}/api/ws") as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "HELLO"
        ws.send("again")
        assert ws.recv(timeout=5) == "AGAIN"


def test_unknown_paths_are_404(site: Site, client: httpx.Client) -> None:
    assert client.get(f"{site.prefix}/api/nothing-here").status_code == 404
    assert client.get(f"{site.prefix}/no-such-page/").status_code == 404


def test_django_log_lines_are_printed_once(site: Site, client: httpx.Client) -> None:
    # Django's "django" logger has its own console handler (DEBUG); the server used to add
    # a handler to the root logger too, so each of Django's lines came out twice (#14.3).
    marker = os.urandom(4).hex()
    missing = f"{site.prefix}/no-such-page-{marker}/"
    assert client.get(missing).status_code == 404
    # A later request's access line: whatever the 404 printed is in the output before it.
    assert client.get(f"{site.prefix}/api/health?after={marker}").status_code == 200
    site.server.wait_for(rf'"GET {site.prefix}/api/health\?after={marker} HTTP/1.1" 200')
    assert site.server.output.count(f"Not Found: {missing}") == 1, site.server.output


def test_workers_start_together_on_a_fresh_database(tmp_path: Path) -> None:
    # Each worker runs the example's lifespan, which migrates: they used to race, and all but
    # one failed with 'table "auth_permission" already exists' and were restarted (#14.4).
    env = dict(os.environ, FLASK_IN_DJANGO_DB=str(tmp_path / "db.sqlite3"), PYTHONUNBUFFERED="1")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    server = ServerProcess([*server_command(SHIPPED, 0), "--workers", "2"], cwd=ROOT, env=env)
    try:
        port = server.port()
        first, _ = server.wait_for(r"Application startup complete\.")
        server.wait_for(r"Application startup complete\.", after=first + 1)
        for _ in range(4):
            with httpx.Client(timeout=10) as fresh:  # a new connection: either worker
                assert fresh.get(f"http://127.0.0.1:{port}/").status_code == 200
    finally:
        server.process.terminate()
        status, output = server.finish(timeout=30)
    assert status == 0, output
    assert "already exists" not in output and "restarting" not in output, output
    assert output.count("Application startup complete.") == 2, output


def test_lifespan_reaches_every_app_once_in_order(tmp_path: Path) -> None:
    # The events are read from a file each one is appended to as one write, after the server
    # has exited: not parsed out of its output, where a print (two writes: the text, then the
    # newline) shares one pipe with the log lines, and a server killed at the deadline left
    # out its shutdown without a word.
    log = tmp_path / "lifespan.log"
    running = start(NESTED, "/outer/inner", tmp_path / "db.sqlite3", NESTED_LIFESPAN_LOG=str(log))
    try:
        with httpx.Client(base_url=running.url, timeout=10) as client:
            assert client.get("/outer/inner/api/health").status_code == 200
    finally:
        status, output = running.stop()
    assert status == 0, output
    events = [line.split() for line in log.read_text().splitlines()]
    assert events == [
        ["lifespan", "lifespan.startup", "flask"],
        ["lifespan", "lifespan.startup.complete", "flask"],
        ["lifespan", "lifespan.startup", "api"],
        ["lifespan", "lifespan.startup.complete", "api"],
        ["lifespan", "lifespan.startup", "django"],
        ["lifespan", "lifespan.startup.complete", "django"],
        ["lifespan", "lifespan.shutdown", "django"],
        ["lifespan", "lifespan.shutdown.complete", "django"],
        ["lifespan", "lifespan.shutdown", "api"],
        ["lifespan", "lifespan.shutdown.complete", "api"],
        ["lifespan", "lifespan.shutdown", "flask"],
        ["lifespan", "lifespan.shutdown.complete", "flask"],
    ]


def readme_commands() -> list[str]:
    """The example README's ``DJANGO_SETTINGS_MODULE=...`` lines, in order."""
    text = (ROOT / "examples" / "flask_in_django" / "README.md").read_text()
    return [line for line in text.splitlines() if line.startswith("DJANGO_SETTINGS_MODULE=")]


def test_readme_admin_user_steps_work_before_the_first_serve(tmp_path: Path) -> None:
    # The README's commands, in its order, on a database no server has created yet (#14.4).
    commands = readme_commands()
    assert any("createsuperuser" in command for command in commands)
    env = dict(os.environ, FLASK_IN_DJANGO_DB=str(tmp_path / "db.sqlite3"))
    env.update(DJANGO_SUPERUSER_PASSWORD="pw-123-example")
    for command in commands:
        command = command.replace(".venv/bin/python", shlex.quote(sys.executable))
        if command.endswith("createsuperuser"):
            command += " --noinput --username readme --email readme@example.com"
        done = subprocess.run(
            command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
    site = start(SHIPPED, "", tmp_path / "db.sqlite3")
    try:
        with httpx.Client(base_url=site.url, timeout=10) as client:
            token = django_token(client, "/admin/login/")
            form = {"csrfmiddlewaretoken": token, "username": "readme"}
            form["password"] = "pw-123-example"
            logged_in = client.post("/admin/login/?next=/admin/", data=form)
        assert logged_in.status_code == 302, logged_in.text
        assert logged_in.headers["location"] == "/admin/"
    finally:
        site.stop()


def test_readme_table_says_who_serves_the_stream() -> None:
    # test_migrated_route_is_served_by_the_new_app checks the server's side: x-served-by.
    text = (ROOT / "examples" / "flask_in_django" / "README.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `/flask/stream` |"))
    served_by = row.split("|")[2]
    assert "Starlette" in served_by and "Fallback" in served_by
