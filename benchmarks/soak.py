"""Soak test: many mixed requests against the example composite; watch for leaks and errors.

Runs ``wsgi2asgi serve examples.flask_in_django.asgi:application`` as a subprocess and drives
it from this process with a mix of requests at high concurrency on loopback:

* Django pages (ASGI handler), Flask pages and form posts (WSGI, through ``Fallback``), Starlette
  JSON (ASGI), a streamed response, 64 KiB uploads to Flask;
* WebSocket sessions (connect, 3 messages, close);
* clients that disconnect early (mid-request and mid-response) with raw sockets;
* eight pipelined requests in one write, the first of them asking for ``Upgrade: h2c``
  (ignored: all eight must be answered, in order).

It samples the server's RSS, thread count and open file descriptors (``/proc``) from start to
end and prints them with the error counts. Goal: zero errors, RSS growth under 5% after warm-up,
threads and fds back to baseline. Run by hand (not in CI)::

    python benchmarks/soak.py --requests 200000 --concurrency 64
    python benchmarks/soak.py --requests 200000 --server-args '--malloc-arena-max 2'
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sample(pid: int) -> tuple[int, int, int]:
    """(RSS in KiB, threads, open fds) of a process, from /proc."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads, len(os.listdir(f"/proc/{pid}/fd"))


async def early_disconnect(port: int, mid_response: bool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if mid_response:
        writer.write(b"GET /flask/stream HTTP/1.1\r\nHost: soak\r\n\r\n")
        await writer.drain()
        await reader.read(10)
    else:
        writer.write(
            b"POST /flask/upload HTTP/1.1\r\nHost: soak\r\nContent-Length: 100000\r\n\r\nab"
        )
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def pipelined(port: int, upgrade_first: bool) -> None:
    """Eight requests in one write (the first asking for h2c when ``upgrade_first``): all
    eight answered, in order, with 200."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    one = b"GET /api/health HTTP/1.1\r\nHost: soak\r\n\r\n"
    first = one
    if upgrade_first:
        first = (
            b"GET /api/health HTTP/1.1\r\nHost: soak\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
        )
    last = b"GET /api/health HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n"
    writer.write(first + one * 6 + last)
    data = await reader.read()  # until the server closes after the last
    writer.close()
    await writer.wait_closed()
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)  # no body here contains it
    if statuses != [b"200"] * 8:
        raise RuntimeError(f"pipeline: got {statuses}")


async def websocket_session(port: int) -> None:
    async with connect(f"ws://127.0.0.1:{port}/api/ws") as ws:
        for text in ("a", "b", "c"):
            await ws.send(text)
            assert await ws.recv() == text.upper()


async def one(client: httpx.AsyncClient, port: int, kind: str, upload: bytes) -> None:
    if kind == "django":
        response = await client.get("/")
    elif kind == "flask":
        response = await client.get("/flask/")
    elif kind == "api":
        response = await client.get("/api/health")
    elif kind == "notes":
        response = await client.get("/api/notes")
    elif kind == "stream":
        response = await client.get("/flask/stream")
    elif kind == "upload":
        response = await client.post("/flask/upload", files={"file": ("f.bin", upload)})
    elif kind == "websocket":
        await websocket_session(port)
        return
    elif kind in ("pipeline", "h2c"):
        await pipelined(port, upgrade_first=kind == "h2c")
        return
    else:
        await early_disconnect(port, mid_response=kind == "drop-response")
        return
    if response.status_code != 200:
        raise RuntimeError(f"{kind}: status {response.status_code}")


MIX = (
    ["django"] * 5
    + ["flask"] * 25
    + ["api"] * 25
    + ["notes"] * 5
    + ["stream"] * 10
    + ["upload"] * 8
    + ["websocket"] * 3
    + ["drop-request"] * 2
    + ["drop-response"] * 2
    + ["pipeline"] * 2
    + ["h2c"] * 1
)


async def drive(
    port: int, pid: int, total: int, concurrency: int, mix: list[str], settle: float
) -> None:
    counts: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    samples: list[tuple[float, int, int, int]] = []
    upload = os.urandom(64 * 1024)
    started = time.monotonic()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for _ in range(total):
        queue.put_nowait(random.choice(mix))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            kind = queue.get_nowait()
            try:
                await one(client, port, kind, upload)
                counts[kind] += 1
            except Exception as exc:  # counted, never fatal
                errors[f"{kind}: {type(exc).__name__}: {exc}"[:120]] += 1

    async def sampler() -> None:
        while True:
            samples.append((time.monotonic() - started, *sample(pid)))
            await asyncio.sleep(1.0)

    sampling = asyncio.create_task(sampler())
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    await asyncio.sleep(2)  # let idle connections and threads settle
    samples.append((time.monotonic() - started, *sample(pid)))
    sampling.cancel()
    elapsed = time.monotonic() - started
    done = sum(counts.values())
    failed = sum(errors.values())
    print(f"{done} requests in {elapsed:.0f} s ({done / elapsed:.0f}/s), errors: {failed}")
    for kind, count in sorted(counts.items()):
        print(f"  {kind:<14}{count:>8}")
    for error, count in errors.most_common(10):
        print(f"  ERROR x{count}: {error}")
    # Warm-up: the first quarter of the run (thread pools, Django's and the allocator's caches
    # fill up). Growth is measured from there to the end.
    warm = samples[len(samples) // 4]
    first, last = samples[0], samples[-1]
    peak = max(s[1] for s in samples)
    print("time s   RSS KiB  threads  fds")
    step = max(len(samples) // 10, 1)
    for row in [*samples[::step], last]:
        print(f"{row[0]:>6.0f} {row[1]:>9} {row[2]:>8} {row[3]:>4}")
    growth = (last[1] - warm[1]) / warm[1] * 100
    print(f"RSS growth after warm-up (t={warm[0]:.0f}s): {growth:+.1f}% (peak {peak} KiB)")
    print(f"threads {first[2]} -> {last[2]}, fds {first[3]} -> {last[3]}")
    # Idle pool threads retire after 60 s: wait for them, to tell idle threads from stuck ones.
    waited = 0.0
    while waited < settle:
        rss, threads, fds = sample(pid)
        if threads <= first[2] and fds <= first[3] + 1:
            print(
                f"idle: back to baseline after {waited:.0f} s: {threads} threads, {fds} fds, "
                f"RSS {rss} KiB"
            )
            break
        await asyncio.sleep(1.0)
        waited += 1.0
    else:
        rss, threads, fds = sample(pid)
        print(f"idle: NOT back to baseline after {settle:.0f} s: {threads} threads, {fds} fds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--server-args",
        default="",
        help="extra arguments for the server, e.g. '--malloc-arena-max 2'",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=75.0,
        help="seconds to wait after the run for threads and fds to return to baseline",
    )
    parser.add_argument(
        "--only", help="comma-separated kinds to send instead of the full mix (to find a leak)"
    )
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, FLASK_IN_DJANGO_DB=str(Path(tmp) / "soak.sqlite3"))
        command = [
            sys.executable,
            "-m",
            "wsgi2asgi",
            "serve",
            "examples.flask_in_django.asgi:application",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            *args.server_args.split(),
        ]
        server = subprocess.Popen(command, cwd=ROOT, env=env)
        try:
            for _ in range(300):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                        break
                except OSError:
                    time.sleep(0.1)
            mix = args.only.split(",") if args.only else MIX
            asyncio.run(drive(port, server.pid, args.requests, args.concurrency, mix, args.settle))
        finally:
            server.terminate()
            server.wait(30)
        print(f"server exit status after SIGTERM: {server.returncode}")


if __name__ == "__main__":
    main()
