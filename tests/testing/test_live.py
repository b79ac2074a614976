"""``wsgi2asgi.testing.live``: ``LiveServer``, the app under our server on a loopback socket."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.apps.testing_site import site
from wsgi2asgi.exceptions import LifespanFailed
from wsgi2asgi.testing import LiveServer


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_live_server_serves_the_composite_on_a_real_socket_and_stops_cleanly(loop: Any) -> None:
    log: list[str] = []
    server = LiveServer(site(log), loop=loop)
    with server:
        assert log == ["start api", "start root"]
        with httpx.Client(base_url=server.url) as client:
            assert [client.get("/flask/visits").text for _ in range(2)] == ["1", "2"]
            assert client.get("/api/where").json()["url"] == f"{server.url}/api/where"
    assert server.status == 0
    assert log == ["start api", "start root", "stop root", "stop api"]
    with pytest.raises(ConnectionRefusedError):  # the port is closed, not left half-open
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def test_live_server_startup_failure_is_raised() -> None:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield

    with pytest.raises(LifespanFailed, match="exit status 3"):
        LiveServer(Starlette(lifespan=lifespan), lifespan="on").start()
