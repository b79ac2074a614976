"""One asgi_to_wsgi request through its seams: an Exchange with a plain adapter, no ASGIAdapter."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from wsgi2asgi.exchange import Exchange
from wsgi2asgi.runners import Runner


class PlainAdapter:
    """What an exchange needs of its adapter (``exchange.Adapter``), and nothing more."""

    disconnect_grace = 1.0

    def __init__(self) -> None:
        self.in_progress: set[Exchange] = set()
        self.seen: list[Exchange] = []

    def track(self, exchange: Exchange) -> None:
        self.in_progress.add(exchange)
        self.seen.append(exchange)

    def untrack(self, exchange: Exchange) -> None:
        self.in_progress.discard(exchange)


async def echo(scope: Any, receive: Any, send: Any) -> None:
    message = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})
    await send({"type": "http.response.body", "body": message["body"].upper()})


@pytest.fixture
def runner() -> Iterator[Runner]:
    runner = Runner("test-exchange", stop_timeout=1.0)
    yield runner
    runner.close()


def test_an_exchange_runs_with_any_adapter_and_loop_thread(runner: Runner) -> None:
    adapter = PlainAdapter()
    environ = {"wsgi.input": io.BytesIO(b"abc")}
    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, headers))

    response = Exchange(adapter, runner, echo, scope, environ, 3).respond(start_response)
    body = b"".join(response)
    close = getattr(response, "close", None)
    if close is not None:
        close()
    assert started == [("200 OK", [("x-a", "1")])] and body == b"ABC"
    assert len(adapter.seen) == 1 and not adapter.in_progress  # tracked, then untracked
