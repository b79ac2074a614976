"""Fixtures of the server tests; the helpers they use live in ``tests/servers.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.servers import Running, start_server


@pytest.fixture(params=["asyncio", "uvloop"])
def serve(request: pytest.FixtureRequest) -> Iterator[Callable[..., Running]]:
    """Start servers for a test; every such test runs on both event loops the server uses
    (uvloop in production when installed, asyncio otherwise)."""
    started: list[Running] = []

    def run(app: Any, **options: Any) -> Running:
        running = start_server(app, loop=request.param, **options)
        started.append(running)
        return running

    yield run
    for running in started:
        if running.thread.is_alive():
            running.stop()
