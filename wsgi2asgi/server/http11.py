"""HTTP/1.1 requests without I/O: bytes in, request events out.

The parser is llhttp (through ``httptools``) in its strict mode, plus the checks it leaves to
us. Rules this module keeps (RFC 9112 unless noted):

* A request with both ``Content-Length`` and ``Transfer-Encoding``, a duplicate or invalid
  ``Content-Length``, a ``Transfer-Encoding`` other than one line of exactly ``chunked``,
  obs-fold, a bare CR, a NUL, an invalid header name, an invalid chunk size, an invalid method
  or version, an HTTP/1.1 request without ``Host`` or any with two → 400.
  These are the request smuggling classes (§6.3, §11.2). The connection is then closed.
* Limits: a request target longer than ``max_target`` → 414; a request head (blank lines
  before it, request line, header lines, the empty line) larger than ``max_header_bytes`` or
  with more than ``max_headers`` lines → 431; a body larger than ``max_body`` → 413. A chunked
  body's trailer section is held to the same two limits (431), a chunk-size line to
  ``max_header_bytes`` (400).
* Heads are counted as their bytes arrive, before llhttp sees them, so the limit cuts a head
  at the same byte however the client splits it (llhttp reports a header only once its line
  ends). llhttp is fed in pieces that end where a head, a body or a trailer section ends
  (chunk sizes are followed for that, llhttp still checks them), so the count of each head
  starts at its first byte. A line cut between two reads is fed once its start has arrived and
  again once it ends, never piece by piece: httptools joins a field cut between two feeds with
  ``bytes +=``, which fed on every read would copy a long line whole each time (quadratic).
* ``CONNECT`` → 400 before the app sees it: this server is not a proxy and tunnels nothing
  (llhttp would take the bytes after it for the tunnel's, or, skipped, for the next request).
* Trailer fields are dropped: never in ``Request.headers`` (RFC 9112 §7.1.2).
* Targets: origin-form ``/path?query``; absolute-form ``http://host/path`` ("a server MUST
  accept the absolute-form", §3.2.2) becomes its path; asterisk-form ``*`` only for OPTIONS.
* Responses are framed by :mod:`wsgi2asgi.server.framing`.

Where the parser stands is one :class:`ParserState` (``RequestParser.state``), moved by
llhttp's callbacks and by our own scan of chunk sizes; ``_MOVES`` lists the legal moves, and
any other raises :class:`~wsgi2asgi.exceptions.InternalError` (a bug, never a 400)::

    IDLE ──first byte──▶ HEAD ──head parsed──▶ BODY ──end──▶ IDLE
                                             BODY ──last chunk──▶ TRAILERS ──end──▶ IDLE
                          HEAD ──WebSocket upgrade──▶ UPGRADED (final)
                          HEAD ──ignored upgrade with a body──▶ IGNORED_UPGRADE
                               ──stand-in head fed──▶ STAND_IN ──stand-in parsed──▶ BODY

Example::

    parser = RequestParser(Limits())
    for event in parser.feed(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n"):
        ...   # Request(...), then EndOfMessage()
"""

from __future__ import annotations

import dataclasses
import enum
import re

import httptools

from wsgi2asgi.exceptions import InternalError, ProtocolError

__all__ = [
    "Body",
    "EndOfMessage",
    "Limits",
    "ParserState",
    "Request",
    "RequestParser",
]


@dataclasses.dataclass(frozen=True)
class Limits:
    """Sizes beyond which a request is refused, with the status each gives."""

    max_target: int = 8190  # 414
    max_header_bytes: int = 65536  # 431
    max_headers: int = 100  # 431
    max_body: int | None = None  # 413 (None: no limit)


@dataclasses.dataclass(slots=True)
class Request:
    """A request's head: everything before the body."""

    method: str
    target: bytes
    path: bytes  # the raw path (percent-encoded), from the target
    query: bytes
    http_version: str
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    upgrade: bool
    expect_continue: bool
    content_length: int | None
    chunked: bool
    #: It carries a header :func:`~wsgi2asgi.server.proxy.apply_proxy_headers` reads
    #: (``Forwarded``, ``X-Forwarded-For``, ``-Proto``, ``-Host``): only then is it applied.
    proxied: bool = False


@dataclasses.dataclass(slots=True)
class Body:
    """A piece of the request body."""

    data: bytes


@dataclasses.dataclass(slots=True)
class EndOfMessage:
    """The request body is complete."""


_END_OF_MESSAGE = EndOfMessage()  # the parser's one instance: it has no fields


Event = Request | Body | EndOfMessage


class ParserState(enum.Enum):
    """Where a connection's byte stream stands (``RequestParser.state``)."""

    #: Between requests: the next byte begins a head (blank lines before one change nothing).
    IDLE = "idle"
    #: Inside a request head: its first byte has been parsed, its empty line has not. The
    #: header deadline watches this (``timeout_request_header``).
    HEAD = "head"
    #: The head is parsed (its ``Request`` event made); its body is being read, if it has one.
    BODY = "body"
    #: After a chunked body's last chunk: its trailer section, held to the head's limits.
    TRAILERS = "trailers"
    #: An upgrade we ignore (RFC 9110 §7.8) has a body: llhttp stopped after the head and
    #: would skip that body, so a stand-in head with the same framing is fed next.
    IGNORED_UPGRADE = "ignored upgrade"
    #: llhttp is reading that stand-in head; its callbacks make no event, and the body after
    #: it is the ignored upgrade's.
    STAND_IN = "stand-in"
    #: A WebSocket upgrade's head is parsed: every later byte is the new protocol's
    #: (``upgrade_data``). Final.
    UPGRADED = "upgraded"

    # Members are singletons, equal only to themselves: hashed by identity too. (Enum's own
    # __hash__ hashes the name in Python; the move table would pay it on every move.)
    __hash__ = object.__hash__


#: The legal moves; :meth:`RequestParser._move` refuses any other.
_MOVES: dict[ParserState, tuple[ParserState, ...]] = {
    ParserState.IDLE: (ParserState.HEAD,),
    ParserState.HEAD: (ParserState.BODY, ParserState.UPGRADED, ParserState.IGNORED_UPGRADE),
    ParserState.BODY: (ParserState.IDLE, ParserState.TRAILERS),
    ParserState.TRAILERS: (ParserState.IDLE,),
    ParserState.IGNORED_UPGRADE: (ParserState.STAND_IN,),
    ParserState.STAND_IN: (ParserState.BODY,),
    ParserState.UPGRADED: (),
}
#: The states in which the next bytes begin, or continue, a head.
_BEFORE_A_BODY = (ParserState.IDLE, ParserState.HEAD)

# The members under module names, for the per-request path: on Python 3.11 reading
# ``ParserState.HEAD`` is an attribute lookup on the enum class that the interpreter does not
# specialise (~40 ns), and each request moves and compares the state several times.
_IDLE = ParserState.IDLE
_HEAD = ParserState.HEAD
_BODY = ParserState.BODY
_TRAILERS = ParserState.TRAILERS
_IGNORED_UPGRADE = ParserState.IGNORED_UPGRADE
_STAND_IN = ParserState.STAND_IN
_UPGRADED = ParserState.UPGRADED

#: The end of a head or of a trailer section: the empty line after its last field line (RFC
#: 9112 §2.1). A valid head holds no other CRLF CRLF: llhttp refuses CR and LF in its fields.
_EMPTY_LINE = b"\r\n\r\n"
#: The request fields the parser reads, each to what it is (``on_header``); any other is
#: passed on as it came. The proxy ones are those ``proxy.apply_proxy_headers`` reads.
_HOST_FIELD, _LENGTH_FIELD, _CODING_FIELD, _EXPECT_FIELD, _PROXY_FIELD = (
    "host",
    "length",
    "coding",
    "expect",
    "proxy",
)
_FIELDS = {
    b"host": _HOST_FIELD,
    b"content-length": _LENGTH_FIELD,
    b"transfer-encoding": _CODING_FIELD,
    b"expect": _EXPECT_FIELD,
    b"forwarded": _PROXY_FIELD,
    b"x-forwarded-for": _PROXY_FIELD,
    b"x-forwarded-proto": _PROXY_FIELD,
    b"x-forwarded-host": _PROXY_FIELD,
}
#: The end of a request line of HTTP/1.1 (RFC 9112 §3: ``method SP target SP version``).
_VERSION_1_1 = b" HTTP/1.1"
#: The usual methods' names, made once (llhttp has checked every method is a token).
_METHODS = {
    name.encode("ascii"): name
    for name in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
}
#: RFC 9110 §9.3.6: CONNECT asks for a tunnel, which a proxy makes. llhttp takes it for an
#: upgrade, and would leave the bytes after its head to the tunnel, or parse them as the next
#: request once skipped: it is refused, with all that follows.
_NO_TUNNEL = "CONNECT is not supported: this server is not a proxy"
#: RFC 9112 §7.1: ``chunk-size = 1*HEXDIG``, at the start of a chunk-size line; the rest of
#: the line (extensions, CRLF) is llhttp's to check.
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]+")
_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]+)[^\n]*\n")
#: Bytes of a chunk-size line kept to read its size: enough for any size llhttp accepts.
_SIZE_PREFIX = 24


class RequestParser:
    """Turn the bytes of one connection into request events (pipelined requests included).

    Raises ``ProtocolError`` from :meth:`feed`; the connection must then be answered and
    closed, since the parser's position in the stream is no longer trustworthy.

    Only ``Upgrade: websocket`` is taken as an upgrade (``Request.upgrade``); the bytes after
    its head are kept in :attr:`upgrade_data` for the new protocol. Any other upgrade (``h2c``)
    is ignored, as RFC 9110 §7.8 allows ("A server MAY ignore a received Upgrade header
    field"), and the request is read as plain HTTP/1.1, body and pipelined requests included.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        # Read per request, kept here (Limits is frozen): each a lookup fewer.
        self._max_target = limits.max_target
        self._max_header_bytes = limits.max_header_bytes
        self._max_headers = limits.max_headers
        self._max_body = limits.max_body
        self._parser = httptools.HttpRequestParser(self)
        self._events: list[Event] = []
        self.state = _IDLE  #: where the stream stands (moved by :meth:`_move`)
        self.held = b""  #: bytes not parsed yet: ``feed``'s ``max_requests`` was reached
        self.upgrade_data = b""  #: bytes after a WebSocket upgrade's head
        self.failed: ProtocolError | None = None  #: malformed input behind returned events
        self._keep_alive = True
        self._requests = 0  # Request events produced by the current feed
        # The head (or trailer section) being read, counted as it arrives:
        self._section_bytes = 0
        self._section_tail = b""  # its last bytes, for an empty line cut between two reads
        self._cut_line: bytearray | None = None  # a line fed in part: its rest, until it ends
        self._valid_host = b""  # the last Host found valid (b"" is valid too)
        self._version_1_1 = False  # feed() saw the head's request line end with HTTP/1.1
        self._reset_message()
        self._reset_chunks()

    def _reset_message(self) -> None:
        # Also inlined in on_message_begin: keep the two the same.
        self._target = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body_bytes = 0
        self._content_length: int | None = None
        self._chunked = False
        self._expect_continue = False
        self._proxied = False
        self._hosts = 0

    def _reset_chunks(self) -> None:
        """Where a chunked body stands, followed here only to find where it ends (read only
        while one is; reset when a head says its body is chunked)."""
        self._chunk_left = 0  # bytes of chunk data and its CRLF still to come
        self._size_line = b""  # the start of a chunk-size line cut between two reads
        self._size_line_bytes = 0
        self._trailer_lines = 0

    def _move(self, state: ParserState) -> None:
        if state not in _MOVES[self.state]:
            raise InternalError.illegal_move("RequestParser.state", self.state, state)
        self.state = state

    def feed(self, data: bytes, max_requests: int | None = None) -> list[Event]:
        """Parse ``data`` (after any bytes held back before); return the events it completes.

        With ``max_requests``, parsing stops once that many request heads were parsed in this
        call, at the start of the next head (the last request's body is parsed on); the rest
        waits in :attr:`held` for the next call (``feed(b"", n)``).
        That bounds what a client pipelining thousands of requests into one packet makes the
        server hold.

        Malformed input behind whole requests (a bad one pipelined after good ones): the whole
        requests' events are returned and the error is kept in :attr:`failed`, so that they can
        still be answered; the next call raises it. A request cut by the error is dropped.

        Raises:
            ProtocolError: malformed input or a limit exceeded, with no event before it.
        """
        if self.failed is not None:
            raise self.failed
        if self.held:
            data, self.held = self.held + data, b""
        self._requests = 0
        size = len(data)
        state = self.state
        try:
            if (
                (state is _IDLE or state is _HEAD)
                and size >= 4
                and data.find(_EMPTY_LINE) == size - 4
                and self._section_bytes + size <= self._max_header_bytes
                and not self._section_tail
                and self._cut_line is None
                and (max_requests is None or max_requests > 0)
            ):
                # Nearly every read: one whole head, nothing after it. The same as
                # _feed_pieces, which would feed it in one piece.
                self._section_bytes += size
                if state is _IDLE:
                    # Its first line is the request line (unless blank lines come first): if
                    # it ends with the version 1.1, llhttp reads that version (or refuses the
                    # line), and on_headers_complete need not ask it for a formatted copy.
                    end = data.find(b"\r\n")
                    self._version_1_1 = end >= 9 and data.startswith(_VERSION_1_1, end - 9)
                else:
                    self._version_1_1 = False
                try:
                    self._parser.feed_data(data)
                except httptools.HttpParserUpgrade as exc:
                    self._execute(self._after_upgrade(data[exc.args[0] :] if exc.args else b""))
            else:
                self._version_1_1 = False
                self._feed_pieces(data, max_requests)
        except (ProtocolError, httptools.HttpParserError) as exc:
            # Only whole requests before the error survive: a request whose own body is
            # malformed never reaches the app.
            whole = _through_last_end(self._events)
            self._events = []
            if not whole:
                raise _protocol_error(exc) from None
            self.failed, self.held = _protocol_error(exc), b""  # nothing after it is trusted
            return whole
        events, self._events = self._events, []
        return events

    def _feed_pieces(self, data: bytes, max_requests: int | None) -> None:
        """Feed ``data`` to llhttp in pieces, each ending where a head, a body or a trailer
        section ends, so that every head is counted from its first byte."""
        size, position = len(data), 0
        while position < size:
            state = self.state
            if state is _UPGRADED:
                self.upgrade_data += data[position:]
                return
            if (
                max_requests is not None
                and self._requests >= max_requests
                and state in _BEFORE_A_BODY
            ):
                self.held = data[position:]  # from the next head on (a body goes on)
                return
            if state is _BODY:
                end = self._body_end(data, position)
                self._execute(data if end - position == size else memoryview(data)[position:end])
            else:  # a head, blank lines before one, or a trailer section
                end = self._section_end(data, position)
                self._feed_section(data, position, end)
            position = end

    def _section_end(self, data: bytes, position: int) -> int:
        """Where the head or trailer section being read ends in ``data`` (else ``len(data)``);
        its bytes up to there are counted against ``max_header_bytes`` first.

        Raises:
            ProtocolError: 431, the section is over the limit.
        """
        tail, end = self._section_tail, -1
        if tail:  # an empty line begun in the bytes before: does it end in these?
            found = (tail + data[position : position + 3]).find(_EMPTY_LINE)
            if found >= 0:
                end = position + found + 4 - len(tail)
        if end < 0:
            found = data.find(_EMPTY_LINE, position)
            end = found + 4 if found >= 0 else len(data)
        self._section_bytes += end - position
        if self._section_bytes > self._max_header_bytes:
            what = "trailer section" if self.state is _TRAILERS else "request header section"
            raise ProtocolError(431, f"{what} too large")
        if found < 0 and end == len(data):
            self._section_tail = (tail + data[max(position, end - 3) : end])[-3:]
        else:
            self._section_tail = b""  # an empty line: the head's end, or blank lines before one
        return end

    def _feed_section(self, data: bytes, position: int, end: int) -> None:
        """Feed ``data[position:end]``, part of a head or trailer section, to llhttp.

        A line cut at the end of a read is fed as far as it has come (llhttp checks its start
        at once); its rest is kept here until the line ends, then fed in one go: httptools
        joins a field cut between two feeds with ``bytes +=``, so feeding each new piece of a
        long line would copy all of it again on every read.
        """
        cut = self._cut_line
        if cut is not None:
            newline = data.find(b"\n", position, end)
            if newline < 0:
                cut += data[position:end]
                return
            cut += data[position : newline + 1]
            self._cut_line = None
            self._execute(bytes(cut))
            position = newline + 1
            if position == end:
                return
        if data[end - 1] != 0x0A:  # the last line goes on in the next read
            self._cut_line = bytearray()
        self._execute(data if end - position == len(data) else memoryview(data)[position:end])

    def _body_end(self, data: bytes, position: int) -> int:
        """Where the body being read ends in ``data`` (else ``len(data)``)."""
        if self._chunked:
            return self._chunked_end(data, position)
        left = (self._content_length or 0) - self._body_bytes
        return min(len(data), position + left) if left > 0 else len(data)

    def _chunked_end(self, data: bytes, position: int) -> int:
        """Where the chunked body ends in ``data``, or its trailer section starts (which then
        comes in pieces), else ``len(data)``. Only the chunk sizes are read here; llhttp checks
        the chunks and gives their data."""
        size = len(data)
        while position < size:
            if self._chunk_left:
                step = min(self._chunk_left, size - position)
                self._chunk_left -= step
                position += step
                continue
            position = self._chunk_size_line(data, position)
            if self.state is _TRAILERS:
                return self._trailers_end(data, position)
        return size

    def _trailers_end(self, data: bytes, position: int) -> int:
        """Where the trailer section that starts at ``position`` ends, if ``data`` holds all of
        it (its bytes are counted first); else ``position``, to feed it as a section."""
        if data[position - 2 : position] == b"\r\n":  # the last chunk's line, in data
            found = data.find(_EMPTY_LINE, position - 2)
            if found >= 0:
                if found + 4 - position > self._max_header_bytes:
                    raise ProtocolError(431, "trailer section too large")
                return found + 4
        return position

    def _chunk_size_line(self, data: bytes, position: int) -> int:
        """Read a chunk-size line, or as much of it as ``data`` holds; return where it ends."""
        line = None if self._size_line else _SIZE_LINE.match(data, position)
        if line is not None and line.end() - position <= self._max_header_bytes:
            self._chunk_read(int(line.group(1), 16))  # the usual case: the line whole in data
            return line.end()
        newline = data.find(b"\n", position)
        end = len(data) if newline < 0 else newline + 1
        self._size_line_bytes += end - position
        if self._size_line_bytes > self._max_header_bytes:
            # RFC 9112 §7.1.1: a server "ought to limit the total length of chunk extensions
            # received in a request".
            raise ProtocolError(400, "chunk-size line too long")
        room = _SIZE_PREFIX - len(self._size_line)
        if room > 0:
            self._size_line += data[position : min(end, position + room)]
        if newline < 0:
            return end
        match = _CHUNK_SIZE.match(self._size_line)
        self._size_line, self._size_line_bytes = b"", 0
        if match is None:
            raise ProtocolError(400, "invalid chunk size")
        self._chunk_read(int(match.group(), 16))
        return end

    def _chunk_read(self, chunk: int) -> None:
        if chunk:
            self._chunk_left = chunk + 2  # its data, then CRLF
        else:
            # The last chunk: a trailer section follows, ended by an empty line (§7.1.2), whose
            # first CRLF is this line's.
            self._move(_TRAILERS)
            self._section_bytes, self._section_tail = 0, b"\r\n"

    def _execute(self, data: bytes | memoryview) -> None:
        while data:
            if self.state is _UPGRADED:
                self.upgrade_data += bytes(data)
                return
            try:
                self._parser.feed_data(data)
                return
            except httptools.HttpParserUpgrade as exc:
                data = self._after_upgrade(data[exc.args[0] :] if exc.args else b"")

    def _after_upgrade(self, rest: bytes | memoryview) -> bytes | memoryview:
        """llhttp stopped after an upgrade's head: what to feed it next (``rest`` came after
        the head). A WebSocket's bytes are kept as :attr:`upgrade_data` by the caller."""
        if self.state is not _IGNORED_UPGRADE:
            return rest  # a WebSocket's, or the requests pipelined behind a bodiless upgrade
        # An ignored upgrade with a body: llhttp would skip that body. It goes on with the
        # next bytes as a new message, so a stand-in head with the same framing makes it
        # parse the body (its callbacks are swallowed); then the pipelined requests behind it.
        return self._stand_in_head() + bytes(rest)

    def _stand_in_head(self) -> bytes:
        self._move(_STAND_IN)
        # A fresh parser: after a "Connection: close" request llhttp takes no more bytes, not
        # even its stand-in body; the stand-in carries the same keep-alive for what follows.
        self._parser = httptools.HttpRequestParser(self)
        if self._chunked:
            framing = b"transfer-encoding: chunked"
        else:
            framing = b"content-length: %d" % (self._content_length or 0)
        # Same keep-alive as the request: data after a "close" one is refused as usual.
        connection = b"keep-alive" if self._keep_alive else b"close"
        return b"PUT / HTTP/1.1\r\nhost: x\r\n%s\r\nconnection: %s\r\n\r\n" % (
            framing,
            connection,
        )

    # -- httptools callbacks ---------------------------------------------------------------

    # The stand-in head of an ignored upgrade's body goes through these like any head (it is
    # valid, and carries the same framing); only on_headers_complete drops it. Its request
    # event already holds its own target and header list, which a reset does not touch.

    def on_message_begin(self) -> None:
        # _reset_message(), inlined: once per request.
        self._target = b""
        self._headers = []
        self._body_bytes = 0
        self._content_length = None
        self._chunked = False
        self._expect_continue = False
        self._proxied = False
        self._hosts = 0
        state = self.state
        if state is _IDLE:
            self.state = _HEAD  # the usual move, a legal one: no look at the table
        elif state is not _STAND_IN:
            self._move(_HEAD)

    def on_url(self, url: bytes) -> None:
        # Usually one piece (b"" + url is url itself); at most max_target bytes are joined.
        self._target += url
        if len(self._target) > self._max_target:
            raise ProtocolError(414, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        state = self.state
        if state is not _HEAD and state is not _STAND_IN:
            # A trailer field (after a chunked body): dropped. RFC 9112 §7.1.2: "A recipient
            # MUST NOT merge a received trailer field into the header section unless its
            # corresponding header field definition explicitly permits" it; a second Host here
            # would get past the one-Host check.
            self._trailer_lines += 1
            if self._trailer_lines > self._max_headers:
                raise ProtocolError(431, "too many trailer lines")
            return
        headers = self._headers
        if len(headers) >= self._max_headers:
            raise ProtocolError(431, "too many request header lines")
        # Names and values need no check here: llhttp's strict mode already refuses any name
        # that is not a token and any control character but tab in a value (RFC 9110 §5.1,
        # §5.5), the rules of wsgi2asgi.headers; tests/fuzz/http11.py holds llhttp to them.
        lower = name.lower()
        # RFC 9110 §5.5: a value has no whitespace around it (OWS). llhttp skips it before the
        # value, and refuses every other kind of whitespace (control characters), so all that
        # can end one is spaces and tabs: rstrip() strips just those, and costs less than
        # strip(b" \t").
        value = value.rstrip()
        field = _FIELDS.get(lower)  # one lookup for the ordinary fields: none of these
        if field is None:
            pass
        elif field is _HOST_FIELD:
            self._hosts += 1
            # RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to
            # any HTTP/1.1 request message that [...] contains [...] a Host header field with
            # an invalid field value." Apps build absolute URLs and redirects from it.
            if value != self._valid_host:  # a connection sends the same Host each time
                if _host_match(value) is None:
                    raise ProtocolError(400, "invalid Host header")
                self._valid_host = value
        elif field is _LENGTH_FIELD:
            self._content_length = int(value)  # llhttp has validated it
            if self._max_body is not None and self._content_length > self._max_body:
                raise ProtocolError(413, "request body too large")
        elif field is _CODING_FIELD:
            # llhttp accepts any list ending in "chunked", spread over several lines too
            # ("gzip, chunked"; "identity" then "chunked"). We decode no other coding, and
            # front ends disagree on such lists (gunicorn's CVE-2024-1135): one line, exactly
            # "chunked", or 400.
            if self._chunked or value.lower() != b"chunked":
                raise ProtocolError(400, "Transfer-Encoding other than a single 'chunked'")
            self._chunked = True
            self._reset_chunks()
        elif field is _EXPECT_FIELD:
            if value.lower() == b"100-continue":
                self._expect_continue = True
        elif field is _PROXY_FIELD:
            self._proxied = True
        headers.append((lower, value))

    def on_headers_complete(self) -> None:
        self._section_bytes = 0
        if self.state is _STAND_IN:
            self._move(_BODY)  # the body that follows is the request before it's
            return
        parser = self._parser
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method) or raw_method.decode("ascii")
        if method == "CONNECT":
            raise ProtocolError(400, _NO_TUNNEL)  # and nothing after it is parsed
        # llhttp formats its version as a new string each time it is asked (costly, per
        # request): feed() has seen a plain "HTTP/1.1" request line in most reads.
        http_version = "1.1" if self._version_1_1 else parser.get_http_version()
        if http_version != "1.1":
            http_version = _checked_version(http_version, self._chunked)
        # RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
        # HTTP/1.1 request message that lacks a Host header field and to any request message
        # that contains more than one Host header field line".
        if self._hosts > 1 or (self._hosts == 0 and http_version == "1.1"):
            raise ProtocolError(400, "a request needs exactly one Host header")
        target = self._target
        if target[:1] == b"/" and b"#" not in target:
            path, _, query = target.partition(b"?")  # origin-form: nearly every request
        else:
            path, query = self._split_target(method, target)
        upgrade = parser.should_upgrade()
        websocket = upgrade and _asks_for_websocket(self._headers)
        if websocket:
            self._move(_UPGRADED)
        elif upgrade and (self._chunked or bool(self._content_length)):
            self._move(_IGNORED_UPGRADE)
        elif self.state is _HEAD:
            self.state = _BODY  # the usual move, a legal one: no look at the table
        else:
            self._move(_BODY)
        self._keep_alive = keep_alive = parser.should_keep_alive()
        self._requests += 1
        self._events.append(
            Request(  # by position, in the fields' order: the per-request path
                method,
                target,
                path,
                query,
                http_version,
                self._headers,
                keep_alive,
                websocket,
                # RFC 9110 §10.1.1: "A server that receives a 100-continue expectation in an
                # HTTP/1.0 request MUST ignore that expectation." (expect_continue)
                self._expect_continue and http_version == "1.1",
                self._content_length,
                self._chunked,
                self._proxied,
            )
        )

    def _split_target(self, method: str, target: bytes) -> tuple[bytes, bytes]:
        """The raw path and query of a target that is not a plain origin-form one (§3.2).

        ``on_headers_complete`` splits origin-form targets (``/path?query``) without a ``#``
        itself; every other target comes here.
        """
        if target == b"*":
            if method != "OPTIONS":
                raise ProtocolError(400, "asterisk-form target is only for OPTIONS")
            return b"*", b""
        # §3.2: a target is a path and a query, never a fragment ("#" is not allowed in
        # either), so one target cannot mean different resources to us and to a proxy.
        if b"#" in target:
            raise ProtocolError(400, "a request target cannot have a fragment")
        try:
            url = httptools.parse_url(target)
        except httptools.HttpParserInvalidURLError:
            raise ProtocolError(400, "invalid request target") from None
        if url.schema not in (b"http", b"https") or not url.host:
            raise ProtocolError(400, "invalid request target")
        if url.userinfo:
            # RFC 9110 §4.2.4: a recipient "SHOULD parse for userinfo and treat its presence
            # as an error"; it is a classic way of hiding the real host from a reader.
            raise ProtocolError(400, "userinfo in a request target")
        # §3.2.2: "the origin server MUST ignore the received Host header field (if any) and
        # instead use the host information of the request-target".
        host = b"[%s]" % url.host if b":" in url.host else url.host  # IPv6: parse_url unwraps
        if url.port is not None:
            host += b":%d" % url.port
        self._headers = [(n, host if n == b"host" else v) for n, v in self._headers]
        return url.path or b"/", url.query or b""

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._max_body is not None and self._body_bytes > self._max_body:
            raise ProtocolError(413, "request body too large")
        self._events.append(Body(body))

    def on_message_complete(self) -> None:
        self._section_bytes, self._section_tail = 0, b""
        state = self.state
        if state is _IGNORED_UPGRADE:
            return  # llhttp skipped the body of an ignored upgrade: the stand-in reads it
        if state is _BODY:
            self.state = _IDLE  # the usual move, a legal one: no look at the table
        elif state is not _UPGRADED:  # an upgrade's end is the new protocol's start
            self._move(_IDLE)
        self._events.append(_END_OF_MESSAGE)


def _through_last_end(events: list[Event]) -> list[Event]:
    for index in range(len(events) - 1, -1, -1):
        if isinstance(events[index], EndOfMessage):
            return events[: index + 1]
    return []


def _protocol_error(exc: Exception) -> ProtocolError:
    """The 4xx for what the parser raised (llhttp's errors, or ours from a callback)."""
    if isinstance(exc, ProtocolError):
        return exc
    if isinstance(exc, httptools.HttpParserCallbackError):
        cause = exc.__context__
        if isinstance(cause, InternalError):
            raise cause  # our bug, not the client's: never passed off as a 400
        return cause if isinstance(cause, ProtocolError) else ProtocolError(400, "invalid request")
    return ProtocolError(400, f"malformed request: {exc}")


#: RFC 9112 §3.2 / RFC 3986 §3.2.2: ``uri-host [ ":" port ]``, an IP literal or a reg-name
#: (unreserved, percent-encoded and sub-delims characters); empty is allowed.
_HOST = re.compile(rb"(?:\[[0-9A-Fa-f:.vV]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?")
_host_match = _HOST.fullmatch  # ~0.3 µs a request: faster than any translate-based check


def _checked_version(version: str, chunked: bool) -> str:
    if version == "1.0":
        # RFC 9112 §6.1: "A server or client that receives an HTTP/1.0 message containing a
        # Transfer-Encoding header field MUST treat the message as if the framing is faulty".
        if chunked:
            raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
        return version
    if version == "0.9":
        raise ProtocolError(400, "HTTP/0.9 requests are not supported")
    raise ProtocolError(505, f"HTTP/{version} is not supported over this connection")


def _asks_for_websocket(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name == b"upgrade" and value.lower() == b"websocket" for name, value in headers)
