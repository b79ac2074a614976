"""One request/response cycle with a fake connection: no sockets, the states driven by hand.

The connection side (``feed_body``, ``end_body``, ``lost``) is driven as ``tcp.py`` would;
the app side (``receive``, ``send``, ``run``) as an ASGI app would.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from wsgi2asgi.exceptions import ASGIContractError, ClientDisconnected, InternalError
from wsgi2asgi.server.cycle import HTTPCycle, RequestState, ResponseState
from wsgi2asgi.server.framing import ServerHeaders
from wsgi2asgi.server.http11 import Limits, Request, RequestParser

POST = b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"


class FakeConnection:
    """What a cycle needs from its connection (``cycle.Connection``), recorded in memory."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.write_paused = False
        self.closing = False
        self.access_log = False
        self.server_headers = ServerHeaders(server=None)
        self.written = bytearray()
        self.reading = True
        self.closed = False
        self.finished_cycles: list[HTTPCycle] = []  # each cycle.run() tells its connection

    def write(self, data: bytes) -> bool:
        if self.closed:
            return False
        self.written += data
        return True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closing = self.closed = True

    def gone(self) -> bool:
        return self.closed

    def flush_later(self, cycle: HTTPCycle) -> None:
        asyncio.get_running_loop().call_soon(cycle.flush_head)

    def finished(self, cycle: HTTPCycle) -> None:
        self.finished_cycles.append(cycle)


def request(head: bytes) -> Request:
    """The real parser's ``Request`` for a head (no body fed)."""
    event = RequestParser(Limits()).feed(head + b"\r\n")[0]
    assert isinstance(event, Request)
    return event


def new_cycle(head: bytes = POST) -> tuple[HTTPCycle, FakeConnection]:
    connection = FakeConnection()
    scope: dict[str, Any] = {"type": "http", "client": ("127.0.0.1", 5000)}
    return HTTPCycle(connection, request(head), scope), connection


async def test_request_states_follow_the_body_to_the_disconnect() -> None:
    cycle, connection = new_cycle(POST + b"Expect: 100-continue\r\n")
    assert cycle.request_state is RequestState.EXPECTING
    first = asyncio.ensure_future(cycle.receive())
    await asyncio.sleep(0)  # one loop turn: receive() runs to its wait for the body
    assert connection.written == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert cycle.request_state is RequestState.RECEIVING
    cycle.feed_body(b"hel")
    assert await first == {"type": "http.request", "body": b"hel", "more_body": True}
    cycle.feed_body(b"lo")
    cycle.end_body()
    assert cycle.request_state is RequestState.RECEIVED
    assert await cycle.receive() == {"type": "http.request", "body": b"lo", "more_body": False}
    assert cycle.request_state is RequestState.DELIVERED
    # ASGI: after the body, receive() waits for the end of the response.
    last = asyncio.ensure_future(cycle.receive())
    await cycle.send({"type": "http.response.start", "status": 204})
    await cycle.send({"type": "http.response.body"})
    assert await last == {"type": "http.disconnect"}


async def test_a_body_arriving_unasked_ends_the_wait_for_100_continue() -> None:
    # RFC 9110 §10.1.1: a server MAY omit 100 once it has received some of the content.
    cycle, connection = new_cycle(POST + b"Expect: 100-continue\r\n")
    cycle.feed_body(b"hello")
    assert cycle.request_state is RequestState.RECEIVING
    cycle.end_body()
    assert await cycle.receive() == {"type": "http.request", "body": b"hello", "more_body": False}
    assert connection.written == b""


async def test_response_states_from_start_to_complete() -> None:
    cycle, connection = new_cycle(b"GET / HTTP/1.1\r\nHost: a\r\n")
    assert cycle.response_state is ResponseState.IDLE
    await cycle.send({"type": "http.response.start", "status": 200, "headers": []})
    assert cycle.response_state is ResponseState.STARTED and connection.written == b""
    await cycle.send({"type": "http.response.body", "body": b"abc", "more_body": True})
    assert cycle.response_state is ResponseState.STREAMING
    assert connection.written.startswith(b"HTTP/1.1 200 OK\r\n")
    assert connection.written.endswith(b"\r\n\r\n3\r\nabc\r\n")  # head and chunk: one write
    await cycle.send({"type": "http.response.body", "body": b""})
    assert cycle.response_state is ResponseState.COMPLETE
    assert connection.written.endswith(b"0\r\n\r\n")
    await cycle.send({"type": "http.response.body", "body": b"late"})  # ignored (ASGI)
    assert not connection.written.endswith(b"late")


async def test_a_started_head_goes_out_alone_on_the_next_loop_turn() -> None:
    cycle, connection = new_cycle(b"GET / HTTP/1.1\r\nHost: a\r\n")
    await cycle.send({"type": "http.response.start", "status": 200})
    await asyncio.sleep(0)  # the loop's next turn: the head is flushed without a body
    assert cycle.response_state is ResponseState.STREAMING
    assert connection.written.endswith(b"\r\n\r\n")


async def test_a_failure_before_any_byte_takes_the_start_back_for_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cycle, connection = new_cycle(b"GET / HTTP/1.1\r\nHost: a\r\n")
    seen: list[ResponseState] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        seen.append(cycle.response_state)
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="wsgi2asgi.error"):
        await cycle.run(app)
    assert seen == [ResponseState.STARTED]
    assert cycle.response_state is ResponseState.COMPLETE and cycle.status == 500
    assert connection.written.startswith(b"HTTP/1.1 500 ")
    assert not cycle.reusable()


async def test_a_lost_client_ends_both_sides() -> None:
    cycle, connection = new_cycle()
    waiting = asyncio.ensure_future(cycle.receive())
    await asyncio.sleep(0)
    cycle.lost()
    assert cycle.request_state is RequestState.DISCONNECTED
    assert await waiting == {"type": "http.disconnect"}
    with pytest.raises(ClientDisconnected):
        await cycle.send({"type": "http.response.start", "status": 200})
    cycle.lost()  # connection_lost() after a reject: still disconnected, no error
    assert cycle.request_state is RequestState.DISCONNECTED


async def test_reusable_only_when_both_sides_ended_cleanly() -> None:
    cycle, _ = new_cycle()
    await cycle.send({"type": "http.response.start", "status": 204})
    await cycle.send({"type": "http.response.body"})
    assert not cycle.reusable()  # the request body never ended: its rest is on the wire
    cycle.end_body()
    assert cycle.reusable()
    cycle.close_after()
    assert not cycle.reusable()


async def test_app_mistakes_are_contract_errors_not_moves() -> None:
    cycle, _ = new_cycle()
    with pytest.raises(ASGIContractError):
        await cycle.send({"type": "http.response.body", "body": b"x"})
    assert cycle.response_state is ResponseState.IDLE
    await cycle.send({"type": "http.response.start", "status": 200})
    with pytest.raises(ASGIContractError, match="twice"):
        await cycle.send({"type": "http.response.start", "status": 200})


@pytest.mark.parametrize(
    "headers",
    [[(b"x", b"a\r\nevil: 1")], [(b"content-length", b"1"), (b"content-length", b"1")]],
)
async def test_an_invalid_response_head_is_a_contract_error(
    headers: list[tuple[bytes, bytes]],
) -> None:
    cycle, connection = new_cycle()
    with pytest.raises(ASGIContractError):
        await cycle.send({"type": "http.response.start", "status": 200, "headers": headers})
    with pytest.raises(ASGIContractError):
        await cycle.send({"type": "http.response.start", "status": 1000})
    assert cycle.response_state is ResponseState.IDLE and connection.written == b""


async def test_a_body_longer_than_its_content_length_is_logged_as_a_contract_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cycle, _ = new_cycle()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"abc"})

    with caplog.at_level(logging.ERROR, logger="wsgi2asgi.error"):
        await cycle.run(app)
    errors = [r.exc_info[1] for r in caplog.records if r.exc_info is not None]
    assert len(errors) == 1 and isinstance(errors[0], ASGIContractError)


async def test_an_illegal_move_is_refused_as_an_internal_error() -> None:
    # The connection feeds a cycle; feeding it after its body ended is a bug in the server.
    cycle, _ = new_cycle()
    cycle.end_body()
    with pytest.raises(InternalError, match="RECEIVED to RECEIVING"):
        cycle.feed_body(b"more")
    with pytest.raises(InternalError, match="RECEIVED to RECEIVED"):
        cycle.end_body()
    assert cycle.request_state is RequestState.RECEIVED


async def test_a_body_piece_received_whole_reaches_the_app_uncopied() -> None:
    # #17: an upload's bytes pass the cycle as they came from the parser (before: appended to
    # a bytearray and copied out again, two copies of every byte); pieces that pile up while
    # the app is not receiving are joined, once.
    cycle, _ = new_cycle(POST.replace(b"5", b"10"))
    piece = b"hello"
    cycle.feed_body(piece)
    message = await cycle.receive()
    assert message["body"] is piece and message["more_body"] is True
    cycle.feed_body(b"wor")
    cycle.feed_body(b"ld")
    cycle.end_body()
    assert await cycle.receive() == {"type": "http.request", "body": b"world", "more_body": False}


async def test_a_request_without_a_body_starts_whole() -> None:
    # RFC 9112 §6.3: no Content-Length, no Transfer-Encoding: no body. The connection feeds
    # such a cycle nothing (no end_body), and the app reads an empty body at once.
    cycle, connection = new_cycle(b"GET / HTTP/1.1\r\nHost: a\r\n")
    assert cycle.request_state is RequestState.RECEIVED
    message = await cycle.receive()
    assert message == {"type": "http.request", "body": b"", "more_body": False}
    assert connection.reading


@pytest.mark.parametrize("fails", [False, True])
async def test_run_tells_the_connection_once_it_is_over(
    fails: bool, caplog: pytest.LogCaptureFixture
) -> None:
    cycle, connection = new_cycle(b"GET / HTTP/1.1\r\nHost: a\r\n")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert connection.finished_cycles == []
        if fails:
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    with caplog.at_level(logging.ERROR, logger="wsgi2asgi.error"):
        await cycle.run(app)
    assert connection.finished_cycles == [cycle]
    assert cycle.response_state is ResponseState.COMPLETE


async def test_a_write_to_a_gone_connection_is_a_disconnect() -> None:
    cycle, connection = new_cycle(b"GET / HTTP/1.1\r\nHost: a\r\n")
    await cycle.send({"type": "http.response.start", "status": 200})
    connection.closed = True  # the transport closed; connection_lost() has not run yet
    with pytest.raises(ClientDisconnected):
        await cycle.send({"type": "http.response.body", "body": b"x", "more_body": True})
    assert cycle.request_state is RequestState.DISCONNECTED
