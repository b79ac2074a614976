"""``wsgi2asgi.pytest_plugin``: the ``wsgi2asgi_client`` and ``wsgi2asgi_live_server`` fixtures,
used here as a user would, and in projects of their own.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.apps.testing_site import site
from wsgi2asgi.testing import LiveServer, TestClient
from wsgi2asgi.typing import ASGIApp

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def wsgi2asgi_app() -> ASGIApp:
    return site([])


def test_plugin_client_fixture(wsgi2asgi_client: TestClient) -> None:
    assert wsgi2asgi_client.get("/api/").text == "pool of api"
    assert wsgi2asgi_client.get("/flask/visits").text == "1"


def test_plugin_live_server_fixture(wsgi2asgi_live_server: LiveServer) -> None:
    url = wsgi2asgi_live_server.url
    assert url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{url}/api/").text == "pool of api"
    with connect(f"{wsgi2asgi_live_server.ws_url}/api/ws") as ws:
        ws.send("over a socket")
        assert ws.recv(timeout=5) == "API ANONYMOUS OVER A SOCKET"


PLUGIN_USER_TESTS = """
import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


@pytest.fixture
def wsgi2asgi_app():
    return Starlette(routes=[Route("/", lambda request: PlainTextResponse("hi"))])


def test_in_process(wsgi2asgi_client):
    assert wsgi2asgi_client.get("/").text == "hi"


def test_over_a_socket(wsgi2asgi_live_server):
    assert httpx.get(wsgi2asgi_live_server.url + "/").text == "hi"
"""

FORGOT_THE_APP = """
def test_forgot(wsgi2asgi_client):
    pass
"""


def run_pytest(directory: Path, name: str, source: str) -> subprocess.CompletedProcess[str]:
    (directory / name).write_text(textwrap.dedent(source))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name]
    return subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=120)


def test_plugin_is_loaded_by_installing_the_package(tmp_path: Path) -> None:
    # A project of its own (no conftest, no -p): the pytest11 entry point loads the plugin.
    result = run_pytest(tmp_path, "test_user.py", PLUGIN_USER_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_plugin_says_how_to_give_it_the_app(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "test_forgot.py", FORGOT_THE_APP)
    assert result.returncode == 1
    assert "define a fixture named 'wsgi2asgi_app' that returns your ASGI app" in result.stdout


def test_the_flask_in_django_plugin_example_passes_in_a_process_of_its_own() -> None:
    # Django's settings are process-wide: in the whole suite another module configures them
    # before the example's module runs, which then skips; here it runs alone, as a user's would.
    example = "tests/examples/test_flask_in_django_plugin.py"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", example]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout and "skipped" not in result.stdout, result.stdout


def test_plugin_import_is_cheap_and_loads_no_framework() -> None:
    code = (
        "import sys; import wsgi2asgi.pytest_plugin; "
        "print(sorted(m for m in ('httpx', 'django', 'flask', 'starlette', "
        "'wsgi2asgi.testing', 'wsgi2asgi.server') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip() == "[]", result.stderr


def test_live_server_fixture_and_client_agree(
    wsgi2asgi_client: TestClient, wsgi2asgi_live_server: LiveServer
) -> None:
    # The same app, in process and over a socket: the same answers (cookies aside).
    with httpx.Client(base_url=wsgi2asgi_live_server.url) as live:
        for path in ("/api/", "/flask/visits", "/nope"):
            in_process, real = wsgi2asgi_client.get(path), live.get(path)
            assert (in_process.status_code, in_process.text) == (real.status_code, real.text)
