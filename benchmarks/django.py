"""One Django project served four ways, side by side: ``django_app()`` against its peers.

The project: a template page behind Django's default middleware (``startproject``'s seven),
sessions, auth and messages installed, SQLite, ``DEBUG`` off. Three views render the same
template: ``/sync`` (a sync view), ``/async`` (awaits ``asyncio.sleep(0)``) and ``/async10``
(awaits ``asyncio.sleep(0.01)``, an async view waiting on I/O).

Servers, each a subprocess with one worker process, all started once and measured in
interleaved rounds:

* ``auto``: ours, ``django_app()`` (sync views on WSGIHandler, async on ASGIHandler);
* ``auto+w2a``: ours, ``django_app(bridges="wsgi2asgi")`` (the same, with Django's own thread
  crossings on wsgi2asgi's bridges and its ``MiddlewareMixin`` middleware crossed once per
  request on the async path: :mod:`adapters.django_bridges`);
* ``wsgi``: ours, ``django_app(interface="wsgi")``;
* ``uvicorn``: uvicorn (httptools, uvloop) + Django's ``ASGIHandler``;
* ``gunicorn``: gunicorn ``-k gthread --threads 32`` (as many threads as our pool) + Django's
  ``WSGIHandler``.

Cases: the sync view and the async view at ``-c32``; the mixed load (80% ``/sync``, 20%
``/async10``, a wrk Lua script) at ``-c64``, with p99 latency. Load from ``wrk -t1`` (``apt-get
install wrk``) on the same cores, so compare ratios, not absolute numbers.

Run (from the repository root; ``python benchmarks/django.py`` works too)::

    python -m benchmarks.django                       # 3 rounds of 5 s per server and case
    python -m benchmarks.django --rounds 2 --duration 3
    python -m benchmarks.django --servers auto+w2a,uvicorn --cases async   # a subset
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

PAGE = """<!doctype html>
<html><head><title>{{ title }}</title></head><body>
<h1>{{ title }}</h1>
<p>{% if user.is_authenticated %}Hello {{ user }}{% else %}Welcome, visitor{% endif %}.</p>
<ul>{% for item in items %}
<li><a href="{{ request.path }}?item={{ item.id }}">{{ item.name|title }}</a>
{{ item.price|floatformat:2 }}</li>{% endfor %}</ul>
<form method="post">{% csrf_token %}<input name="q"><button>Search</button></form>
</body></html>
"""

ITEMS = [{"id": i, "name": f"item number {i}", "price": i * 1.25} for i in range(20)]


def _render(request: Any, title: str) -> Any:
    from django.shortcuts import render

    return render(request, "page.html", {"title": title, "items": ITEMS})


def sync_view(request: Any) -> Any:
    return _render(request, "sync")


async def async_view(request: Any) -> Any:
    await asyncio.sleep(0)
    return _render(request, "async")


async def async_io_view(request: Any) -> Any:
    await asyncio.sleep(0.01)
    return _render(request, "async, 10 ms")


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("sync", sync_view), path("async", async_view), path("async10", async_io_view)]


def configure() -> None:
    """Configure Django for this project (once per process), with a SQLite file of its own."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    database = Path(tempfile.mkdtemp(prefix="w2a-bench-")) / "db.sqlite3"
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
        ],
        MIDDLEWARE=MIDDLEWARE,
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ],
                    "loaders": [("django.template.loaders.locmem.Loader", {"page.html": PAGE})],
                },
            }
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(database)}},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup(set_prefix=False)
    from django.core.management import call_command

    # The servers call their factory on their event loop, where Django refuses database work.
    migrate = threading.Thread(target=call_command, args=("migrate",), kwargs={"verbosity": 0})
    migrate.start()
    migrate.join()


def __getattr__(name: str) -> Any:
    if name == "urlpatterns":  # ROOT_URLCONF is this module; the views are defined above
        return _urlpatterns()
    raise AttributeError(name)


# Factories the servers call (``--factory`` / ``module:factory()``).


def auto() -> Any:
    configure()
    from adapters.django import django_app

    return django_app()


def auto_wsgi2asgi_bridges() -> Any:
    configure()
    from adapters.django import django_app

    return django_app(bridges="wsgi2asgi")


def wsgi_mode() -> Any:
    configure()
    from adapters.django import django_app

    return django_app(interface="wsgi")


def asgi_handler() -> Any:
    configure()
    from django.core.handlers.asgi import ASGIHandler

    return ASGIHandler()


def wsgi_handler() -> Any:
    configure()
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIHandler()


def _ours(factory: str) -> list[str]:
    return [
        PY,
        "-m",
        "wsgi2asgi",
        "serve",
        f"benchmarks.django:{factory}",
        "--factory",
        "--port",
        "{port}",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


SERVERS: dict[str, list[str]] = {
    "auto": _ours("auto"),
    "auto+w2a": _ours("auto_wsgi2asgi_bridges"),
    "wsgi": _ours("wsgi_mode"),
    "uvicorn": [
        PY,
        "-m",
        "uvicorn",
        "benchmarks.django:asgi_handler",
        "--factory",
        "--port",
        "{port}",
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--lifespan",
        "off",
    ],
    "gunicorn": [
        PY,
        "-m",
        "gunicorn",
        "-k",
        "gthread",
        "--threads",
        "32",
        "-w",
        "1",
        "-b",
        "127.0.0.1:{port}",
        "--log-level",
        "warning",
        "benchmarks.django:wsgi_handler()",
    ],
}

MIXED = """
math.randomseed(os.time())
request = function()
  if math.random() < 0.2 then
    return wrk.format("GET", "/async10")
  end
  return wrk.format("GET", "/sync")
end
"""

# case -> (path, connections, wrk script or None)
CASES: dict[str, tuple[str, int, str | None]] = {
    "sync view (-c32)": ("/sync", 32, None),
    "async view (-c32)": ("/async", 32, None),
    "mixed 80% sync / 20% async 10 ms (-c64)": ("/", 64, MIXED),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in command]
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    for _ in range(400):
        if process.poll() is not None:
            raise RuntimeError(f"{argv[2]} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return process, port
        except OSError:
            time.sleep(0.05)  # polling a port that is not listening yet: nothing to wait on
    raise RuntimeError("server did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wrk(port: int, path: str, connections: int, duration: int, script: str | None) -> str:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script is not None:
        argv += ["-s", script]
    result = subprocess.run(
        [*argv, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True
    )
    problems = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", result.stdout)
    if problems:
        print(f"    note: {problems.group(0)} (port {port}, {path})", file=sys.stderr)
    return result.stdout


def rate(output: str) -> float:
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    return float(match.group(1)) if match else 0.0


def p99_ms(output: str) -> float:
    match = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if not match:
        return float("nan")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
    return float(match.group(1)) * scale


def report(case: str, rates: dict[str, list[float]], p99s: dict[str, list[float]]) -> None:
    """One line per server: median req/s, median p99 (mixed load), ratios to the peers."""
    medians = {name: statistics.median(values) for name, values in rates.items()}
    peers = [peer for peer in ("uvicorn", "gunicorn", "wsgi") if peer in medians]
    print(f"\n{case}")
    for name, value in medians.items():
        latency = f"   p99 {statistics.median(p99s[name]):7.1f} ms" if p99s[name] else ""
        ratios = "".join(
            f"   {value / medians[peer]:.2f}x {peer}" for peer in peers if peer != name
        )
        print(f"  {name:<10}{value:>9,.0f} req/s{latency}{ratios}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset")
    parser.add_argument("--cases", default="", help="only the cases whose name contains this")
    args = parser.parse_args()
    servers = {name: SERVERS[name] for name in args.servers.split(",")}
    cases = {case: spec for case, spec in CASES.items() if args.cases in case}
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    peers = ", ".join(f"{n} {version(n)}" for n in ("django", "asgiref", "uvicorn", "gunicorn"))
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {peers}; wrk -t1 "
        f"-d{args.duration}s, {args.rounds} interleaved rounds (median req/s, median p99)"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(MIXED)
    running = {name: start(command) for name, command in servers.items()}
    try:
        for _, port in running.values():  # warm up: imports, template cache, first sessions
            for path in ("/sync", "/async", "/async10"):
                wrk(port, path, 8, 1, None)
        results: dict[str, tuple[dict[str, list[float]], dict[str, list[float]]]] = {
            case: ({name: [] for name in running}, {name: [] for name in running}) for case in cases
        }
        for _ in range(args.rounds):
            for case, (path, connections, lua) in cases.items():
                for name, (_, port) in running.items():
                    output = wrk(
                        port, path, connections, args.duration, script.name if lua else None
                    )
                    results[case][0][name].append(rate(output))
                    if lua:
                        results[case][1][name].append(p99_ms(output))
        for case, (rates, p99s) in results.items():
            report(case, rates, p99s)
    finally:
        for process, _ in running.values():
            stop(process)
        os.unlink(script.name)


if __name__ == "__main__":
    main()
