"""WSGI-in-ASGI adapters side by side: ours, a2wsgi and asgiref, in one process, same driver.

Each adapter wraps the same WSGI apps and is called directly as an ASGI app (no server, no
sockets: this measures the adapter alone). Every case runs in rounds; the table gives the
median requests per second and the ratio to ours (> 1.0x means ours is faster).

Run::

    python benchmarks/wsgi.py            # asyncio loop
    python benchmarks/wsgi.py --uvloop   # uvloop, as servers run in production

Cases:

* ``hello``: GET, 13-byte body, one request at a time.
* ``hello x100``: 100 concurrent GETs (threads busy, requests queue).
* ``flask hello``: the same through a one-route Flask app (its response is an iterable with a
  ``close()``, not a list), 32 at a time.
* ``download 1 MiB``: a 1 MiB response yielded in 64 KiB chunks.
* ``upload 1 MiB``: a 1 MiB request body in 64 KiB messages, read by the app.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wsgi2asgi.wsgi import wsgi_to_asgi  # noqa: E402

CHUNK = b"x" * 65536
Environ = dict[str, Any]


def hello(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]


def download(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return (CHUNK for _ in range(16))


def upload(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
    stream = environ["wsgi.input"]
    size = 0
    while chunk := stream.read(65536):
        size += len(chunk)
    body = str(size).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def flask_hello() -> Callable[..., Any]:
    """A one-route Flask app answering ``Hello, world!``."""
    from flask import Flask

    app = Flask("bench")
    app.add_url_rule("/", "hello", lambda: "Hello, world!")
    return app


def scope(method: str, path: str, body_size: int) -> dict[str, Any]:
    headers = [(b"host", b"bench"), (b"user-agent", b"bench/1")]
    if body_size:
        headers.append((b"content-length", str(body_size).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }


async def one_request(app: Any, method: str, body_chunks: int) -> int:
    """Drive one request through ``app``; return the number of response body bytes."""
    messages = [
        {"type": "http.request", "body": CHUNK, "more_body": i < body_chunks - 1}
        for i in range(body_chunks)
    ] or [{"type": "http.request", "body": b"", "more_body": False}]
    received = 0
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal received
        if message["type"] == "http.response.body":
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    await app(scope(method, "/", body_chunks * len(CHUNK)), receive, send)
    return received


async def run_case(app: Any, method: str, body_chunks: int, concurrency: int, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n // concurrency):
        if concurrency == 1:
            await one_request(app, method, body_chunks)
        else:
            await asyncio.gather(
                *(one_request(app, method, body_chunks) for _ in range(concurrency))
            )
    return (n // concurrency) * concurrency / (time.perf_counter() - start)


def adapters() -> dict[str, Callable[[Any], Any]]:
    from a2wsgi import WSGIMiddleware
    from asgiref.wsgi import WsgiToAsgi

    return {
        "wsgi2asgi": lambda app: wsgi_to_asgi(app),
        "a2wsgi": lambda app: WSGIMiddleware(app),
        "asgiref": lambda app: WsgiToAsgi(app),
    }


CASES: list[tuple[str, Any, str, int, int, int]] = [
    ("hello", hello, "GET", 0, 1, 2000),
    ("hello x100", hello, "GET", 0, 100, 2000),
    ("flask hello", flask_hello(), "GET", 0, 32, 2000),
    ("download 1 MiB", download, "GET", 0, 1, 200),
    ("upload 1 MiB", upload, "POST", 16, 1, 200),
]


async def main_async(rounds: int) -> None:
    makers = adapters()
    print(f"{'case':<16} " + " ".join(f"{name + ' req/s':>16}" for name in makers), end="")
    print("   " + " ".join(f"{'ours/' + name:>14}" for name in makers if name != "wsgi2asgi"))
    for label, wsgi_app, method, chunks, concurrency, n in CASES:
        results: dict[str, list[float]] = {name: [] for name in makers}
        for _ in range(rounds):
            for name, make in makers.items():
                app = make(wsgi_app)
                await run_case(app, method, chunks, concurrency, max(n // 10, concurrency))
                results[name].append(await run_case(app, method, chunks, concurrency, n))
        medians = {name: statistics.median(values) for name, values in results.items()}
        ours = medians["wsgi2asgi"]
        row = " ".join(f"{medians[name]:>16,.0f}" for name in makers)
        ratios = " ".join(
            f"{ours / medians[name]:>13.2f}x" for name in makers if name != "wsgi2asgi"
        )
        print(f"{label:<16} {row}   {ratios}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        runner: Callable[[Awaitable[None]], None] = uvloop.run  # type: ignore[assignment]
    else:
        runner = asyncio.run  # type: ignore[assignment]
    print(f"python {sys.version.split()[0]}, {'uvloop' if args.uvloop else 'asyncio'}")
    runner(main_async(args.rounds))


if __name__ == "__main__":
    main()
