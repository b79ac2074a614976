"""Streaming through a WSGI app, side by side: 512 MiB up and 512 MiB down, time and memory.

One WSGI app (this module's ``app``) reads an upload in 64 KiB ``wsgi.input.read`` calls, and
yields a download in 64 KiB chunks (with a ``Content-Length``); every server runs it as a
subprocess on loopback: ours (``wsgi2asgi serve``), granian's WSGI interface, uvicorn with
a2wsgi (httptools, uvloop) and gunicorn gthread. The client is a plain socket in this process
that sends from, and reads into, one reused 1 MiB buffer (it costs little next to the server).

Rounds go round the servers, each server fresh per case. The table gives the median seconds
per transfer (**less is better**), the ratio ours ÷ peer (**< 1 means ours is faster**) and
the peak RSS growth of the server during the transfer (``VmHWM`` after the transfer, reset
through ``/proc/PID/clear_refs`` before it, minus ``VmRSS`` before it; the largest over the
server's processes: granian and gunicorn serve from a child process). Run::

    python benchmarks/streaming.py                      # 3 rounds, 512 MiB
    python benchmarks/streaming.py --rounds 5 --mib 256 --servers wsgi2asgi,granian
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CHUNK = 64 * 1024
_BLOCK = b"x" * CHUNK


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``POST /upload``: read the body in 64 KiB reads, answer its size. ``GET /download?N``:
    N bytes (a multiple of 64 KiB) in 64 KiB chunks."""
    if environ["PATH_INFO"] == "/upload":
        stream, size = environ["wsgi.input"], 0
        while chunk := stream.read(CHUNK):
            size += len(chunk)
        body = str(size).encode()
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]
    total = int(environ["QUERY_STRING"] or CHUNK)
    start_response(
        "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(total))]
    )
    return (_BLOCK for _ in range(total // CHUNK))


def _a2wsgi() -> Any:
    try:
        from a2wsgi import WSGIMiddleware
    except ImportError:  # only the uvicorn peer needs it
        return None
    return WSGIMiddleware(app)


#: ``app`` under a2wsgi, for uvicorn.
a2wsgi_app = _a2wsgi()

_APP = "benchmarks.streaming:app"
SERVERS: dict[str, list[str]] = {
    "wsgi2asgi": [
        *(PY, "-m", "wsgi2asgi", "serve", _APP, "--port", "{port}"),
        *("--no-access-log", "--log-level", "warning"),
    ],
    "granian": [
        *(PY, "-m", "granian", "--interface", "wsgi", "--port", "{port}"),
        *("--log-level", "warning", _APP),
    ],
    "uvicorn+a2wsgi": [
        *(PY, "-m", "uvicorn", "benchmarks.streaming:a2wsgi_app", "--port", "{port}"),
        *("--no-access-log", "--log-level", "warning", "--loop", "uvloop", "--http", "httptools"),
    ],
    "gunicorn": [
        *(PY, "-m", "gunicorn", "-k", "gthread", "--threads", "8", "-w", "1"),
        *("-b", "127.0.0.1:{port}", "--log-level", "warning", _APP),
    ],
}


def free_port() -> int:
    """A port free right now (one server per case; benchmarks never share ports)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (granian and gunicorn serve from children)."""
    pids, index = [pid], 0
    while index < len(pids):
        try:
            with open(f"/proc/{pids[index]}/task/{pids[index]}/children") as file:
                pids += [int(child) for child in file.read().split()]
        except OSError:
            pass
        index += 1
    return pids


def _status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Memory:
    """Peak RSS growth of a process tree across a block: reset the peaks, read them after."""

    def __init__(self, pid: int) -> None:
        self.pids = _tree(pid)
        self.before: dict[int, int] = {}

    def start(self) -> None:
        for pid in self.pids:
            with open(f"/proc/{pid}/clear_refs", "w") as file:
                file.write("5")  # reset VmHWM to the current RSS
            self.before[pid] = _status(pid, "VmRSS")

    def growth_mib(self) -> float:
        return max(_status(pid, "VmHWM") - self.before[pid] for pid in self.pids) / 1024


def _response(sock: socket.socket, buffer: memoryview) -> int:
    """Read one response; return its body size (Content-Length bodies only)."""
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        head += data
    head, _, rest = head.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected response: {head[:80]!r}")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    got = len(rest)
    while got < length:
        n = sock.recv_into(buffer, min(len(buffer), length - got))
        if not n:
            raise ConnectionError("the server closed the connection mid-body")
        got += n
    return length


def upload(sock: socket.socket, size: int, buffer: memoryview) -> None:
    sock.sendall(
        b"POST /upload HTTP/1.1\r\nHost: bench\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: %d\r\n\r\n" % size
    )
    sent = 0
    while sent < size:
        sent += sock.send(buffer[: min(len(buffer), size - sent)])
    _response(sock, buffer)


def download(sock: socket.socket, size: int, buffer: memoryview) -> None:
    sock.sendall(b"GET /download?%d HTTP/1.1\r\nHost: bench\r\n\r\n" % size)
    if _response(sock, buffer) != size:
        raise RuntimeError("short download")


CASES = {"upload": upload, "download": download}


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def measure(command: list[str], case: str, size: int) -> tuple[float, float]:
    """One fresh server, one warm-up transfer of 8 MiB, then the timed one: (seconds, MiB)."""
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in command]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    buffer = memoryview(bytearray(1024 * 1024))
    try:
        _wait_ready(port, process)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            CASES[case](sock, 8 * 1024 * 1024, buffer)
            memory = Memory(process.pid)
            memory.start()
            began = time.perf_counter()
            CASES[case](sock, size, buffer)
            elapsed = time.perf_counter() - began
            return elapsed, memory.growth_mib()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    servers = args.servers.split(",")
    size = args.mib * 1024 * 1024
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.mib} MiB per transfer")
    print(f"{args.rounds} rounds, servers interleaved; median seconds, peak RSS growth (MiB)")
    for case in args.cases.split(","):
        times: dict[str, list[float]] = {name: [] for name in servers}
        growth: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(args.rounds):
            for name in servers:
                seconds, mib = measure(SERVERS[name], case, size)
                times[name].append(seconds)
                growth[name].append(mib)
        ours = statistics.median(times["wsgi2asgi"]) if "wsgi2asgi" in times else None
        print(f"\n{case}")
        for name in servers:
            median = statistics.median(times[name])
            ratio = (
                ""
                if ours is None or name == "wsgi2asgi"
                else f"   ours/{name} {ours / median:.2f}x"
            )
            print(
                f"  {name:<16}{median:7.2f} s  (min {min(times[name]):.2f})"
                f"  +{max(growth[name]):5.1f} MiB peak{ratio}",
                flush=True,
            )


if __name__ == "__main__":
    main()
