"""``wsgi2asgi.responses``: the package's own plain-text answers, one form in every layer."""

from __future__ import annotations

import io
from typing import Any

import pytest

from wsgi2asgi.responses import plain_body, plain_headers, send_plain, start_plain
from wsgi2asgi.typing import Message

PLAIN = (b"content-type", b"text/plain; charset=utf-8")


class Sent:
    """An ASGI ``send`` that keeps the messages."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    def answer(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        start, body = self.messages
        return start["status"], list(start["headers"]), body["body"]


def test_plain_body_is_the_reason_phrase_then_the_detail() -> None:
    assert plain_body(503) == b"Service Unavailable"
    assert plain_body(400, "invalid header") == b"Bad Request: invalid header"


def test_plain_headers_give_the_length_and_close_on_demand() -> None:
    assert plain_headers(b"abc") == [PLAIN, (b"content-length", b"3")]
    assert plain_headers(b"", close=True)[-1] == (b"connection", b"close")


async def test_send_plain_to_head_keeps_the_length_and_drops_the_body() -> None:
    send = Sent()
    await send_plain(send, 404, head=True)
    assert send.answer() == (404, [PLAIN, (b"content-length", b"9")], b"")


def test_start_plain_calls_start_response_with_native_strings() -> None:
    calls: list[Any] = []
    body = start_plain(lambda status, headers: calls.append((status, headers)), 500)
    assert body == [b"Internal Server Error"]
    assert calls == [
        (
            "500 Internal Server Error",
            [("content-type", "text/plain; charset=utf-8"), ("content-length", "21")],
        )
    ]


async def test_the_router_404_is_a_plain_answer() -> None:
    from wsgi2asgi.routing import not_found

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    send = Sent()
    await not_found({"type": "http", "method": "GET", "path": "/x"}, receive, send)
    assert send.answer() == (404, plain_headers(b"Not Found"), b"Not Found")


def test_the_server_error_response_is_a_plain_answer() -> None:
    pytest.importorskip("httptools")
    from wsgi2asgi.server.framing import error_response

    wire = error_response(431, "request header section too large")
    head, _, body = wire.partition(b"\r\n\r\n")
    assert body == plain_body(431, "request header section too large")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 431 Request Header Fields Too Large"
    for name, value in plain_headers(body, close=True):
        assert name + b": " + value in lines


async def test__unavailable_the_server_503_is_a_plain_answer() -> None:
    pytest.importorskip("httptools")
    from wsgi2asgi.server.tcp import _unavailable

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    send = Sent()
    await _unavailable({"type": "http", "method": "GET"}, receive, send)
    body = plain_body(503)
    assert send.answer() == (503, plain_headers(body, close=True), body)


def test_a_closed_asgi_to_wsgi_adapter_answers_a_plain_503() -> None:
    from wsgi2asgi.asgi import asgi_to_wsgi

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    adapter = asgi_to_wsgi(app, lifespan="off")
    adapter.close()
    calls: list[Any] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.input": io.BytesIO()}
    body = adapter(environ, lambda status, headers: calls.append((status, headers)))
    assert list(body) == [plain_body(503)]
    assert calls[0][0] == "503 Service Unavailable"
