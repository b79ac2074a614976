"""``wsgi2asgi.dashboard.app``: the page, its files and live WebSocket, the ``serve --dashboard``
flag, and the page itself in a real headless Chromium.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apps import dashboard_site
from tests.apps.dashboard_site import LOCAL, TOKEN, row
from tests.loopback import ServerProcess, wait_until
from tests.servers import start_server
from wsgi2asgi.dashboard import WithDashboard
from wsgi2asgi.exceptions import ConfigError, WebSocketRejected
from wsgi2asgi.server.config import Config
from wsgi2asgi.server.main import Server
from wsgi2asgi.testing import TestClient

ROOT = Path(__file__).resolve().parents[2]


def test_the_page_and_its_files_are_served_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/_wsgi2asgi/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="static/dashboard.js"' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-store"
    script = client.get("/_wsgi2asgi/static/dashboard.js")
    assert script.status_code == 200 and "api/live" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert client.get("/_wsgi2asgi/static/dashboard.css").status_code == 200
    assert client.get("/_wsgi2asgi/static/../app.py").status_code == 404
    assert client.get("/_wsgi2asgi/nothing").status_code == 404
    bare = client.get("/_wsgi2asgi", follow_redirects=False)
    assert (bare.status_code, bare.headers["location"]) == (303, "/_wsgi2asgi/")
    assert client.head("/_wsgi2asgi/").content == b""


def test_the_live_websocket_sends_a_snapshot_every_interval() -> None:
    app = dashboard_site.create_app()
    with TestClient(WithDashboard(app, interval=0.05), base_url=LOCAL) as client:
        with client.websocket_connect("/_wsgi2asgi/api/live") as live:
            first = json.loads(live.receive_text())
            client.get("/api/items/1")
            second = json.loads(live.receive_text())
            while second["totals"]["requests"] == 0:  # one may have been built before the GET
                second = json.loads(live.receive_text())
    assert first["totals"]["requests"] == 0
    assert row(second, "/api/items/{id:int}")["requests"] == 1


def test_a_websocket_from_another_site_is_refused(client: TestClient) -> None:
    with pytest.raises(WebSocketRejected) as refused:
        with client.websocket_connect(
            "/_wsgi2asgi/api/live", headers={"Origin": "http://evil.example"}
        ):
            pass
    assert refused.value.status == 403


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_an_open_page_does_not_hold_the_servers_graceful_shutdown(loop: str) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    app = WithDashboard(dashboard_site.create_app(), interval=0.05)
    running = start_server(app, loop=loop, timeout_graceful_shutdown=30)
    try:
        url = f"ws://127.0.0.1:{running.port}/_wsgi2asgi/api/live"
        with connect(url, open_timeout=10) as live:
            assert "routes" in json.loads(live.recv(timeout=10))
            started = time.monotonic()
            running.loop.call_soon_threadsafe(running.server.should_exit.set)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    live.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    finally:
        assert running.stop() == 0
    assert time.monotonic() - started < 10  # not the 30 s a never-ending response would take


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dashboard": "/"}, "--dashboard needs a path of its own"),
        ({"dashboard": "x"}, "--dashboard"),
        ({"dashboard": "/_w", "mounts": (("/_w", "m:a"),)}, "--dashboard /_w is also"),
        ({"dashboard": "/_w", "dashboard_token": "short"}, "at least 16 characters"),
    ],
)
def test_dashboard_settings_mistakes_are_one_line(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(app="m:app", **options)


async def test_a_server_asked_for_a_dashboard_it_cannot_add_says_so() -> None:
    server = Server(Config(app=dashboard_site.app, dashboard="/_w", port=0))
    with pytest.raises(ConfigError, match="wsgi2asgi serve"):
        await server.serve(sockets=[])


def serve_command(*flags: str, **env: str) -> ServerProcess:
    command = [sys.executable, "-m", "wsgi2asgi", "serve", "tests.apps.dashboard_site:app"]
    environ = dict(os.environ, PYTHONUNBUFFERED="1", **env)
    return ServerProcess([*command, *flags], cwd=ROOT, env=environ)


def stop(server: ServerProcess) -> str:
    server.process.terminate()
    status, output = server.finish()
    assert status == 0, output
    return output


# Tests send traffic to loopback only (the workplace's rule): "another machine" is a request
# whose Host names another site, which the access rule treats like a non-loopback client.
FOREIGN = {"Host": "dash.example"}


def test_serve_dashboard_answers_this_machine_and_refuses_others_without_the_token() -> None:
    server = serve_command("--host", "127.0.0.1", "--port", "0", "--dashboard", "/_wsgi2asgi")
    try:
        base = f"http://127.0.0.1:{server.port()}"
        page = httpx.get(f"{base}/_wsgi2asgi/", timeout=10)
        assert page.status_code == 200 and "migration dashboard" in page.text
        snapshot = httpx.get(f"{base}/_wsgi2asgi/api/snapshot", headers=FOREIGN, timeout=10)
        assert snapshot.status_code == 403
        # The app itself answers every site as before.
        assert httpx.get(f"{base}/api/items/1", headers=FOREIGN, timeout=10).status_code == 200
    finally:
        output = stop(server)
    assert "dashboard at /_wsgi2asgi/ (this machine only)" in output


def test_serve_dashboard_token_from_the_environment_lets_others_in() -> None:
    flags = ("--host", "127.0.0.1", "--port", "0", "--dashboard", "/_w")
    server = serve_command(*flags, WSGI2ASGI_DASHBOARD_TOKEN=TOKEN)
    try:
        url = f"http://127.0.0.1:{server.port()}/_w/api/snapshot"
        headers = {**FOREIGN, "Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(url, headers=headers, timeout=10).status_code == 200
        assert httpx.get(url, headers=FOREIGN, timeout=10).status_code == 403
    finally:
        stop(server)


def test_serve_has_no_dashboard_unless_asked() -> None:
    server = serve_command("--port", "0")
    try:
        port = server.port()
        assert httpx.get(f"http://127.0.0.1:{port}/_wsgi2asgi/", timeout=10).status_code == 404
    finally:
        stop(server)


def test_ci_runs_the_readme_command_which_installs_chromium_before_pytest() -> None:
    readme = (ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if "python -m pytest" in line)
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()
    chromium_step = "(command -v chromium >/dev/null || (apt-get update -qq && apt-get install"
    assert chromium_step in command
    assert command.index(chromium_step) < command.index("python -m pytest")


WIDTH, HEIGHT = 1280, 1600


def chromium() -> str:
    """The Chromium to drive; in CI (``CI=true``) a missing one fails the test."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    why = "no chromium on PATH: the README's test command installs it (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


class DevTools:
    """A page of a headless Chromium, driven over the DevTools protocol (a WebSocket)."""

    def __init__(self, binary: str, profile: str) -> None:
        self.process = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",  # we run as root in CI containers
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        active = Path(profile) / "DevToolsActivePort"
        assert wait_until(lambda: active.exists() and active.read_text().count("\n") >= 1, 30)
        port = int(active.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        from websockets.sync.client import connect

        self.connection = contextlib.ExitStack()  # websockets 17 wants connect() entered
        url = page["webSocketDebuggerUrl"]
        self.socket = self.connection.enter_context(connect(url, max_size=None, open_timeout=10))
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send a command; return its result (events that arrive first are kept)."""
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        message = self.receive(lambda m: m.get("id") == self.next_id, timeout)
        assert "error" not in message, message
        return dict(message["result"])

    def receive(self, wanted: Any, timeout: float = 30.0) -> dict[str, Any]:
        """The first message (already seen, or to come) for which ``wanted`` is true."""
        for message in self.events:
            if wanted(message):
                self.events.remove(message)
                return message
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if wanted(message):
                return dict(message)
            self.events.append(message)

    def navigate(self, url: str) -> None:
        """Open ``url`` and wait for its load event (its deferred script has run)."""
        self.call("Page.enable")
        self.call("Runtime.enable")  # its exceptions become events, kept in ``events``
        self.call("Log.enable")  # and so do the browser's own complaints (CSP violations)
        self.call("Page.navigate", url=url)
        self.receive(lambda m: m.get("method") == "Page.loadEventFired")

    def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        result = self.call(
            "Runtime.evaluate",
            timeout,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def close(self) -> None:
        self.connection.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def png_size_and_colours(data: bytes) -> tuple[int, int, int]:
    """Width, height and the number of distinct pixel colours of an 8-bit RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8]
        chunks.setdefault(kind, []).append(data[at + 8 : at + 8 + size])
        at += 12 + size
    header = chunks[b"IHDR"][0]
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
    depth, colour = header[8], header[9]
    assert depth == 8 and colour in (2, 6), (depth, colour)
    pixel = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks[b"IDAT"]))
    stride = width * pixel
    previous = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(height):  # undo the PNG filters (RFC 2083 §6) line by line
        at = y * (stride + 1)
        kind, line = raw[at], bytearray(raw[at + 1 : at + 1 + stride])
        for x in range(stride):
            left = line[x - pixel] if x >= pixel else 0
            up, corner = previous[x], previous[x - pixel] if x >= pixel else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[x] = (line[x] + best) & 0xFF
        if y % 4 == 0:  # every fourth line is plenty to tell a page from a blank
            colours.update(bytes(line[i : i + pixel]) for i in range(0, stride, pixel * 2))
        previous = line
    return width, height, len(colours)


#: Resolves once the page has drawn ``n`` live updates (its script fires ``dashboard:update``).
UPDATES = """new Promise((resolve, reject) => {
  const done = () => Number(document.body.dataset.updates || 0) >= %d;
  if (done()) return resolve(true);
  document.addEventListener("dashboard:update", () => done() && resolve(true));
  setTimeout(() => reject(new Error("no live update within 20 s")), 20000);
})"""

DOM = """(() => {
  const path = (id, cls) => document.querySelector(`#${id} svg path.${cls}`);
  return {
    rows: [...document.querySelectorAll("#routes tbody tr")].map((tr) => tr.cells[0].textContent),
    requests: document.getElementById("total-requests").textContent,
    share: document.getElementById("async-share").textContent,
    traffic: (path("chart-traffic", "area-async") || {getAttribute: () => ""}).getAttribute("d"),
    shareLine: (path("chart-share", "line-share") || {getAttribute: () => ""}).getAttribute("d"),
    status: document.getElementById("status").textContent,
    splits: document.querySelectorAll("#splits .split input[type=range]").length,
    differences: document.querySelectorAll("#shadows pre.diff").length,
    episodes: [...document.querySelectorAll("#blocking details.episode")].map(
      (e) => [e.querySelector("summary").textContent, e.querySelector("pre.stack").textContent]),
  };
})()"""

#: Types a percentage into the Split's control, clicks Set, resolves with what the page says.
SET_PERCENT = """new Promise((resolve, reject) => {
  const panel = document.querySelector("#splits .split");
  panel.querySelector("input[type=number]").value = "%d";
  panel.querySelector("button").click();
  const note = panel.querySelector(".control .muted");  // "saving…" until the POST answers
  new MutationObserver(() => note.textContent.startsWith("saving") || resolve(note.textContent))
    .observe(note, { childList: true, characterData: true, subtree: true });
  setTimeout(() => reject(new Error("no answer within 10 s")), 10000);
})"""


def test_the_page_draws_live_in_a_real_browser(tmp_path: Path) -> None:
    binary = chromium()
    server = serve_command("--port", "0", "--dashboard", "/_wsgi2asgi", "--debug-blocking", "50")
    browser: DevTools | None = None
    try:
        base = f"http://127.0.0.1:{server.port()}"
        with httpx.Client(base_url=base, timeout=10) as http:
            for n in range(12):
                http.get(f"/api/items/{n}")
                http.get(f"/legacy/users/{n}")
                http.get("/canary/checkout", headers={"x-user": f"user{n}"})
            http.get("/legacy/hello")  # a Shadow difference
            http.get("/api/block")  # a blocking call
            browser = DevTools(binary, tempfile.mkdtemp(dir=tmp_path))
            browser.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
                         deviceScaleFactor=1, mobile=False)  # fmt: skip
            browser.navigate(f"{base}/_wsgi2asgi/")
            assert browser.evaluate(UPDATES % 1) is True  # the first snapshot drawn
            http.get("/api/report")  # traffic between two updates
            assert browser.evaluate(UPDATES % 3) is True  # and two live ones after it
            dom = browser.evaluate(DOM)
            shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
            assert browser.evaluate(SET_PERCENT % 25) == "set to 25 %"  # the Split's control
            percent = http.get("/_wsgi2asgi/api/snapshot").json()["splits"][0]["percent"]
            problems = [
                event
                for event in browser.events
                if event.get("method") == "Runtime.exceptionThrown"
                or (
                    event.get("method") == "Log.entryAdded"
                    and event["params"]["entry"]["level"] == "error"
                    and not event["params"]["entry"].get("url", "").endswith("/favicon.ico")
                )
            ]
    finally:
        if browser is not None:
            browser.close()
        stop(server)
    assert problems == []  # no script error, nothing the page's CSP refused
    assert percent == 25.0
    assert "/legacy/users/<int:id>" in dom["rows"] and "/api/items/{id:int}" in dom["rows"]
    assert dom["status"] == "live"
    assert int(dom["requests"].replace(",", "")) >= 39
    assert dom["traffic"].count("L") > 60 and dom["shareLine"].startswith("M")
    assert dom["share"].endswith("%")
    assert (dom["splits"], dom["differences"]) == (1, 1)
    # /api/block's episode (a loaded machine may show others: anything holding the loop)
    assert any(
        "GET /api/block" in summary and "time.sleep(BLOCK_SECONDS)" in stack
        for summary, stack in dom["episodes"]
    )
    (tmp_path / "dashboard.png").write_bytes(shot)
    target = os.environ.get("WSGI2ASGI_DASHBOARD_SCREENSHOT")
    if target:  # keep it to look at: WSGI2ASGI_DASHBOARD_SCREENSHOT=/tmp/dashboard.png
        Path(target).write_bytes(shot)
    width, height, colours = png_size_and_colours(shot)
    assert (width, height) == (WIDTH, HEIGHT)
    assert colours > 20  # not a blank page
