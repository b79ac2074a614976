"""Memory under hostile clients: how much a server grows when clients flood it, side by side.

Floods, each against a fresh server subprocess (ours, then uvicorn with httptools and uvloop,
the same app: ``benchmarks.apps:slow`` unless said otherwise), on loopback:

* ``pipeline``: 20 connections each send 10,000 pipelined ``GET`` requests in one write to an
  app that takes 30 s per request;
* ``ws-queue``: one WebSocket client sends 300 messages of 1 MiB to an app that accepted and
  never receives;
* ``ws-ping``: one WebSocket client sends pings as fast as it can and never reads the pongs.
* ``endless-header`` (a table of its own): one client sends ``GET`` and a header line of
  10 MiB that never ends, in 1 KiB writes, to a hello-world app (``benchmarks.apps:asgi``);
  once 1 MiB of it is out (or the server has stopped it), another client asks for 13 bytes.
  The table gives the RSS growth, how much of the line went out before the server answered
  or stopped reading, its answer, and how long the other request took. Plain TCP.
* ``never-read`` (a table of its own): 8 connections ask a WSGI app with a 4-thread pool
  (``benchmarks.apps:large``; a2wsgi's pool under uvicorn) for 64 MiB each and read nothing;
  then another client asks for 13 bytes. The table gives the RSS growth, how long that request
  took (or that it got no answer in 30 s), and how many of the 8 connections the server closed.
  Ours runs with ``--timeout-write 5`` (the default is 60 s) to keep the run short; plain TCP.

A client stops when a send makes no progress for 3 s (the server stopped reading). The table
gives the server's RSS growth (``/proc``), the median of the rounds, and what the clients got
through. Less is better; a bounded server grows by its buffers, not by what is sent. Run::

    python benchmarks/hostile.py --rounds 3
    python benchmarks/hostile.py --rounds 3 --tls    # the same over TLS (trustme certificate)
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the tests' loopback helpers

from tests.loopback import websocket_frame, websocket_upgrade  # noqa: E402

PY = sys.executable
APP = "benchmarks.apps:slow"
SERVERS = {
    "wsgi2asgi": [PY, "-m", "wsgi2asgi", "serve", APP, "--no-access-log", "--port", "{port}"],
    "uvicorn": [
        *(PY, "-m", "uvicorn", APP, "--no-access-log", "--port", "{port}"),
        *("--loop", "uvloop", "--http", "httptools", "--ws", "websockets"),
    ],
}


def free_port() -> int:
    """A port free right now (benchmarks run one server at a time; tests never guess ports)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: The never-read flood's servers: the same WSGI app and thread count on both.
NEVER_READ = {
    "wsgi2asgi": [
        *(PY, "-m", "wsgi2asgi", "serve", "benchmarks.apps:large", "--no-access-log"),
        *("--threads", "4", "--timeout-write", "5", "--port", "{port}"),
    ],
    "uvicorn": [
        *(PY, "-m", "uvicorn", "benchmarks.apps:a2wsgi_large", "--no-access-log"),
        *("--port", "{port}", "--loop", "uvloop", "--http", "httptools"),
    ],
}


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def send_until_stuck(sock: socket.socket, data: bytes, limit: int) -> int:
    """Send ``data`` repeatedly, up to ``limit`` bytes; stop when the peer stops reading."""
    sock.settimeout(3)
    view, sent = memoryview(data), 0
    while sent < limit:
        offset = 0
        while offset < len(view):
            try:
                offset += sock.send(view[offset:])
            except (TimeoutError, OSError):
                return sent + offset
        sent += len(view)
    return sent


#: With --tls: the client side's context, and the server's --ssl-keyfile/--ssl-certfile flags.
TLS: tuple[ssl.SSLContext, list[str]] | None = None


def connect(port: int, timeout: float | None = None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return TLS[0].wrap_socket(sock, server_hostname="127.0.0.1") if TLS else sock


def use_tls(directory: str) -> None:
    """Make a throwaway certificate authority and a certificate for 127.0.0.1 (trustme)."""
    global TLS
    import trustme

    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    key, cert = os.path.join(directory, "key.pem"), os.path.join(directory, "cert.pem")
    certificate.private_key_pem.write_to_path(key)
    certificate.cert_chain_pems[0].write_to_path(cert)
    context = ssl.create_default_context()
    authority.configure_trust(context)
    TLS = (context, ["--ssl-keyfile", key, "--ssl-certfile", cert])


def websocket(port: int, path: bytes) -> socket.socket:
    sock = connect(port, timeout=10)
    sock.sendall(websocket_upgrade(path))
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head[:80])
    return sock


def pipeline(port: int, keep: list[socket.socket]) -> int:
    data = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 10_000
    sent = 0
    for _ in range(20):
        sock = connect(port)
        keep.append(sock)
        sent += send_until_stuck(sock, data, len(data))
    return sent


def ws_queue(port: int, keep: list[socket.socket]) -> int:
    sock = websocket(port, b"/sleep")
    keep.append(sock)
    return send_until_stuck(sock, websocket_frame(0x2, b"m" * (1 << 20)), 300 * ((1 << 20) + 14))


def ws_ping(port: int, keep: list[socket.socket]) -> int:
    sock = websocket(port, b"/read")
    keep.append(sock)
    return send_until_stuck(sock, websocket_frame(0x9, b"p" * 125) * 512, 256 << 20)


CASES: dict[str, Callable[[int, list[socket.socket]], int]] = {
    "pipeline": pipeline,
    "ws-queue": ws_queue,
    "ws-ping": ws_ping,
}


#: The endless-header flood's servers: an app that answers at once, so that another client's
#: request shows how long the flood holds the event loop.
ENDLESS = {
    "wsgi2asgi": [
        *(PY, "-m", "wsgi2asgi", "serve", "benchmarks.apps:asgi", "--no-access-log"),
        *("--port", "{port}"),
    ],
    "uvicorn": [
        *(PY, "-m", "uvicorn", "benchmarks.apps:asgi", "--no-access-log", "--port", "{port}"),
        *("--loop", "uvloop", "--http", "httptools"),
    ],
}


def endless_header(server: str) -> tuple[float, float, str, float | None]:
    """(RSS growth in MiB, MiB of the line sent, the flood's answer, seconds another request
    took or None) for the endless-header flood on a fresh server."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in ENDLESS[server]]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.5)
        before = rss_kib(process.pid)
        flood = socket.create_connection(("127.0.0.1", port))
        flood.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        flood.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ")
        state = {"sent": 0}
        one_mib = threading.Event()

        def stream() -> None:
            piece = b"b" * 1024
            while state["sent"] < 10 << 20:
                if send_until_stuck(flood, piece, len(piece)) < len(piece):
                    break  # answered and closed, or no longer read
                state["sent"] += len(piece)
                if state["sent"] >= 1 << 20:
                    one_mib.set()
            one_mib.set()

        streamer = threading.Thread(target=stream, daemon=True)
        streamer.start()
        one_mib.wait(60)
        took = timed_get(port)
        streamer.join(120)
        after = rss_kib(process.pid)
        flood.settimeout(5)
        try:
            answer = flood.recv(4096).split(b"\r\n", 1)[0].decode() or "closed"
        except OSError:
            answer = "none in 5 s"
        flood.close()
        return (after - before) / 1024, state["sent"] / (1 << 20), answer, took
    finally:
        process.kill()
        process.wait()


def timed_get(port: int) -> float | None:
    """Seconds a plain GET takes on a new connection, or None if unanswered in 30 s."""
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            if not sock.recv(4096).startswith(b"HTTP/1.1 200"):
                return None
    except OSError:
        return None
    return time.monotonic() - start


def endless_header_table(rounds: int) -> None:
    print()
    print(
        "| flood | server | RSS growth, MiB (median) | line sent, MiB | answer "
        "| another request answered in |"
    )
    print("| --- | --- | ---: | ---: | --- | ---: |")
    for server in ENDLESS:
        runs = [endless_header(server) for _ in range(rounds)]
        growth = statistics.median(r[0] for r in runs)
        sent = statistics.median(r[1] for r in runs)
        answers = ", ".join(sorted({r[2] for r in runs}))
        took = [r[3] for r in runs if r[3] is not None]
        took_text = f"{statistics.median(took):.2f} s" if took else "no answer in 30 s"
        row = (
            f"| endless-header | {server} | {growth:,.1f} | {sent:,.1f} | {answers} | {took_text} |"
        )
        print(row, flush=True)


def run_one(server: str, case: str) -> tuple[float, float]:
    """(RSS growth in MiB, MiB the clients got through) for one flood on a fresh server."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in SERVERS[server]]
    command += TLS[1] if TLS else []
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    keep: list[socket.socket] = []
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.5)
        before = rss_kib(process.pid)
        sent = CASES[case](port, keep)
        time.sleep(1.0)  # let the server process what it read
        after = rss_kib(process.pid)
        return (after - before) / 1024, sent / (1 << 20)
    finally:
        for sock in keep:
            sock.close()
        process.kill()
        process.wait()


def never_read(server: str) -> tuple[float, float | None, int]:
    """(RSS growth in MiB, seconds until another request was answered or None, connections of
    the flood the server closed) for the never-read flood on a fresh server."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in NEVER_READ[server]]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    flood: list[socket.socket] = []
    try:
        wait_listening(port)
        before = rss_kib(process.pid)
        for _ in range(8):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.sendall(b"GET /large HTTP/1.1\r\nHost: a\r\n\r\n")
            flood.append(sock)
        time.sleep(1.0)  # the responses fill the buffers, the pool's threads block
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as probe:
            probe.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            try:
                answered = probe.recv(4096).startswith(b"HTTP/1.1 200")
            except TimeoutError:
                answered = False
        took = time.monotonic() - started if answered else None
        after = rss_kib(process.pid)
        return (after - before) / 1024, took, sum(closed_by_peer(sock) for sock in flood)
    finally:
        for sock in flood:
            sock.close()
        process.kill()
        process.wait()


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the server closed (or reset) the connection: TCP_INFO's state, unread data or not."""
    state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    return state not in (1,)  # TCP_ESTABLISHED


def wait_listening(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    time.sleep(0.5)


def never_read_table(rounds: int) -> None:
    print()
    print("| flood | server | RSS growth, MiB (median) | another request answered in | closed |")
    print("| --- | --- | ---: | ---: | ---: |")
    for server in NEVER_READ:
        runs = [never_read(server) for _ in range(rounds)]
        growth = statistics.median(r[0] for r in runs)
        answered = [r[1] for r in runs if r[1] is not None]
        took = f"{statistics.median(answered):.1f} s" if answered else "no answer in 30 s"
        if answered and len(answered) < len(runs):
            took += f" ({len(runs) - len(answered)} of {len(runs)} rounds: none)"
        closed = statistics.median(r[2] for r in runs)
        print(f"| never-read | {server} | {growth:,.1f} | {took} | {closed:g} of 8 |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default=",".join([*CASES, "never-read", "endless-header"]))
    parser.add_argument("--tls", action="store_true", help="serve and flood over TLS")
    args = parser.parse_args()
    if args.tls:
        use_tls(tempfile.mkdtemp())
    print("| flood | server | RSS growth, MiB (median) | client got through, MiB |")
    print("| --- | --- | ---: | ---: |")
    for case in args.cases.split(","):
        if case == "endless-header":
            continue  # a table of its own, below
        if case == "never-read":
            continue  # a table of its own, below
        for server in SERVERS:
            runs = [run_one(server, case) for _ in range(args.rounds)]
            growth = statistics.median(r[0] for r in runs)
            sent = statistics.median(r[1] for r in runs)
            print(f"| {case} | {server} | {growth:,.1f} | {sent:,.1f} |", flush=True)
    if "never-read" in args.cases.split(","):
        never_read_table(args.rounds)  # plain TCP, also with --tls
    if "endless-header" in args.cases.split(","):
        endless_header_table(args.rounds)  # plain TCP, also with --tls


if __name__ == "__main__":
    main()
