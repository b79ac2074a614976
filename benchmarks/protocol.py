"""The protocol layer alone: per-request CPU of ours and uvicorn's, with no sockets and no wrk.

64 connections on a fake transport (writes are counted, not sent) get a keep-alive GET each,
round after round, answered by the ASGI hello app on a uvloop loop, in this one process. What
is left is each server's own Python per request: parsing, the scope, the ASGI cycle, framing,
timers. Unlike ``benchmarks/server.py`` it does not depend on the kernel or on what else the
machine runs, so it shows differences of a few microseconds that wrk's noise hides. Median of
``--rounds`` runs, microseconds per request (**less is better**)::

    python benchmarks/protocol.py --rounds 7
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.apps import asgi  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
CONNECTIONS = 64


class CountingTransport(asyncio.Transport):
    """Counts what the protocol writes; never blocks, never closes by itself."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.closing = False

    def write(self, data: Any) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


def ours() -> Any:
    from wsgi2asgi.server.config import Config
    from wsgi2asgi.server.http11 import Limits
    from wsgi2asgi.server.state import ServerState
    from wsgi2asgi.server.tcp import HTTPProtocol

    config = Config(app=asgi, access_log=False)
    state = ServerState(config=config, app=asgi, limits=Limits())
    return lambda: HTTPProtocol(state)


def uvicorn() -> Any:
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    config = Config(app=asgi, access_log=False, lifespan="off")
    config.load()
    state = ServerState()
    return lambda: HttpToolsProtocol(config=config, server_state=state, app_state={})


async def run(make: Any, requests: int) -> float:
    factory = make()
    pairs = []
    for _ in range(CONNECTIONS):
        protocol, transport = factory(), CountingTransport()
        protocol.connection_made(transport)
        pairs.append((protocol, transport))
    rounds = requests // CONNECTIONS
    start = time.perf_counter()
    for _ in range(rounds):
        before = [transport.written for _, transport in pairs]
        for protocol, _ in pairs:
            protocol.data_received(REQUEST)
        while any(t.written == b for (_, t), b in zip(pairs, before, strict=True)):
            await asyncio.sleep(0)
        await asyncio.sleep(0)  # let the cycles finish
    elapsed = time.perf_counter() - start
    for protocol, transport in pairs:
        transport.closing = True
        protocol.connection_lost(None)
    return elapsed / (rounds * CONNECTIONS) * 1e6


def main() -> None:
    import uvloop

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"wsgi2asgi": [], "uvicorn": []}
    for _ in range(args.rounds):  # interleaved
        results["wsgi2asgi"].append(uvloop.run(run(ours, args.requests)))
        results["uvicorn"].append(uvloop.run(run(uvicorn, args.requests)))
    ours_median = statistics.median(results["wsgi2asgi"])
    for name, values in results.items():
        median = statistics.median(values)
        print(
            f"{name:10} {median:6.1f} µs/request (min {min(values):.1f}), ours/this = "
            f"{ours_median / median:.2f}x"
        )


if __name__ == "__main__":
    main()
