"""The built wheel, installed without extras in a fresh venv, as a new user would (#14.1).

The wheel is built from this tree with hatchling (the dev venv has it, ``--no-build-isolation``)
and installed in a new venv with its core dependencies only. Those are fetched once, at the
versions the dev venv has, through pip's configured index into a temporary folder, and then
installed with ``--no-index``: the venv gets nothing else, and the test does not depend on a
resolver's choice on the day. Everything runs from a temporary directory with a clean
environment, so nothing from this checkout can be imported by accident.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from tests.loopback import ServerProcess
from wsgi2asgi import __version__

ROOT = Path(__file__).resolve().parents[1]
CORE = ("httptools", "websockets")  # the server's dependencies: pyproject's [project] table

HELLO = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from the wheel"]
"""

# A user's module, type-checked against the installed package: needs adapters' py.typed.
USER_CODE = """
from __future__ import annotations

from adapters.flask import flask_app
from wsgi2asgi import Mount, Router
from wsgi2asgi.typing import ASGIApp


def build(legacy: object) -> ASGIApp:
    return Router([Mount("/legacy", flask_app(legacy))])
"""


def run(*command: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A new venv holding the wheel and its core dependencies only; its ``bin`` and env."""
    work = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    pip = (sys.executable, "-m", "pip")
    built = run(
        *pip,
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        "dist",
        ROOT,
        cwd=work,
        env=env,
    )
    assert built.returncode == 0, built.stderr
    pinned = [f"{name}=={version(name)}" for name in CORE]
    fetched = run(
        *pip, "download", "-q", "--only-binary=:all:", "-d", "deps", *pinned, cwd=work, env=env
    )
    assert fetched.returncode == 0, fetched.stderr
    venv = work / "venv"
    created = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work, env=env)
    assert created.returncode == 0, created.stderr
    (wheel,) = (work / "dist").glob("wsgi2asgi-*.whl")
    installed = run(
        *pip,
        "--python",
        venv / "bin" / "python",
        "install",
        "-q",
        "--no-index",
        "--find-links",
        "deps",
        wheel,
        cwd=work,
        env=env,
    )
    assert installed.returncode == 0, installed.stderr
    return venv / "bin", env


def test_commands_run_without_extras(fresh: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    bin_dir, env = fresh
    cli = bin_dir / "wsgi2asgi"
    assert f"wsgi2asgi {__version__}" in run(cli, "--version", cwd=tmp_path, env=env).stdout
    for command in (
        [cli, "--help"],
        [cli, "serve", "--help"],
        [bin_dir / "python", "-m", "wsgi2asgi", "--help"],
    ):
        done = run(*command, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        assert "serve" in done.stdout
    (tmp_path / "hello.py").write_text(HELLO)
    routes = run(cli, "routes", "hello:app", "--app-dir", tmp_path, cwd=tmp_path, env=env)
    assert routes.returncode == 0, routes.stderr
    assert "hello:app" in routes.stdout or "wsgi" in routes.stdout


def test_serve_answers_without_extras(fresh: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    bin_dir, env = fresh
    (tmp_path / "hello.py").write_text(HELLO)
    server = ServerProcess(
        [str(bin_dir / "wsgi2asgi"), "serve", "hello:app", "--port", "0"],
        cwd=tmp_path,
        env=dict(env, PYTHONUNBUFFERED="1"),
    )
    try:
        answer = httpx.get(f"http://127.0.0.1:{server.port()}/", timeout=10)
    finally:
        server.process.send_signal(signal.SIGTERM)
        status, output = server.finish()
    assert answer.text == "hello from the wheel", output
    assert status == 0, output


def test_the_dashboard_page_ships_in_the_wheel(
    fresh: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    # Its page, script and style are package data (wsgi2asgi/dashboard/static/), no CDN.
    bin_dir, env = fresh
    (tmp_path / "hello.py").write_text(HELLO)
    command = [str(bin_dir / "wsgi2asgi"), "serve", "hello:app", "--port", "0"]
    server = ServerProcess(
        [*command, "--dashboard", "/_w"], cwd=tmp_path, env=dict(env, PYTHONUNBUFFERED="1")
    )
    try:
        base = f"http://127.0.0.1:{server.port()}/_w"
        answers = [httpx.get(f"{base}/{path}", timeout=10) for path in ("", "static/dashboard.js")]
    finally:
        server.process.send_signal(signal.SIGTERM)
        status, output = server.finish()
    assert [a.status_code for a in answers] == [200, 200], output
    assert "migration dashboard" in answers[0].text and "api/live" in answers[1].text
    assert status == 0, output


def test_adapters_are_typed_for_users(fresh: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    # The dev venv's mypy, reading the packages installed in the fresh venv (PEP 561).
    bin_dir, env = fresh
    (tmp_path / "user.py").write_text(USER_CODE)
    mypy = (sys.executable, "-m", "mypy", "--strict", "--no-incremental")
    checked = run(
        *mypy, "--python-executable", bin_dir / "python", "user.py", cwd=tmp_path, env=env
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.search(r"^Success: no issues found in 1 source file", checked.stdout, re.M)
