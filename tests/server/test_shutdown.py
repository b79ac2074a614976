"""Shutdown over the real server: what runs before the process exits.

* A WSGI response's ``close()`` still running when the server is told to stop finishes before
  the server exits (#12.7): the request counts as in flight until ``close()`` returned.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from tests.server.conftest import Running

Serve = Callable[..., Running]
StartResponse = Callable[..., Any]


def stopped_within(running: Running, seconds: float) -> bool:
    """Ask the server to stop (as SIGTERM does); whether it exited within ``seconds``."""
    running.loop.call_soon_threadsafe(running.server.should_exit.set)
    running.thread.join(seconds)
    return not running.thread.is_alive()


def test_shutdown_waits_for_a_wsgi_close_still_running(serve: Serve) -> None:
    closing, release = threading.Event(), threading.Event()
    order: list[str] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"done"

        def close(self) -> None:  # a close() that takes a while: Django's request_finished
            closing.set()
            release.wait(10)
            order.append("close() returned")

    def app(environ: dict[str, Any], start_response: StartResponse) -> Body:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return Body()

    running = serve(app, lifespan="off")
    # The client has its whole response at once: close() runs after it.
    assert httpx.get(running.url, timeout=5).text == "done"
    assert closing.wait(5)
    assert not stopped_within(running, 0.3), "the server exited while close() was running"
    release.set()
    running.thread.join(10)
    assert not running.thread.is_alive()
    order.append("server exited")
    assert order == ["close() returned", "server exited"]
    assert running.status == [0]
