"""HTTP/1.1 responses without I/O: status, headers and body pieces in, framed bytes out.

Rules this module keeps (RFC 9112 unless noted):

* ``Content-Length`` when the app gives one, and then exactly that many bytes (more or fewer is
  an :class:`~wsgi2asgi.exceptions.ASGIContractError`: the connection is closed rather than a
  short body passed off as whole); else chunked for HTTP/1.1, else close-delimited for HTTP/1.0.
* ``HEAD`` and 1xx/204/304 responses carry no body (RFC 9110 §6.4.1).
* A status outside 100-999, a header name or value that is not valid (CR, LF, NUL or another
  control character: response splitting), or a ``Content-Length`` that is not one number, is
  refused before a byte is written.
* Every refusal is the app's mistake, and raises the error ``asgi_to_wsgi`` raises for the same
  one: :class:`~wsgi2asgi.exceptions.ASGIContractError`.
* ``Transfer-Encoding``, ``Connection`` and ``Date`` are ours; ``Date`` and ``Server`` are added
  (each can be turned off), and the ``--header`` ones the app's response does not set itself
  (:class:`ServerHeaders`).

Example::

    framing = ResponseFraming("GET", "1.1", keep_alive=True)
    wire = framing.head(200, [(b"content-type", b"text/plain")])   # chunked: no length given
    wire += framing.body(b"hello") + framing.end()
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from email.utils import formatdate
from http import HTTPStatus

from wsgi2asgi.exceptions import ASGIContractError
from wsgi2asgi.headers import valid_name, valid_value
from wsgi2asgi.responses import plain_body, plain_headers

__all__ = ["ResponseFraming", "ServerHeaders", "error_response", "http_date"]


@dataclasses.dataclass(frozen=True)
class ServerHeaders:
    """The headers the server adds to every response (``--server-header``, ``--date-header``,
    ``--header``); each ``extra`` one only when the app's response has none of that name.

    Example::

        ServerHeaders(server=None, extra=((b"x-frame-options", b"DENY"),))
    """

    server: bytes | None = b"wsgi2asgi"  #: the ``Server`` value, ``None`` for none
    date: bool = True  #: send ``Date`` (RFC 9110 §6.6.1: an origin server with a clock MUST)
    extra: tuple[tuple[bytes, bytes], ...] = ()  #: lower-case names


class ResponseFraming:
    """Serialise one response: the head, body pieces and the end, framed correctly.

    Args:
        request_method: the request's method (``HEAD`` responses carry no body).
        http_version: the request's version (``1.0`` gets no chunked encoding).
        keep_alive: whether the connection may stay open after this response.
        added: the headers the server adds.
    """

    __slots__ = (
        "added",
        "chunked",
        "head_only",
        "http_version",
        "keep_alive",
        "no_body",
        "remaining",
    )

    def __init__(
        self,
        request_method: str,
        http_version: str,
        keep_alive: bool,
        added: ServerHeaders = ServerHeaders(),  # noqa: B008 - frozen, shared on purpose
    ) -> None:
        self.head_only = self.no_body = request_method == "HEAD"
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.added = added
        self.chunked = False
        self.remaining: int | None = None  # Content-Length bytes still to send

    def head(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """Serialise the status line and headers.

        Raises:
            ASGIContractError: an invalid status, header name or value, or Content-Length
                (never sent).
        """
        if not 100 <= status <= 999:
            raise ASGIContractError(f"invalid status {status} in http.response.start")
        if status < 200 or status == 204 or status == 304:
            self.no_body = True
        line = _STATUS_LINES.get(status)
        parts = [line if line is not None else b"HTTP/1.1 %d \r\n" % status]
        has_length = connection_close = app_server = False
        added = self.added
        taken: set[bytes] | None = set() if added.extra else None
        fields = _FIELDS
        for item in headers:
            try:
                field = fields.get(item)
            except TypeError:  # not hashable (a list, a bytearray): read it as new
                field = None
            if field is None:
                field = _field(item)
            kind = field[1]
            if kind is None:
                parts.append(field[0])
            elif kind is _LENGTH:
                if has_length:
                    raise ASGIContractError("duplicate Content-Length in the response")
                has_length = True
                self.remaining = field[2]
                parts.append(field[0])
            elif kind is _SERVER:
                app_server = True
                parts.append(field[0])
            elif kind is _CLOSE:
                connection_close = True
            if taken is not None:
                taken.add(field[3])
        if connection_close:
            self.keep_alive = False
        if not has_length and not self.no_body:
            if self.http_version == "1.1":
                self.chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                self.keep_alive = False  # close-delimited body
        if added.date:
            date = _date  # http_date(), inlined (once per response): the line
            parts.append(date[2] if _clock() < date[0] else _new_date()[2])
        if added.server and not app_server:
            parts += (b"server: ", added.server, b"\r\n")
        if taken is not None:
            parts += [b"%s: %s\r\n" % (n, v) for n, v in added.extra if n not in taken]
        if not self.keep_alive:
            parts.append(b"connection: close\r\n\r\n")
        elif self.http_version == "1.0":
            parts.append(b"connection: keep-alive\r\n\r\n")
        else:
            parts.append(b"\r\n")
        return b"".join(parts)

    def body(self, data: bytes) -> bytes:
        """Frame one body piece.

        Raises:
            ASGIContractError: more bytes than the response's Content-Length.
        """
        if self.no_body or not data:
            return b""
        if self.remaining is not None:
            if len(data) > self.remaining:
                raise ASGIContractError("response body longer than its Content-Length")
            self.remaining -= len(data)
            return data
        if self.chunked:
            return b"%x\r\n%s\r\n" % (len(data), data)
        return data

    def end(self) -> bytes:
        """Frame the end of the body.

        Raises:
            ASGIContractError: fewer bytes than the response's Content-Length.
        """
        if self.remaining and not self.no_body:
            raise ASGIContractError("response body shorter than its Content-Length")
        if self.chunked and not self.no_body:
            return b"0\r\n\r\n"
        return b""

    def last(self, data: bytes) -> bytes:
        """Frame the last body piece and the end: ``body(data) + end()`` in one step.

        Raises:
            ASGIContractError: more or fewer bytes than the response's Content-Length.
        """
        if self.no_body:
            return b""
        remaining = self.remaining
        if remaining is not None:
            if len(data) != remaining:
                longer = len(data) > remaining
                raise ASGIContractError(
                    f"response body {'longer' if longer else 'shorter'} than its Content-Length"
                )
            self.remaining = 0
            return data
        if self.chunked:
            return b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data) if data else b"0\r\n\r\n"
        return data


#: The response headers the framing reads (lower-case), each to what it is.
_LENGTH, _SERVER, _CONNECTION, _OURS, _CLOSE = "length", "server", "connection", "ours", "close"
_FRAMING = {
    b"content-length": _LENGTH,
    b"server": _SERVER,
    b"connection": _CONNECTION,  # ours; the app's "close" is heeded
    b"transfer-encoding": _OURS,  # framing is ours
    b"date": _OURS,  # ours, cached per second
}

#: A response header read: its line as sent (empty when dropped), what the framing makes of
#: it (``None``: nothing, passed on; else one of the kinds above), its Content-Length, its
#: lower-case name.
_Field = tuple[bytes, str | None, int, bytes]
#: Headers already read, by ``(name, value)``: most responses repeat the same ones (a
#: Content-Type, a Content-Length), and a repeated one costs a lookup instead of a check, a
#: lower-case copy and a line. Bounded: cleared when full, lines longer than a bound not kept.
_FIELDS: dict[tuple[bytes, bytes], _Field] = {}
_MAX_FIELDS = 1024
_MAX_FIELD_LINE = 512


def _field(item: tuple[bytes, bytes]) -> _Field:
    """Read one response header (and remember it, see ``_FIELDS``).

    Raises:
        ASGIContractError: an invalid name or value, or a Content-Length that is not a number.
    """
    name, value = item
    if name.__class__ is not bytes or value.__class__ is not bytes:
        name, value = bytes(name), bytes(value)
    if not valid_name(name) or not valid_value(value):
        raise ASGIContractError(f"invalid response header {name!r}")
    lower = name.lower()
    kind = _FRAMING.get(lower)
    length = 0
    line = b"%s: %s\r\n" % (name, value)
    if kind is _LENGTH:
        length = _content_length(value)
    elif kind is _CONNECTION or kind is _OURS:
        # Transfer-Encoding, Connection and Date are ours: dropped (Connection: close heeded).
        kind = _CLOSE if kind is _CONNECTION and value.lower() == b"close" else _OURS
        line = b""
    field = (line, kind, length, lower)
    if len(line) <= _MAX_FIELD_LINE:
        if len(_FIELDS) >= _MAX_FIELDS:
            _FIELDS.clear()
        _FIELDS[name, value] = field
    return field


def _content_length(value: bytes) -> int:
    # RFC 9110 §8.6: "Content-Length = 1*DIGIT" (the field's own whitespace aside).
    digits = value.strip(b" \t")
    if not digits.isdigit():
        raise ASGIContractError(f"invalid Content-Length {value!r} in the response")
    return int(digits)


#: The status line of every registered status, built once (not per response).
_STATUS_LINES = {
    int(status): b"HTTP/1.1 %d %s\r\n" % (status, status.phrase.encode("ascii"))
    for status in HTTPStatus
}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


_clock = time.time
#: The current second's ``Date``: until when it holds (the next second), its value, its line.
_date: tuple[float, bytes, bytes] = (0.0, b"", b"")


def http_date() -> bytes:
    """The ``Date`` header value, recomputed at most once per second."""
    date = _date
    return date[1] if _clock() < date[0] else _new_date()[1]


def _new_date() -> tuple[float, bytes, bytes]:
    global _date
    now = int(_clock())
    value = formatdate(now, usegmt=True).encode("ascii")
    _date = (now + 1.0, value, b"date: %s\r\n" % value)
    return _date


def error_response(status: int, reason: str) -> bytes:
    """A complete plain-text error response that closes the connection.

    Its body and headers are those of every answer the package gives of its own accord
    (:mod:`wsgi2asgi.responses`): ``Bad Request: invalid header`` for ``(400, "invalid header")``.
    """
    body = plain_body(status, reason)
    fields = b"".join(b"%s: %s\r\n" % field for field in plain_headers(body, close=True))
    return b"%s%sdate: %s\r\nserver: wsgi2asgi\r\n\r\n%s" % (
        _status_line(status),
        fields,
        http_date(),
        body,
    )
