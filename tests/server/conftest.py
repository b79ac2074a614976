"""Fixtures of the server tests; the helpers they use live in ``tests/servers.py``.

Two ways to start servers, by what the test checks:

* ``serve``: on each event loop the server runs on (uvloop in production when installed,
  asyncio otherwise), so the test runs twice. For what the loop can change: timers and
  deadlines, transports (closing, aborting, a client leaving), flow control (pausing reading
  or writing), shutdown, TLS, WebSockets.
* ``serve_one_loop``: on asyncio only, so the test runs once. For what the loop cannot change:
  parsing, the scope the app gets, the format of a response. (What the parser alone decides
  needs no server at all: ``tests/server/test_http11.py``.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.servers import Running, servers


@pytest.fixture(params=["asyncio", "uvloop"])
def serve(request: pytest.FixtureRequest) -> Iterator[Callable[..., Running]]:
    """Start servers for a test, which runs on each event loop (a loop-sensitive test)."""
    with servers(request.param) as run:
        yield run


@pytest.fixture
def serve_one_loop() -> Iterator[Callable[..., Running]]:
    """Start servers for a test, which runs once, on asyncio (the loop changes nothing)."""
    with servers("asyncio") as run:
        yield run
