"""The server process: startup, mounts, lifespan failure and graceful shutdown (subprocesses).

Each server listens on ``--port 0`` (or a socket it inherits) and the test reads the port back
from its log: no port is guessed free and then raced for by a parallel run.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.loopback import ServerProcess, wait_until
from wsgi2asgi.exceptions import ConfigError
from wsgi2asgi.server import Config, Server

ROOT = Path(__file__).resolve().parents[2]
HELD = "tests.apps.lifecycle:held"
LIFECYCLE = HELD.partition(":")[0]


def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
    command = [sys.executable, "-m", "wsgi2asgi", "serve", *args, "--port", "0"]
    environ = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return ServerProcess(command, cwd=ROOT, env=environ)


def hold_request(server: ServerProcess, port: int) -> socket.socket:
    """A request in flight: its head sent and in the app, its 4-byte body held back."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST /held HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n")
    server.wait_for(r"^request /held$")  # printed by the app
    return sock


def refused(port: int) -> bool:
    """Whether connecting to ``port`` is refused within 10 s (polled: nothing is logged when
    the server stops listening)."""

    def connect() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        return False

    return wait_until(connect, timeout=10)


def read_to_end(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_sigterm_finishes_in_flight_requests_then_runs_lifespan_shutdown() -> None:
    server = start(HELD, "--timeout-graceful-shutdown", "10")
    try:
        port = server.port()
        with hold_request(server, port) as sock:
            server.process.send_signal(signal.SIGTERM)
            assert refused(port)  # the shutdown has begun, the request is still in flight
            sock.sendall(b"body")
            response = read_to_end(sock)
    finally:
        status, output = server.finish()
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nconnection: close\r\n" in response.lower()
    assert response.endswith(b"\r\ndone /held\r\n0\r\n\r\n")  # chunked
    assert status == 0
    lines = [line for line in output.splitlines() if line.startswith("lifespan.")]
    assert lines == ["lifespan.startup", "lifespan.shutdown"]


def test_new_connections_are_refused_after_sigterm() -> None:
    server = start(HELD, "--timeout-graceful-shutdown", "30")
    try:
        port = server.port()
        with hold_request(server, port) as sock:
            server.process.send_signal(signal.SIGTERM)
            # While the server drains the request in flight, it no longer listens.
            assert refused(port), "new connections still accepted 10 s after SIGTERM"
            assert server.process.poll() is None
            sock.settimeout(0.05)
            try:
                early = sock.recv(1)
            except TimeoutError:
                early = b""
            assert early == b"", "the held request was answered before its body came"
            sock.settimeout(10)
            sock.sendall(b"body")
            assert read_to_end(sock).endswith(b"\r\ndone /held\r\n0\r\n\r\n")
    finally:
        status, _ = server.finish()
    assert status == 0


def test_lifespan_startup_failure_exits_3_with_the_message() -> None:
    status, output = start("tests.apps.lifecycle:broken_startup", "--lifespan", "on").finish()
    assert status == 3
    assert "database unreachable" in output


def test_mounts_serve_wsgi_asgi2_and_asgi3_side_by_side() -> None:
    server = start(
        "--mount",
        "/legacy=tests.apps.lifecycle:wsgi_app",
        "--mount",
        "/old=tests.apps.lifecycle:ASGI2",
        "--mount",
        f"/={HELD}",
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port()}") as client:
            assert client.get("/legacy/page").text == "wsgi /legacy /page"
            assert client.get("/old/x").text == "asgi2 /old/x"
            assert client.get("/other").text == "done /other"
    finally:
        server.process.send_signal(signal.SIGTERM)
        status, output = server.finish()
    assert status == 0
    assert "mount /legacy" in output and "wsgi" in output


def test_flask_app_served_by_the_serve_command() -> None:
    server = start("tests.apps.serve_flask:app")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port()}") as client:
            answer = client.get("/hello/ada", params={"lang": "fr"})
            assert answer.json() == {"hello": "ada", "lang": "fr", "root": ""}
            assert client.post("/form", data={"field": "x y"}).text == "got x y"
            assert client.get("/stream").text == "chunk0;chunk1;chunk2;"
            assert client.get("/missing").status_code == 404
    finally:
        server.process.send_signal(signal.SIGTERM)
        status, output = server.finish()
    assert status == 0
    assert "tests.apps.serve_flask:app" in output and "wsgi" in output


def test_unimportable_app_is_a_clear_error() -> None:
    status, output = start("no_such_module:app").finish()
    assert status == 2
    assert "could not import module 'no_such_module'" in output
    assert "Traceback" not in output


WORKER = r"serving on \S+ \(pid (\d+)\)"


def test_workers_share_the_port_and_a_dead_worker_is_replaced() -> None:
    server = start("tests.apps.lifecycle:whoami", "--workers", "2")
    try:
        url = f"http://127.0.0.1:{server.port()}/"
        pids: set[str] = set()

        def answered_by_both() -> bool:
            with httpx.Client() as client:  # a new connection each time
                pids.add(client.get(url).text)
            return len(pids) == 2

        assert wait_until(answered_by_both, timeout=20)
        victim = int(next(iter(pids)))
        os.kill(victim, signal.SIGKILL)
        restarted, _ = server.wait_for(rf"worker {victim} exited with .*; restarting it")
        _, newcomer = server.wait_for(WORKER, after=restarted)
        assert newcomer not in pids

        def answered_by_the_newcomer() -> bool:
            try:
                with httpx.Client() as client:
                    return client.get(url).text == newcomer
            except httpx.HTTPError:
                return False

        assert wait_until(answered_by_the_newcomer, timeout=20), "the new worker never answered"
    finally:
        server.process.send_signal(signal.SIGTERM)
        status, output = server.finish()
    assert status == 0
    supervisor = re.search(r"Started supervisor process \[(\d+)\]", output)
    assert supervisor is not None, output
    stopping = output.index("Shutting down: stopping 2 workers")
    assert output.index(f"Finished supervisor process [{supervisor[1]}]") > stopping
    assert output.count("Finished server process") >= 2  # each worker's, before the end


def test_workers_retire_after_max_requests_without_losing_one() -> None:
    server = start(
        "tests.apps.lifecycle:wsgi_whoami",
        "--workers",
        "2",
        "--limit-max-requests",
        "5",
        "--limit-max-requests-jitter",
        "3",
    )
    answers: list[str] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port()}") as client:
            for _ in range(40):
                # A worker that reached its limit finishes this request, then closes the
                # connection: the next request gets a new connection, to a live worker.
                response = client.get("/")
                assert response.status_code == 200
                answers.append(response.text)
    finally:
        server.process.send_signal(signal.SIGTERM)
        status, output = server.finish()
    assert status == 0
    pids = {answer.split()[0] for answer in answers}
    assert len(pids) >= 40 // (5 + 3)  # each worker served at most 8, then was replaced
    assert all(answer.endswith(" True") for answer in answers)  # wsgi.multiprocess
    assert "--limit-max-requests" in output and "starting a new one" in output


def test_gunicorn_worker_class_serves_asgi_and_stops_gracefully() -> None:
    # gunicorn serves on a socket bound here and handed over (fd://): no port to race for.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        fd = listener.fileno()
        server = ServerProcess(
            [
                *(
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-k",
                    "wsgi2asgi.server.gunicorn.Worker",
                    "-w",
                    "2",
                ),
                *("-b", f"fd://{fd}", HELD),
            ],
            cwd=ROOT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            pass_fds=[fd],
        )
    try:  # the listener is gunicorn's alone now: were it to exit, connecting would be refused
        server.wait_for(r"Booting worker")
        assert httpx.get(f"http://127.0.0.1:{port}/hi", timeout=20).text == "done /hi"
    finally:
        server.process.send_signal(signal.SIGTERM)
        status, output = server.finish()
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
    first = module.stat().st_mtime_ns
    server = start("reloadable_app:app", "--reload", "--app-dir", str(tmp_path))
    try:
        assert httpx.get(f"http://127.0.0.1:{server.port()}/").text == "one"
        module.write_text(source.replace("VERSION", "two"))
        later = first + 2_000_000_000  # a different modification time on any filesystem
        os.utime(module, ns=(later, later))
        restarting, _ = server.wait_for(r"changed: .*reloadable_app\.py; restarting")
        port = server.port(after=restarting)  # the new server process, on a port of its own
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "two"
    finally:
        server.process.send_signal(signal.SIGTERM)
        status, _ = server.finish()
    assert status == 0


# -- --workers with --uds; workers and reload from the Python API ----------------------------


def answered_by_two_workers(client: httpx.Client, url: str) -> set[str]:
    """The process ids that answer ``url``, a new connection each time, once two have."""
    pids: set[str] = set()

    def both() -> bool:
        pids.add(client.get(url, headers={"Connection": "close"}).text)
        return len(pids) == 2

    assert wait_until(both, timeout=20), f"only {pids} answered"
    return pids


@pytest.mark.parametrize("source", ["flag", "environment", "config file"])
def test_workers_serve_a_unix_socket(tmp_path: Path, source: str) -> None:
    # The workers are given the supervisor's socket: wherever --uds came from, they must not
    # also see it (before: "--uds and --fd cannot be used together", in every worker).
    path = tmp_path / "server.sock"
    args, env = [f"{LIFECYCLE}:whoami", "--workers", "2"], {}
    if source == "flag":
        args += ["--uds", str(path)]
    elif source == "environment":
        env["WSGI2ASGI_UDS"] = str(path)
    else:
        (tmp_path / "wsgi2asgi.toml").write_text(f'uds = "{path}"\n')
        args += ["--config", str(tmp_path / "wsgi2asgi.toml")]
    server = start(*args, env=env)
    try:
        first, _ = server.wait_for(rf"serving on unix:{re.escape(str(path))} ")
        server.wait_for(r"serving on unix:", after=first + 1)
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), timeout=10) as client:
            answered_by_two_workers(client, "http://worker/")
    finally:
        server.process.send_signal(signal.SIGTERM)
        status, output = server.finish()
    assert status == 0, output
    assert "error" not in output


def test_workers_serve_an_inherited_socket() -> None:
    # --fd under --workers: the supervisor hands that socket on (before, it bound 127.0.0.1:8000).
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port, fd = listener.getsockname()[1], listener.fileno()
        server = ServerProcess(
            [sys.executable, "-m", "wsgi2asgi", "serve", f"{LIFECYCLE}:whoami"]
            + ["--fd", str(fd), "--workers", "2"],
            cwd=ROOT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            pass_fds=[fd],
        )
    try:  # the listener is the server's alone now: requests wait in its backlog
        with httpx.Client(timeout=10) as client:
            answered_by_two_workers(client, f"http://127.0.0.1:{port}/")
    finally:
        server.process.send_signal(signal.SIGTERM)
        status, output = server.finish()
    assert status == 0, output


def start_from_python(*lines: str, cwd: Path = ROOT) -> ServerProcess:
    """Run a Python script (``lines``) that calls ``wsgi2asgi.server.serve``, in ``cwd``."""
    script = cwd / "run_server.py"
    script.write_text("\n".join(["from wsgi2asgi.server import serve", *lines, ""]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSGI2ASGI_")}
    return ServerProcess(
        [sys.executable, str(script)], cwd=ROOT, env=dict(env, PYTHONUNBUFFERED="1")
    )


WHOAMI = """
import os

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{os.getpid()} {environ['wsgi.multiprocess']}".encode()]
"""


def test_serve_from_python_runs_workers(tmp_path: Path) -> None:
    # The app module sits next to the script, not in the working directory: the workers
    # import it as the script could (its sys.path), as uvicorn.run's workers do.
    (tmp_path / "next_to_script.py").write_text(WHOAMI)
    server = start_from_python(
        'raise SystemExit(serve("next_to_script:app", port=0, workers=2))', cwd=tmp_path
    )
    try:
        port = server.port()
        with httpx.Client(timeout=10) as client:
            answers = answered_by_two_workers(client, f"http://127.0.0.1:{port}/")
    finally:
        server.process.send_signal(signal.SIGTERM)
        status, output = server.finish()
    assert status == 0, output
    assert all(answer.endswith(" True") for answer in answers)  # wsgi.multiprocess
    assert "Started supervisor process" in output


def test_serve_from_python_reloads(tmp_path: Path) -> None:
    module = tmp_path / "reloaded_from_python.py"
    source = (
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'VERSION'})\n"
    )
    module.write_text(source.replace("VERSION", "one"))
    first = module.stat().st_mtime_ns
    server = start_from_python(
        "raise SystemExit(serve('reloaded_from_python:app', port=0, reload=True,"
        f" reload_dirs=[{str(tmp_path)!r}]))",
        cwd=tmp_path,
    )
    try:
        assert httpx.get(f"http://127.0.0.1:{server.port()}/", timeout=10).text == "one"
        module.write_text(source.replace("VERSION", "two"))
        later = first + 2_000_000_000  # a different modification time on any filesystem
        os.utime(module, ns=(later, later))
        restarting, _ = server.wait_for(r"changed: .*reloaded_from_python\.py; restarting")
        port = server.port(after=restarting)
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text == "two"
    finally:
        server.process.send_signal(signal.SIGTERM)
        status, output = server.finish()
    assert status == 0, output


@pytest.mark.parametrize(
    ("options", "needs"),
    [
        ("workers=2", "workers=2 runs the app in other processes"),
        ("reload=True", "reload=True runs the app in other processes"),
    ],
)
def test_serve_from_python_refuses_processes_for_an_app_object(options: str, needs: str) -> None:
    # In a subprocess: were the setting ignored, the server would run (until the timeout).
    script = (
        "from wsgi2asgi.server import serve\n"
        "async def app(scope, receive, send): ...\n"
        "wrap = lambda app, detector: app\n"
        f"for kwargs in ({{'app': app}}, {{'app': None, 'mounts': [('/', app)]}},"
        f" {{'app': '{LIFECYCLE}:whoami', 'wrap_app': wrap}}):\n"
        "    try:\n"
        f"        serve(port=0, {options}, **kwargs)\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=20
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 3, done.stdout + done.stderr
    assert all(line.startswith(f"ConfigError {needs}") for line in lines), lines
    assert "give 'module:attr', not <function app" in lines[0]
    assert "give 'module:attr', not <function app" in lines[1]
    assert lines[2].endswith("wrap_app cannot reach them")


@pytest.mark.parametrize("options", [{"workers": 2}, {"reload": True}])
def test_server_refuses_workers_and_reload(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"Server runs one process; for .* use serve\("):
        Server(Config(app=f"{LIFECYCLE}:whoami", **options))


# -- a user's mistake is one line, a non-zero exit and no traceback (#14.2) -------------------

MISTAKES = "tests.apps.mistakes"


def stopped(*args: str) -> tuple[int, str]:
    """Run ``serve`` with ``args`` that must make it stop by itself: its status and output."""
    done = subprocess.run(
        [sys.executable, "-m", "wsgi2asgi", "serve", *args],
        cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


def one_error(output: str) -> str:
    """The one line saying what went wrong; fails on a traceback or on several such lines."""
    assert "Traceback" not in output, output
    assert not re.search(r"^\s", output, re.M), output  # no indented frames or notes
    errors = [line for line in output.splitlines() if re.search(r"\berror\b", line, re.I)]
    assert len(errors) == 1, output
    return errors[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_port_in_use_is_one_line(taken_port: int, workers: str) -> None:
    status, output = stopped(HELD, "--port", str(taken_port), "--workers", workers)
    assert status != 0
    line = one_error(output)
    assert f"cannot listen on 127.0.0.1:{taken_port}: address already in use" in line
    assert "lifespan.startup" not in output  # found before the app was started


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("256.0.0.1", "--host '256.0.0.1' is not an IP address or a host name"),
        ("bad host", "--host 'bad host' is not an IP address or a host name"),
        ("192.0.2.1", "cannot listen on 192.0.2.1:8000: cannot assign requested address"),
    ],
)
def test_bad_host_is_one_line(host: str, reason: str) -> None:
    # 256.0.0.1 and "bad host" are refused before any lookup; 192.0.2.1 (TEST-NET-1) is not an
    # address of this machine, so binding to it fails (no packet is sent).
    status, output = stopped(HELD, "--host", host)
    assert status != 0
    assert reason in one_error(output)


def test_uds_in_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "server.sock"
    status, output = stopped(HELD, "--uds", str(path))
    assert status != 0
    line = one_error(output)
    assert f"cannot listen on unix:{path}: the directory {path.parent} does not exist" in line


def test_zero_threads_is_one_line() -> None:
    status, output = stopped(f"{MISTAKES}:create_app('x')", "--threads", "0")
    assert status != 0
    assert "--threads must be at least 1" in one_error(output)


def test_factory_called_with_literal_arguments() -> None:
    server = start(f"{MISTAKES}:create_app('hello', punctuation='!')")
    try:
        answer = httpx.get(f"http://127.0.0.1:{server.port()}/", timeout=10)
    finally:
        server.process.send_signal(signal.SIGTERM)
        status, output = server.finish()
    assert answer.text == "hello!", output
    assert status == 0


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (
            f"{MISTAKES}:create_app(greeting)",
            "arguments must be Python literals (strings, numbers, True, None, lists, dicts): "
            "'greeting' is not",
        ),
        (f"{MISTAKES}:create_app('a'", "app must look like 'module:attribute'"),
        (f"{MISTAKES}:create_app(*args)", "arguments must be Python literals"),
    ],
)
def test_factory_arguments_that_cannot_be_used_are_one_line(spec: str, reason: str) -> None:
    status, output = stopped(spec)
    assert status != 0
    assert reason in one_error(output)


@pytest.mark.parametrize(
    ("attr", "reason"),
    [
        ("no_args", "no_args() is not a WSGI app (environ, start_response) or an ASGI app"),
        ("four", "four(environ, start_response, extra, more) is not a WSGI app"),
        ("lonely", "lonely(scope) is not a WSGI app"),
        ("NoScope", "NoScope() is not a WSGI app"),
    ],
)
def test_an_app_with_the_wrong_signature_is_refused_at_load(attr: str, reason: str) -> None:
    status, output = stopped(f"{MISTAKES}:{attr}")
    assert status != 0
    line = one_error(output)
    assert f"cannot serve '{MISTAKES}:{attr}': {reason}" in line


# -- logs like uvicorn's, through logging (#14.3) -------------------------------------------


def served_once(*args: str, path: str = "/x") -> tuple[int, str, int]:
    """Start ``serve HELD *args``, answer one GET, stop it: status, output, and the port."""
    server = start(HELD, *args)
    try:
        port = server.port()
        answer = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
        assert answer.text == f"done {path.partition('?')[0]}"
    finally:
        server.process.send_signal(signal.SIGTERM)
        status, output = server.finish()
    return status, output, port


def test_lifecycle_lines_like_uvicorns() -> None:
    status, output, port = served_once()
    assert status == 0
    pid = re.search(r"Started server process \[(\d+)\]", output)
    assert pid is not None, output
    expected = [
        f"Started server process [{pid[1]}]",
        "Waiting for application startup.",
        "Application startup complete.",
        f"wsgi2asgi serving on http://127.0.0.1:{port} (pid {pid[1]})",
        f"app   {HELD}",
        "mount /            asgi3 event loop",
        "Shutting down",
        "Waiting for application shutdown.",
        "Application shutdown complete.",
        f"Finished server process [{pid[1]}]",
    ]
    lines = output.splitlines()
    found = [next((i for i, line in enumerate(lines) if e in line), -1) for e in expected]
    assert -1 not in found and found == sorted(found), output


LOG_CONFIGS = {
    "json": """{"version": 1, "disable_existing_loggers": false,
        "formatters": {"plain": {"format": "CUSTOM %(name)s %(levelname)s %(message)s"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "plain",
                             "stream": "ext://sys.stdout"}},
        "loggers": {"wsgi2asgi": {"handlers": ["out"], "level": "INFO", "propagate": false},
                    "wsgi2asgi.access": {"handlers": ["out"], "level": "INFO",
                                         "propagate": false}}}""",
    "yaml": """
version: 1
disable_existing_loggers: false
formatters: {plain: {format: "CUSTOM %(name)s %(levelname)s %(message)s"}}
handlers: {out: {class: logging.StreamHandler, formatter: plain, stream: "ext://sys.stdout"}}
loggers:
  wsgi2asgi: {handlers: [out], level: INFO, propagate: false}
  wsgi2asgi.access: {handlers: [out], level: INFO, propagate: false}
""",
    "ini": """
[loggers]
keys=root,wsgi2asgi,access
[handlers]
keys=out
[formatters]
keys=plain
[logger_root]
level=WARNING
handlers=
[logger_wsgi2asgi]
level=INFO
handlers=out
propagate=0
qualname=wsgi2asgi
[logger_access]
level=INFO
handlers=out
propagate=0
qualname=wsgi2asgi.access
[handler_out]
class=StreamHandler
formatter=plain
args=(sys.stdout,)
[formatter_plain]
format=CUSTOM %(name)s %(levelname)s %(message)s
""",
}


@pytest.mark.parametrize("kind", sorted(LOG_CONFIGS))
def test_log_config_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"logging.{kind}"
    path.write_text(LOG_CONFIGS[kind])
    status, output, port = served_once("--log-config", str(path))
    assert status == 0
    lines = output.splitlines()
    assert f"CUSTOM wsgi2asgi.error INFO wsgi2asgi serving on http://127.0.0.1:{port}" in output
    assert any(
        line.startswith("CUSTOM wsgi2asgi.access INFO 127.0.0.1:")
        and line.endswith(' - "GET /x HTTP/1.1" 200')
        for line in lines
    ), output
    assert re.search(r"^CUSTOM wsgi2asgi.error INFO Finished server process", output, re.M)


def test_a_bad_log_config_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "logging.json"
    path.write_text('{"version": 1, "handlers": {"h": {"class": "no.Such"}}}')
    status, output = stopped(HELD, "--log-config", str(path), "--port", "0")
    assert status != 0
    assert f"--log-config {path}: ValueError: Unable to configure handler 'h'" in one_error(output)


@pytest.mark.parametrize(("flag", "coloured"), [("--use-colors", True), ("--no-use-colors", False)])
def test_use_colors(flag: str, coloured: bool) -> None:
    status, output, _ = served_once(flag)
    assert status == 0
    assert ("\x1b[32mINFO\x1b[0m:" in output) is coloured
    assert ('"\x1b[1mGET /x HTTP/1.1\x1b[0m" \x1b[32m200\x1b[0m' in output) is coloured


def test_colours_are_off_when_not_a_terminal() -> None:
    status, output, _ = served_once()
    assert status == 0 and "\x1b[" not in output


def test_access_log_format() -> None:
    status, output, _ = served_once(
        "--access-log-format", "%(h)s %(m)s %(U)s %(q)s %(s)s %(B)s", path="/x?y=1"
    )
    assert status == 0
    assert re.search(r" INFO: +127\.0\.0\.1 GET /x y=1 200 7$", output, re.M), output


def test_gunicorn_worker_writes_its_access_and_error_logfiles(tmp_path: Path) -> None:
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        fd = listener.fileno()
        server = ServerProcess(
            [
                *(sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"fd://{fd}"),
                *("-k", "wsgi2asgi.server.gunicorn.Worker", "--access-logfile", str(access)),
                *("--access-logformat", '%(h)s "%(r)s" %(s)s %(b)s %({x-probe}i)s'),
                *("--error-logfile", str(errors), HELD),
            ],
            cwd=ROOT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            pass_fds=[fd],
        )

    def logged(path: Path, text: str) -> bool:
        return path.exists() and text in path.read_text()

    try:
        assert wait_until(lambda: logged(errors, "Application startup complete."), timeout=30)
        answer = httpx.get(f"http://127.0.0.1:{port}/hi", headers={"x-probe": "p1"}, timeout=20)
        assert answer.text == "done /hi"
        assert wait_until(lambda: logged(access, '127.0.0.1 "GET /hi HTTP/1.1" 200 8 p1'))
    finally:
        server.process.send_signal(signal.SIGTERM)
        status, output = server.finish()
    assert status == 0, output
    assert "wsgi2asgi serving on" in errors.read_text()
    assert wait_until(lambda: logged(errors, "Finished server process"))
    assert "serving on" not in output  # gunicorn's and ours: all in --error-logfile
