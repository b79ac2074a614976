"""The server process: startup, mounts, lifespan failure and graceful shutdown (subprocesses)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.loopback import free_port

ROOT = Path(__file__).resolve().parents[2]


def start(*args: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "wsgi2asgi", "serve", *args, "--port", str(port)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    for _ in range(300):
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
        except OSError:
            time.sleep(0.05)
    return process, port


def finish(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    try:
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out.decode()


def test_sigterm_finishes_in_flight_requests_then_runs_lifespan_shutdown() -> None:
    process, port = start("tests.server.apps.lifecycle:slow", "--timeout-graceful-shutdown", "10")
    results: list[str] = []
    try:

        def slow_request() -> None:
            results.append(httpx.get(f"http://127.0.0.1:{port}/slow", timeout=10).text)

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.3)  # the request is in flight
        process.send_signal(signal.SIGTERM)
        thread.join(10)
    finally:
        status, output = finish(process)
    assert results == ["done /slow"]
    assert status == 0
    lines = [line for line in output.splitlines() if line.startswith("lifespan.")]
    assert lines == ["lifespan.startup", "lifespan.shutdown"]


def test_new_connections_are_refused_after_sigterm() -> None:
    process, port = start("tests.server.apps.lifecycle:slow")
    try:
        process.send_signal(signal.SIGINT)
        status, _ = finish(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert status == 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            refused = False
    except OSError:
        refused = True
    assert refused


def test_lifespan_startup_failure_exits_3_with_the_message() -> None:
    process, _ = start("tests.server.apps.lifecycle:broken_startup", "--lifespan", "on")
    status, output = finish(process)
    assert status == 3
    assert "database unreachable" in output


def test_mounts_serve_wsgi_asgi2_and_asgi3_side_by_side() -> None:
    process, port = start(
        "--mount",
        "/legacy=tests.server.apps.lifecycle:wsgi_app",
        "--mount",
        "/old=tests.server.apps.lifecycle:ASGI2",
        "--mount",
        "/=tests.server.apps.lifecycle:slow",
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/legacy/page").text == "wsgi /legacy /page"
            assert client.get("/old/x").text == "asgi2 /old/x"
            assert client.get("/other").text == "done /other"
        process.send_signal(signal.SIGTERM)
    finally:
        status, output = finish(process)
    assert status == 0
    assert "mount /legacy" in output and "wsgi" in output


def test_flask_app_served_by_the_serve_command() -> None:
    process, port = start("tests.server.apps.flask_app:app")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            answer = client.get("/hello/ada", params={"lang": "fr"})
            assert answer.json() == {"hello": "ada", "lang": "fr", "root": ""}
            assert client.post("/form", data={"field": "x y"}).text == "got x y"
            assert client.get("/stream").text == "chunk0;chunk1;chunk2;"
            assert client.get("/missing").status_code == 404
        process.send_signal(signal.SIGTERM)
    finally:
        status, output = finish(process)
    assert status == 0
    assert "tests.server.apps.flask_app:app" in output and "wsgi" in output


def test_unimportable_app_is_a_clear_error() -> None:
    process, _ = start("no_such_module:app")
    status, output = finish(process)
    assert status == 2
    assert "could not import module 'no_such_module'" in output
    assert "Traceback" not in output


def test_workers_share_the_port_and_a_dead_worker_is_replaced() -> None:
    process, port = start("tests.server.apps.lifecycle:whoami", "--workers", "2")
    try:
        url = f"http://127.0.0.1:{port}/"
        pids: set[str] = set()
        deadline = time.monotonic() + 20
        while len(pids) < 2 and time.monotonic() < deadline:
            with httpx.Client() as client:  # a new connection each time
                pids.add(client.get(url).text)
        assert len(pids) == 2
        victim = int(next(iter(pids)))
        os.kill(victim, signal.SIGKILL)
        replaced: set[str] = set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with httpx.Client() as client:
                    replaced.add(client.get(url).text)
            except httpx.HTTPError:
                pass
            if len(replaced - pids) >= 1:
                break
            time.sleep(0.05)
        assert replaced - pids, "no replacement worker answered"
        process.send_signal(signal.SIGTERM)
    finally:
        status, output = finish(process)
    assert status == 0
    assert "restarting" in output


def test_workers_retire_after_max_requests_without_losing_one() -> None:
    process, port = start(
        "tests.server.apps.lifecycle:wsgi_whoami",
        "--workers",
        "2",
        "--limit-max-requests",
        "5",
        "--limit-max-requests-jitter",
        "3",
    )
    answers: list[str] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(40):
                # A worker that reached its limit finishes this request, then closes the
                # connection: the next request gets a new connection, to a live worker.
                response = client.get("/")
                assert response.status_code == 200
                answers.append(response.text)
    finally:
        process.send_signal(signal.SIGTERM)
        status, output = finish(process)
    assert status == 0
    pids = {answer.split()[0] for answer in answers}
    assert len(pids) >= 40 // (5 + 3)  # each worker served at most 8, then was replaced
    assert all(answer.endswith(" True") for answer in answers)  # wsgi.multiprocess
    assert "--limit-max-requests" in output and "starting a new one" in output


def test_gunicorn_worker_class_serves_asgi_and_stops_gracefully() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-k",
            "wsgi2asgi.workers.Worker",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "tests.server.apps.lifecycle:slow",
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        text = ""
        for _ in range(200):
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/hi", timeout=2).text
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert text == "done /hi"
        process.send_signal(signal.SIGTERM)
    finally:
        status, output = finish(process)
    assert status == 0
    # Each worker that started its lifespan also shut it down (a worker still booting when
    # SIGTERM arrives may not have started it at all).
    started = output.count("lifespan.startup")
    assert started >= 1
    assert output.count("lifespan.shutdown") == started


def test_reload_restarts_the_server_when_a_file_changes(tmp_path: Path) -> None:
    module = tmp_path / "reloadable_app.py"
    source = (
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'VERSION'})\n"
    )
    module.write_text(source.replace("VERSION", "one"))
    process, port = start("reloadable_app:app", "--reload", "--app-dir", str(tmp_path))
    try:
        url = f"http://127.0.0.1:{port}/"
        assert httpx.get(url).text == "one"
        time.sleep(1.1)  # a different modification time, whatever the filesystem's resolution
        module.write_text(source.replace("VERSION", "two"))
        text = ""
        deadline = time.monotonic() + 20
        while text != "two" and time.monotonic() < deadline:
            try:
                text = httpx.get(url, timeout=1).text
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert text == "two"
        process.send_signal(signal.SIGTERM)
    finally:
        status, output = finish(process)
    assert status == 0
    assert "restarting" in output
