"""The sans-I/O HTTP/1.1 request parser: no sockets, just bytes in and events out."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsgi2asgi.exceptions import InternalError, ProtocolError
from wsgi2asgi.headers import valid_name
from wsgi2asgi.server.http11 import (
    Body,
    EndOfMessage,
    Event,
    Limits,
    ParserState,
    Request,
    RequestParser,
)

GOOD = b"POST /a%20b?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"


def test_request_events_in_order() -> None:
    events = RequestParser(Limits()).feed(GOOD)
    assert isinstance(events[0], Request)
    request = events[0]
    assert (request.method, request.path, request.query) == ("POST", b"/a%20b", b"x=1")
    assert request.headers == [(b"host", b"h"), (b"content-length", b"5")]
    assert request.keep_alive and request.content_length == 5
    assert events[1:] == [Body(b"hello"), EndOfMessage()]


def test_byte_by_byte_feeding_gives_the_same_request() -> None:
    parser = RequestParser(Limits())
    events = []
    for byte in GOOD:
        events += parser.feed(bytes([byte]))
    assert isinstance(events[0], Request)
    assert b"".join(e.data for e in events if isinstance(e, Body)) == b"hello"
    assert isinstance(events[-1], EndOfMessage)


def test_pipelined_requests_in_one_feed() -> None:
    events = RequestParser(Limits()).feed(GOOD + GOOD)
    assert [type(e).__name__ for e in events] == ["Request", "Body", "EndOfMessage"] * 2


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nX: " + b"v" * 200 + b"\r\n\r\n", 431),
        (b"POST / HTTP/1.1\r\nContent-Length: 999\r\n\r\n", 413),
        (b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400),
    ],
)
def test_limits_and_errors(data: bytes, status: int) -> None:
    parser = RequestParser(Limits(max_target=50, max_header_bytes=150, max_body=100))
    with pytest.raises(ProtocolError) as info:
        parser.feed(data)
    assert info.value.status == status


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=len(GOOD)))
def test_random_and_mutated_bytes_never_raise_anything_but_protocol_error(
    noise: bytes, cut: int
) -> None:
    for data in (noise, GOOD[:cut] + noise + GOOD[cut:]):
        parser = RequestParser(Limits())
        try:
            events = parser.feed(data)
        except ProtocolError as error:
            assert 400 <= error.status < 500 or error.status == 505
        else:
            assert all(isinstance(e, Request | Body | EndOfMessage) for e in events)


def requests_and_bodies(events: list[Event]) -> list[tuple[bytes, bytes]]:
    """(target, body) per request, from a list of events."""
    out: list[tuple[bytes, bytes]] = []
    for event in events:
        if isinstance(event, Request):
            out.append((event.target, b""))
        elif isinstance(event, Body):
            out[-1] = (out[-1][0], out[-1][1] + event.data)
    return out


H2C = b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
IGNORED_UPGRADES = [
    b"POST /a HTTP/1.1\r\nHost: h\r\n" + H2C + b"Content-Length: 5\r\n\r\nhello",
    b"POST /a HTTP/1.1\r\nHost: h\r\n" + H2C + b"Transfer-Encoding: chunked\r\n\r\n"
    b"2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: h\r\n" + H2C + b"\r\n",
]


@pytest.mark.parametrize("first", IGNORED_UPGRADES, ids=["length", "chunked", "no-body"])
@pytest.mark.parametrize("step", [1, 7, 10_000])
def test_an_upgrade_other_than_websocket_is_ignored_and_read_as_http(
    first: bytes, step: int
) -> None:
    # RFC 9110 §7.8: a server MAY ignore Upgrade. The body and the pipelined request behind
    # it must not be lost (llhttp alone stops parsing after such a head).
    data = first + b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
    parser = RequestParser(Limits())
    events: list[Event] = []
    for i in range(0, len(data), step):
        events += parser.feed(data[i : i + step])
    body = b"" if first.startswith(b"GET") else b"hello"
    assert requests_and_bodies(events) == [(b"/a", body), (b"/b", b"")]
    assert [type(e) for e in events].count(EndOfMessage) == 2
    assert not any(isinstance(e, Request) and e.upgrade for e in events)


@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
def test_an_ignored_upgrade_that_closes_keeps_its_body_and_refuses_what_follows(
    version: bytes,
) -> None:
    data = (
        b"POST /a HTTP/%s\r\nHost: h\r\nConnection: close, upgrade\r\nUpgrade: h2c\r\n"
        b"Content-Length: 2\r\n\r\nhiGET /b HTTP/1.1\r\nHost: h\r\n\r\n" % version
    )
    parser = RequestParser(Limits())
    assert requests_and_bodies(parser.feed(data)) == [(b"/a", b"hi")]  # answered first
    assert parser.failed is not None and parser.failed.status == 400  # then the 400
    with pytest.raises(ProtocolError):
        parser.feed(b"")


def test_a_request_cut_by_an_error_is_dropped_and_the_ones_before_it_kept() -> None:
    bad_body = b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    parser = RequestParser(Limits())
    events = parser.feed(GOOD + GOOD + bad_body)
    assert requests_and_bodies(events) == [(b"/a%20b?x=1", b"hello")] * 2  # not /c's head
    assert parser.failed is not None
    with pytest.raises(ProtocolError):  # alone, a malformed request raises at once
        RequestParser(Limits()).feed(bad_body)


def test_a_websocket_upgrade_keeps_the_bytes_behind_its_head() -> None:
    head = (
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    parser = RequestParser(Limits())
    events = parser.feed(head + b"\x81\x80frame", max_requests=16)
    assert isinstance(events[0], Request) and events[0].upgrade
    assert parser.upgrade_data == b"\x81\x80frame"
    assert parser.feed(b"more") == [] and parser.upgrade_data.endswith(b"more")


def test_max_requests_holds_back_a_long_pipeline() -> None:
    one = b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n"
    data = b"".join(one % i for i in range(2000))
    parser = RequestParser(Limits())
    events = parser.feed(data, max_requests=16)
    first = requests_and_bodies(events)
    # Exactly the budget: a packet of 2,000 requests is not all parsed.
    assert len(first) == 16
    assert parser.held and len(parser.held) < len(data)
    everything = list(first)
    while parser.held:
        everything += requests_and_bodies(parser.feed(b"", max_requests=16))
    assert everything == [(b"/%d" % i, b"") for i in range(2000)]


def test_max_requests_zero_holds_even_a_short_feed() -> None:
    # A connection whose queue is full parses nothing more, however little arrives.
    parser = RequestParser(Limits())
    assert parser.feed(GOOD, max_requests=0) == [] and parser.held == GOOD
    assert requests_and_bodies(parser.feed(b"", max_requests=1)) == [(b"/a%20b?x=1", b"hello")]


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_body_in_one_read_is_fed_in_one_piece(framing: str) -> None:
    body = b"x" * 10_000
    if framing == "length":
        data = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    else:
        data = CHUNKED_HEAD + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    events = RequestParser(Limits()).feed(data, max_requests=16)
    assert [type(e) for e in events] == [Request, Body, EndOfMessage]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                GOOD,
                *IGNORED_UPGRADES,
                b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
                b"\r\n",  # a blank line before a request line (RFC 9112 §2.2)
                b"POST /t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"4;x=1\r\n\r\n\r\n\r\n1\r\n0\r\n0\r\nT: 1\r\n\r\n",  # CRLFs in chunk data
            ]
        ),
        max_size=120,
    ),
    # Pieces of one byte to several requests, cutting heads, bodies and chunks anywhere.
    st.lists(st.integers(min_value=1, max_value=6000), min_size=1),
    st.integers(min_value=1, max_value=4),
)
def test_bounded_and_split_feeding_gives_the_same_requests(
    messages: list[bytes], cuts: list[int], budget: int
) -> None:
    data = b"".join(messages)
    expected = requests_and_bodies(RequestParser(Limits()).feed(data))
    parser = RequestParser(Limits())
    got: list[Event] = []
    position, index = 0, 0
    while position < len(data) or parser.held:
        size = cuts[index % len(cuts)]
        got += parser.feed(data[position : position + size], max_requests=budget)
        position, index = position + size, index + 1
    assert requests_and_bodies(got) == expected


def test_absolute_form_target_replaces_the_host_header() -> None:
    # RFC 9112 §3.2.2: the server MUST ignore the received Host and use the target's.
    data = b"GET http://real.example:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n"
    request = RequestParser(Limits()).feed(data)[0]
    assert isinstance(request, Request)
    assert request.headers == [(b"host", b"real.example:8080")]
    assert (request.path, request.query) == (b"/p", b"q")


def test_absolute_form_ipv6_host_keeps_its_brackets() -> None:
    data = b"GET http://[::1]:8000/p HTTP/1.1\r\nHost: other\r\n\r\n"
    request = RequestParser(Limits()).feed(data)[0]
    assert isinstance(request, Request) and request.headers == [(b"host", b"[::1]:8000")]


def test_expect_100_continue_is_ignored_for_http10() -> None:
    # RFC 9110 §10.1.1: "MUST ignore that expectation" in an HTTP/1.0 request.
    data = b"POST / HTTP/%s\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
    old = RequestParser(Limits()).feed(data % b"1.0")[0]
    new = RequestParser(Limits()).feed(data % b"1.1")[0]
    assert isinstance(old, Request) and isinstance(new, Request)
    assert (old.expect_continue, new.expect_continue) == (False, True)


@pytest.mark.parametrize("byte", [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F])
def test_every_control_character_in_a_header_value_is_refused(byte: int) -> None:
    # llhttp's strict mode is what enforces this (the parser adds no check of its own).
    data = b"GET / HTTP/1.1\r\nHost: h\r\nX: a%sb\r\n\r\n" % bytes([byte])
    with pytest.raises(ProtocolError):
        RequestParser(Limits()).feed(data)


NON_TOKEN = [b for b in range(0x100) if not valid_name(bytes([b])) and b != ord(":")]


@pytest.mark.parametrize("byte", NON_TOKEN)
def test_every_non_token_character_in_a_header_name_is_refused(byte: int) -> None:
    data = b"GET / HTTP/1.1\r\nHost: h\r\nX%sY: v\r\n\r\n" % bytes([byte])
    with pytest.raises(ProtocolError):
        RequestParser(Limits()).feed(data)


@pytest.mark.parametrize(
    "host",
    [b"", b"example.com", b"example.com:8000", b"127.0.0.1:1", b"[::1]:80", b"xn--bcher-kva.de"],
)
def test_valid_hosts_are_accepted(host: bytes) -> None:
    events = RequestParser(Limits()).feed(b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host)
    assert isinstance(events[0], Request) and events[0].headers == [(b"host", host)]


# -- what the parser alone refuses: smuggling, malformed heads and bodies ---------------------
# Each is decided here, once, without sockets; tests/server/test_tcp.py sends a few of them over
# loopback to check the server answers such a request with its status, closes the connection
# and never calls the app.

CHUNKED = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
MALFORMED: dict[str, tuple[bytes, int]] = {
    "cl-then-te": (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
        400,
    ),
    "te-then-cl": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
        b"0\r\n\r\n",
        400,
    ),
    "conflicting-cl": (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        400,
    ),
    "duplicate-cl": (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        400,
    ),
    "signed-cl": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400),
    "te-chunked-identity": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        400,
    ),
    "te-identity": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\nabc", 400),
    "obs-fold": (b"GET / HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b\r\n\r\n", 400),
    "bare-cr": (b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400),
    "nul": (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400),
    "space-in-name": (b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: b\r\n\r\n", 400),
    "empty-name": (b"GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n", 400),
    "control-in-name": (b"GET / HTTP/1.1\r\nHost: h\r\nX\x01: v\r\n\r\n", 400),
    "bad-chunk-size": (CHUNKED + b"zz\r\nabc\r\n0\r\n\r\n", 400),
    "chunk-extension-without-a-name": (CHUNKED + b"3;\r\nabc\r\n0\r\n\r\n", 400),
    "control-in-chunk-extension": (CHUNKED + b"3;a=\x01\r\nabc\r\n0\r\n\r\n", 400),
    "chunk-longer-than-its-size": (CHUNKED + b"3\r\nabcdef\r\n0\r\n\r\n", 400),
    "negative-chunk-size": (CHUNKED + b"-3\r\nabc\r\n0\r\n\r\n", 400),
    "chunk-size-overflow": (CHUNKED + b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n", 400),
    "bad-method": (b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "bad-version": (b"GET / HTTP/9.9\r\nHost: a\r\n\r\n", 400),
    "bare-lf": (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    "asterisk-for-get": (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "long-target": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    "big-header": (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n", 431),
    "many-headers": (
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(120)) + b"\r\n",
        431,
    ),
    # Advisories of peer servers and parsers, each class here (docs/security.md):
    "te-split-over-lines-gunicorn-cve-2024-1135": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "te-coding-list": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "te-invalid-with-cl-gunicorn-cve-2024-6827": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n"
        b"Content-Length: 5\r\n\r\n0\r\n\r\n",
        400,
    ),
    "chunk-data-without-crlf-h11-cve-2025-43859": (CHUNKED + b"3\r\nabcXX0\r\n\r\n", 400),
    "bare-lf-after-chunk-size-go-cve-2025-22871": (CHUNKED + b"3\nabc\r\n0\r\n\r\n", 400),
    "lf-in-chunk-extension-kestrel-cve-2025-55315": (CHUNKED + b"3;x\nabc\r\n0\r\n\r\n", 400),
    "escape-in-target-uvicorn-cve-2020-7694": (
        b"GET /\x1b[31mred HTTP/1.1\r\nHost: a\r\n\r\n",
        400,
    ),
    "no-host": (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 400),
    "two-hosts": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "host-with-space": (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    "host-with-slash": (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    "host-with-userinfo": (b"GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", 400),
    "host-with-a-bad-port": (b"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400),
    "host-with-a-query": (b"GET / HTTP/1.1\r\nHost: a?b\r\n\r\n", 400),
    "http09": (b"GET /\r\n\r\n", 400),
    "http2-version-505": (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    "http2-prior-knowledge": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),  # llhttp stops
    "te-in-http10": (
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    "fragment-in-target": (b"GET /a?b#c HTTP/1.1\r\nHost: a\r\n\r\n", 400),  # in the query
    "userinfo-in-absolute-form": (b"GET http://user@a/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "absolute-form-not-http": (b"GET ftp://real/x HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    "absolute-form-without-host": (b"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 400),
}


@pytest.mark.parametrize(("data", "status"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_requests_are_refused_with_their_status_and_no_event(
    data: bytes, status: int
) -> None:
    # A feed that fails returns no event: not even the head of a request whose body is
    # malformed reaches the app.
    with pytest.raises(ProtocolError) as info:
        RequestParser(Limits()).feed(data)
    assert info.value.status == status


# -- #13: heads counted as they arrive; what the app must never see ---------------------------

LIMIT = 1024
ENDLESS = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "
BEFORE = {
    "fresh": (b"", []),
    "after-get": (b"GET /g HTTP/1.1\r\nHost: h\r\n\r\n", [(b"/g", b"")]),
    "after-length-body": (GOOD, [(b"/a%20b?x=1", b"hello")]),
    "after-chunked-body": (
        b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\n\r\n\r\n0\r\nX-T: 1\r\n\r\n",
        [(b"/c", b"abc\r\n")],
    ),
    "after-blank-lines": (b"\r\n" * 3, []),
}


def feed_in_steps(parser: RequestParser, data: bytes, step: int) -> list[Event]:
    events: list[Event] = []
    for i in range(0, len(data), step):
        events += parser.feed(data[i : i + step], max_requests=16)
    return events


@pytest.mark.parametrize("before", BEFORE, ids=list(BEFORE))
@pytest.mark.parametrize("step", [1, 7, 100, 4096, 1 << 20])
def test_a_header_line_that_never_ends_gets_431_at_the_limit_however_it_arrives(
    before: str, step: int
) -> None:
    # #13.1: llhttp reports a header only once its line ends, so counting fields let an endless
    # line through (and httptools re-copied it on every read). The head is counted as it
    # arrives: its bytes up to the limit are taken, the next one is a 431.
    prefix, expected = BEFORE[before]
    blank = len(prefix) if before == "after-blank-lines" else 0  # blank lines: the head's own
    head = ENDLESS + b"b" * (LIMIT - len(ENDLESS) - blank)
    parser = RequestParser(Limits(max_header_bytes=LIMIT))
    assert requests_and_bodies(feed_in_steps(parser, prefix + head, step)) == expected
    with pytest.raises(ProtocolError) as info:
        parser.feed(b"b")
    assert info.value.status == 431


@pytest.mark.parametrize("step", [1, 3, 1 << 20])
def test_a_head_exactly_at_the_limit_is_accepted(step: int) -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX: "
    head += b"v" * (LIMIT - len(head) - 4) + b"\r\n\r\n"
    events = feed_in_steps(RequestParser(Limits(max_header_bytes=LIMIT)), head, step)
    assert requests_and_bodies(events) == [(b"/", b"")]
    with pytest.raises(ProtocolError) as info:
        feed_in_steps(RequestParser(Limits(max_header_bytes=LIMIT - 1)), head, step)
    assert info.value.status == 431


def test_endless_blank_lines_get_431_at_the_limit() -> None:
    # RFC 9112 §2.2 lets a server ignore empty lines before a request line, not endlessly.
    parser = RequestParser(Limits(max_header_bytes=LIMIT))
    assert feed_in_steps(parser, b"\r\n" * (LIMIT // 2), 64) == []
    with pytest.raises(ProtocolError) as info:
        parser.feed(b"\r")
    assert info.value.status == 431


CHUNKED_HEAD = b"POST /t HTTP/1.1\r\nHost: good.example\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("step", [1, 5, 1 << 20])
def test_trailer_fields_never_join_the_request_headers(step: int) -> None:
    # #13.7: RFC 9112 §7.1.2, "A recipient MUST NOT merge a received trailer field into the
    # header section unless its corresponding header field definition explicitly permits" it.
    # A second Host in the trailers got past the one-Host check into the app's headers.
    trailers = b"5\r\nhello\r\n0\r\nX-Injected: 1\r\nHost: evil.example\r\n\r\n"
    after = b"GET /next HTTP/1.1\r\nHost: good.example\r\n\r\n"
    events = feed_in_steps(RequestParser(Limits()), CHUNKED_HEAD + trailers + after, step)
    assert requests_and_bodies(events) == [(b"/t", b"hello"), (b"/next", b"")]
    first = events[0]
    assert isinstance(first, Request)
    assert first.headers == [(b"host", b"good.example"), (b"transfer-encoding", b"chunked")]
    assert [type(e) for e in events].count(EndOfMessage) == 2


@pytest.mark.parametrize("step", [1, 7, 1 << 20])
def test_a_trailer_section_is_held_to_the_header_limits(step: int) -> None:
    # The trailer section is a header section after the body: the same limits bound it.
    parser = RequestParser(Limits(max_header_bytes=LIMIT))
    endless = CHUNKED_HEAD + b"1\r\nx\r\n0\r\nX-Big: " + b"b" * (LIMIT - len(b"X-Big: "))
    feed_in_steps(parser, endless, step)
    with pytest.raises(ProtocolError) as info:
        parser.feed(b"b")
    assert info.value.status == 431
    many = CHUNKED_HEAD + b"0\r\n" + b"".join(b"T-%d: v\r\n" % i for i in range(30)) + b"\r\n"
    with pytest.raises(ProtocolError) as info:
        feed_in_steps(RequestParser(Limits(max_headers=20)), many, step)
    assert info.value.status == 431


def test_an_endless_chunk_size_line_is_refused() -> None:
    # RFC 9112 §7.1.1: a server "ought to limit the total length of chunk extensions".
    parser = RequestParser(Limits(max_header_bytes=LIMIT))
    with pytest.raises(ProtocolError) as info:
        feed_in_steps(parser, CHUNKED_HEAD + b"1;ext=" + b"e" * 2 * LIMIT, 100)
    assert 400 <= info.value.status < 500


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n"


@pytest.mark.parametrize("target", [b"/", b"http://a.example/", b"a.example:443"])
@pytest.mark.parametrize("body", [b"", SMUGGLED], ids=["alone", "with-a-body"])
def test_connect_is_refused_and_nothing_after_it_is_parsed(target: bytes, body: bytes) -> None:
    # #13.6: llhttp takes CONNECT for an upgrade and skips its body, which then parsed as the
    # next request; we are not a proxy and tunnel nothing.
    data = b"CONNECT %s HTTP/1.1\r\nHost: a.example\r\nContent-Length: %d\r\n\r\n%s" % (
        target,
        len(body),
        body,
    )
    parser = RequestParser(Limits())
    with pytest.raises(ProtocolError) as info:
        parser.feed(data + SMUGGLED)
    assert info.value.status in (400, 405)
    with pytest.raises(ProtocolError):
        parser.feed(SMUGGLED)  # and nothing after it ever is


def test_connect_behind_a_good_request_leaves_that_one_whole() -> None:
    parser = RequestParser(Limits())
    events = parser.feed(GOOD + b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n" + SMUGGLED)
    assert requests_and_bodies(events) == [(b"/a%20b?x=1", b"hello")]
    assert parser.failed is not None and parser.failed.status in (400, 405)


def test_parser_states_through_a_head_a_body_and_the_next_head() -> None:
    parser = RequestParser(Limits())
    assert parser.state is ParserState.IDLE
    assert parser.feed(b"\r\n") == [] and parser.state is ParserState.IDLE  # a blank line
    parser.feed(b"POST / HTTP/1.1\r\nHost: h\r\n")
    assert parser.state is ParserState.HEAD  # what the header deadline watches
    parser.feed(b"Content-Length: 5\r\n\r\nhe")
    assert parser.state is ParserState.BODY
    assert isinstance(parser.feed(b"llo")[-1], EndOfMessage)
    assert parser.state is ParserState.IDLE
    parser.feed(b"GET")
    assert parser.state is ParserState.HEAD


def test_parser_states_through_a_chunked_body_and_its_trailers() -> None:
    parser = RequestParser(Limits())
    parser.feed(CHUNKED_HEAD + b"3\r\nabc\r\n")
    assert parser.state is ParserState.BODY
    parser.feed(b"0\r\nX-Trailer: 1\r\n")
    assert parser.state is ParserState.TRAILERS
    assert isinstance(parser.feed(b"\r\n")[-1], EndOfMessage)
    assert parser.state is ParserState.IDLE


def test_parser_states_of_upgrades_taken_and_ignored() -> None:
    websocket = RequestParser(Limits())
    websocket.feed(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    assert websocket.state is ParserState.UPGRADED  # and stays: what follows is not HTTP
    websocket.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert websocket.state is ParserState.UPGRADED and websocket.upgrade_data
    # h2c is ignored (RFC 9110 §7.8): its body is read as HTTP/1.1, through a stand-in head.
    ignored = RequestParser(Limits())
    events = ignored.feed(
        b"POST / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: h2c\r\n"
        b"Content-Length: 3\r\n\r\nab"
    )
    assert ignored.state is ParserState.BODY and events[1:] == [Body(b"ab")]
    assert ignored.feed(b"c") == [Body(b"c"), EndOfMessage()]
    assert ignored.state is ParserState.IDLE


def test_parser_refuses_an_illegal_move_as_an_internal_error() -> None:
    # llhttp's callbacks drive the parser's moves; one out of order is a bug, never a 400.
    parser = RequestParser(Limits())
    parser.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n")
    with pytest.raises(InternalError, match="RequestParser.state: no move from BODY to HEAD"):
        parser.on_message_begin()
    assert parser.state is ParserState.BODY


# -- the per-request fast paths (#17) keep the rules ---------------------------------------


@pytest.mark.parametrize(
    "name", [b"Forwarded", b"X-Forwarded-For", b"X-Forwarded-Proto", b"X-Forwarded-Host"]
)
def test_a_request_with_a_proxy_header_is_marked_proxied(name: bytes) -> None:
    parser = RequestParser(Limits())
    plain, _, proxied, _ = parser.feed(
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n%s: x\r\n\r\n" % name
    )
    assert isinstance(plain, Request) and not plain.proxied
    assert isinstance(proxied, Request) and proxied.proxied


def test_a_host_found_valid_before_lets_no_invalid_one_through() -> None:
    parser = RequestParser(Limits())
    assert isinstance(parser.feed(b"GET / HTTP/1.1\r\nHost: h:80\r\n\r\n")[0], Request)
    with pytest.raises(ProtocolError) as refused:
        parser.feed(b"GET / HTTP/1.1\r\nHost: h/x\r\n\r\n")
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("reads", "version"),
    [
        ([b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"], "1.1"),
        ([b"GET / HTTP/1.0\r\n\r\n"], "1.0"),
        ([b"\r\nGET / HTTP/1.0\r\n\r\n"], "1.0"),  # a blank line first
        # The head's rest comes in a read of its own, whose first line is a header line that
        # ends like a request line of HTTP/1.1: the version is still the request line's.
        ([b"GET / HTTP/1.0\r\n", b"X: HTTP/1.1\r\n\r\n"], "1.0"),
    ],
)
def test_the_version_is_the_request_lines(reads: list[bytes], version: str) -> None:
    parser = RequestParser(Limits())
    events: list[Event] = []
    for data in reads:
        events += parser.feed(data)
    assert isinstance(events[0], Request) and events[0].http_version == version


def test_field_values_lose_the_spaces_and_tabs_around_them() -> None:
    (request, _) = RequestParser(Limits()).feed(
        b"GET / HTTP/1.1\r\nHost: h \t \r\nX: \ta b\t\r\n\r\n"
    )
    assert isinstance(request, Request)
    assert request.headers == [(b"host", b"h"), (b"x", b"a b")]
