"""What the traffic counters cost on the hot path: requests with the dashboard off and on.

Prints the median of the rounds for each case, and the ratio to the case with the dashboard
off (1.00 = no cost), plus the cost per request in microseconds. The dashboard is off by
default and then costs nothing: nothing is installed.

Run::

    python benchmarks/dashboard.py                       # 5 rounds, in-process and server
    python benchmarks/dashboard.py --rounds 3 --seconds 1 --no-server
    python benchmarks/dashboard.py --uvloop

Cases:

* ``ASGI requests``: a hello-world ASGI app called in-process (no sockets), one request after
  the other, each in its own task as the server runs it, so the per-request cost is not
  hidden behind I/O. Modes: ``off`` (the bare app), ``counters`` (``TrafficCounter`` alone),
  ``dashboard`` (``WithDashboard``: the dashboard's prefix check, then the counters).
* ``new paths``: a Starlette router of 31 routes (``/r0/{id:int}`` ... ``/r29/{id:int}``, then
  ``/items/{id:int}``), a different path each request (``/items/N``), past the 4,096 paths the
  counters remember: every request is matched against the route table's regex, to its last
  alternative. The ratio is smaller (Starlette's own routing is in every mode); the cost in
  microseconds is the counters'.
* ``server``: our server under ``wrk`` (``apt-get install wrk``), ``benchmarks/apps.py``'s ASGI
  hello world, without and with ``--dashboard``; servers interleaved round by round.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.server import measure  # noqa: E402
from wsgi2asgi.dashboard import Traffic, TrafficCounter, WithDashboard  # noqa: E402
from wsgi2asgi.typing import ASGIApp, Receive, Scope, Send  # noqa: E402

MODES = ("off", "counters", "dashboard")


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def starlette_routes() -> ASGIApp:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, Router

    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    paths = [f"/r{i}/{{id:int}}" for i in range(30)] + ["/items/{id:int}"]
    return Router([Route(path, endpoint) for path in paths])


def build(mode: str, app: ASGIApp) -> ASGIApp:
    if mode == "counters":
        return TrafficCounter(app, Traffic(app))
    if mode == "dashboard":
        return WithDashboard(app, "/_wsgi2asgi")
    return app


async def requests(seconds: float, app: ASGIApp, new_paths: bool) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for i in range(1000):
            path = f"/items/{count + i}" if new_paths else "/"
            scope = {"type": "http", "method": "GET", "path": path, "headers": []}
            await asyncio.create_task(app(scope, receive, send))  # a task per request
        count += 1000
    return count / seconds


def in_process(args: argparse.Namespace) -> None:
    for label, new_paths in (("ASGI requests", False), ("new paths", True)):
        results: dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(args.rounds):  # modes interleaved round by round
            for mode in MODES:
                app = build(mode, starlette_routes() if new_paths else hello)
                results[mode].append(asyncio.run(requests(args.seconds, app, new_paths)))
        report(label, {mode: statistics.median(values) for mode, values in results.items()})


def server(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        print("server: skipped (wrk is needed: apt-get install wrk)")
        return
    command = [sys.executable, "-m", "wsgi2asgi", "serve", "benchmarks.apps:asgi"]
    command += ["--port", "{port}", "--no-access-log", "--log-level", "warning"]
    commands = {"off": command, "dashboard": [*command, "--dashboard", "/_wsgi2asgi"]}
    results: dict[str, list[float]] = {mode: [] for mode in commands}
    for _ in range(args.rounds):
        for mode, argv in commands.items():
            results[mode].append(measure(argv, args.duration, args.connections))
    report("server (wrk)", {mode: statistics.median(values) for mode, values in results.items()})


def report(label: str, medians: dict[str, float]) -> None:
    base = medians["off"]
    for mode, value in medians.items():
        cost = (1 / value - 1 / base) * 1e6
        extra = "" if mode == "off" else f"  {cost:+6.2f} µs/request"
        print(f"{label:14} {mode:10} {value:>12,.0f}/s  {value / base:5.2f}{extra}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="per in-process round")
    parser.add_argument("--duration", type=int, default=5, help="wrk seconds per server round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--no-server", action="store_true", help="skip the wrk case")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds (median)")
    in_process(args)
    if not args.no_server:
        server(args)


if __name__ == "__main__":
    main()
