"""``--reload``: which files are watched, and a real reload through watchfiles."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.loopback import ServerProcess
from wsgi2asgi.server.reloader import FileFilter, snapshot

ROOT = Path(__file__).resolve().parents[2]

APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
"""


def test_file_filter_includes_and_excludes(tmp_path: Path) -> None:
    watched = FileFilter([str(tmp_path)], includes=["*.html"], excludes=["*_test.py", "build"])
    assert watched(str(tmp_path / "app" / "views.py"))
    assert watched(str(tmp_path / "templates" / "page.html"))
    assert not watched(str(tmp_path / "app" / "views_test.py"))
    assert not watched(str(tmp_path / "build" / "views.py"))  # a directory excluded
    assert not watched(str(tmp_path / ".git" / "config.py"))  # hidden: always
    assert not watched(str(tmp_path / "app" / "__pycache__" / "views.py"))
    assert not watched(str(tmp_path / "notes.txt"))  # neither *.py nor included


def test_snapshot_lists_only_watched_files(tmp_path: Path) -> None:
    for name in ("a.py", "b.html", "c.txt", "node_modules/d.py", "e_test.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x")
    watched = FileFilter([str(tmp_path)], includes=["*.html"], excludes=["*_test.py"])
    found = snapshot([str(tmp_path)], watched)
    assert sorted(os.path.basename(path) for path in found) == ["a.py", "b.html"]


def test_reload_restarts_on_an_included_file_and_not_an_excluded_one(tmp_path: Path) -> None:
    (tmp_path / "reloaded.py").write_text(APP)
    (tmp_path / "templates").mkdir()
    page = tmp_path / "templates" / "page.html"
    page.write_text("one")
    server = ServerProcess(
        [sys.executable, "-m", "wsgi2asgi", "serve", "reloaded:app", "--port", "0"]
        + ["--app-dir", str(tmp_path), "--reload", "--reload-dir", str(tmp_path)]
        + ["--reload-include", "*.html", "--reload-exclude", "*.tmp", "--reload-delay", "0.1"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        server.wait_for(r"watching .*\(watchfiles\)")
        server.port()  # the first server is up (and the reloader watching for a while)
        (tmp_path / "scratch.tmp").write_text("excluded")
        page.write_text("two")
        index, changed = server.wait_for(r"changed: (.*); restarting")
        assert changed == str(page)  # the excluded file written first is not in it
        server.port(after=index)  # a new server
    finally:
        server.process.terminate()
        status, output = server.finish()
    assert status == 0, output
