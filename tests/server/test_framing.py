"""The sans-I/O response framing: no sockets, response parts in and bytes out."""

from __future__ import annotations

import pytest

from wsgi2asgi.exceptions import ASGIContractError
from wsgi2asgi.server import framing as framing_module
from wsgi2asgi.server.framing import ResponseFraming


def test_response_framing_chunked_for_http11_without_length() -> None:
    framing = ResponseFraming("GET", "1.1", True)
    head = framing.head(200, [(b"content-type", b"text/plain")])
    assert b"transfer-encoding: chunked" in head
    assert framing.body(b"abc") == b"3\r\nabc\r\n"
    assert framing.end() == b"0\r\n\r\n"


def test_response_framing_http10_is_close_delimited() -> None:
    framing = ResponseFraming("GET", "1.0", True)
    head = framing.head(200, [])
    assert b"connection: close" in head and b"chunked" not in head
    assert framing.body(b"abc") == b"abc"


def test_response_framing_content_length_enforced() -> None:
    framing = ResponseFraming("GET", "1.1", True)
    framing.head(200, [(b"content-length", b"3")])
    with pytest.raises(ASGIContractError):
        framing.body(b"abcd")
    short = ResponseFraming("GET", "1.1", True)
    short.head(200, [(b"content-length", b"3")])
    short.body(b"ab")
    with pytest.raises(ASGIContractError):
        short.end()


def test_response_framing_head_and_204_have_no_body() -> None:
    head_request = ResponseFraming("HEAD", "1.1", True)
    head_request.head(200, [(b"content-length", b"10")])
    assert head_request.body(b"0123456789") == b"" and head_request.end() == b""
    no_content = ResponseFraming("GET", "1.1", True)
    assert b"chunked" not in no_content.head(204, [])


@pytest.mark.parametrize(
    "headers", [[(b"x", b"a\r\nb")], [(b"bad name", b"v")], [(b"x", b"a\x00")]]
)
def test_response_header_injection_is_refused(headers: list[tuple[bytes, bytes]]) -> None:
    # The same mistake as under asgi_to_wsgi, the same error: ASGIContractError.
    with pytest.raises(ASGIContractError):
        ResponseFraming("GET", "1.1", True).head(200, headers)


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (200, b"HTTP/1.1 200 OK\r\n"),
        (404, b"HTTP/1.1 404 Not Found\r\n"),
        (299, b"HTTP/1.1 299 \r\n"),
    ],
)
def test_status_line_has_the_registered_reason_or_none(status: int, line: bytes) -> None:
    assert ResponseFraming("GET", "1.1", True).head(status, []).startswith(line)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-length", b"1"), (b"content-length", b"1")],
        [(b"content-length", b"one")],
        [(b"content-length", b"-1")],
    ],
)
def test_a_bad_content_length_is_an_app_mistake(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(ASGIContractError):
        ResponseFraming("GET", "1.1", True).head(200, headers)


@pytest.mark.parametrize("status", [0, 99, 1000])
def test_a_status_out_of_range_is_an_app_mistake(status: int) -> None:
    with pytest.raises(ASGIContractError, match="invalid status"):
        ResponseFraming("GET", "1.1", True).head(status, [])


# -- response headers read once and remembered (#17) ---------------------------------------


def test_a_repeated_head_is_the_same_whatever_form_its_headers_take() -> None:
    headers = [(b"Content-Type", b"text/plain"), (b"content-length", b"3")]
    first = ResponseFraming("GET", "1.1", True).head(200, headers)
    again = ResponseFraming("GET", "1.1", True).head(200, headers)
    as_lists = ResponseFraming("GET", "1.1", True).head(200, [list(h) for h in headers])
    as_buffers = ResponseFraming("GET", "1.1", True).head(
        200, [(bytearray(n), memoryview(v)) for n, v in headers]
    )
    assert first == again == as_lists == as_buffers
    assert b"Content-Type: text/plain\r\ncontent-length: 3\r\n" in first


def test_an_invalid_header_is_refused_every_time_it_comes() -> None:
    for _ in range(3):
        with pytest.raises(ASGIContractError):
            ResponseFraming("GET", "1.1", True).head(200, [(b"x", b"a\r\nevil: 1")])


def test_the_remembered_headers_are_bounded() -> None:
    for number in range(framing_module._MAX_FIELDS * 3):
        ResponseFraming("GET", "1.1", True).head(200, [(b"x-id", b"%d" % number)])
    assert len(framing_module._FIELDS) <= framing_module._MAX_FIELDS
    long_value = b"v" * (framing_module._MAX_FIELD_LINE + 1)
    ResponseFraming("GET", "1.1", True).head(200, [(b"x-long", long_value)])
    assert (b"x-long", long_value) not in framing_module._FIELDS


@pytest.mark.parametrize(
    ("headers", "body", "wire"),
    [
        ([(b"content-length", b"3")], b"abc", b"abc"),
        ([], b"abc", b"3\r\nabc\r\n0\r\n\r\n"),
        ([], b"", b"0\r\n\r\n"),
    ],
)
def test_last_is_body_and_end_in_one(
    headers: list[tuple[bytes, bytes]], body: bytes, wire: bytes
) -> None:
    framing = ResponseFraming("GET", "1.1", True)
    framing.head(200, headers)
    assert framing.last(body) == wire


@pytest.mark.parametrize(("body", "word"), [(b"ab", "shorter"), (b"abcd", "longer")])
def test_last_holds_the_body_to_its_content_length(body: bytes, word: str) -> None:
    framing = ResponseFraming("GET", "1.1", True)
    framing.head(200, [(b"content-length", b"3")])
    with pytest.raises(ASGIContractError, match=word):
        framing.last(body)
