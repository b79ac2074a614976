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

    def __init__(
        self,
        request_method: str,
        http_version: str,
        keep_alive: bool,
        added: ServerHeaders = ServerHeaders(),  # noqa: B008 - frozen, shared on purpose
    ) -> None:
        self.head_only = request_method == "HEAD"
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.added = added
        self.chunked = False
        self.no_body = self.head_only
        self.remaining: int | None = None  # Content-Length bytes still to send

    def head(self, status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
        """Serialise the status line and headers (``status`` and headers already validated).

        Raises:
            ASGIContractError: an invalid status, header name or value, or Content-Length
                (never sent).
        """
        if not 100 <= status <= 999:
            raise ASGIContractError(f"invalid status {status} in http.response.start")
        if status < 200 or status in (204, 304):
            self.no_body = True
        lines = [_status_line(status)]
        has_length = False
        connection_close = False
        app_server = False
        for name, value in headers:
            if not valid_name(name) or not valid_value(value):
                raise ASGIContractError(f"invalid response header {name!r}")
            lower = name.lower()
            if lower == b"content-length":
                if has_length:
                    raise ASGIContractError("duplicate Content-Length in the response")
                has_length = True
                self.remaining = _content_length(value)
            elif lower == b"transfer-encoding":
                continue  # framing is ours
            elif lower == b"connection":
                if value.lower() == b"close":
                    connection_close = True
                continue
            elif lower == b"date":
                continue  # ours, cached per second
            elif lower == b"server":
                app_server = True
            lines.append(b"%s: %s\r\n" % (name, value))
        if connection_close:
            self.keep_alive = False
        if not has_length and not self.no_body:
            if self.http_version == "1.1":
                self.chunked = True
                lines.append(b"transfer-encoding: chunked\r\n")
            else:
                self.keep_alive = False  # close-delimited body
        added = self.added
        if added.date:
            lines.append(b"date: %s\r\n" % http_date())
        if added.server and not app_server:
            lines.append(b"server: %s\r\n" % added.server)
        if added.extra:
            lines += _extra_lines(added.extra, headers)
        if not self.keep_alive:
            lines.append(b"connection: close\r\n")
        elif self.http_version == "1.0":
            lines.append(b"connection: keep-alive\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

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


def _content_length(value: bytes) -> int:
    # RFC 9110 §8.6: "Content-Length = 1*DIGIT" (the field's own whitespace aside).
    digits = value.strip(b" \t")
    if not digits.isdigit():
        raise ASGIContractError(f"invalid Content-Length {value!r} in the response")
    return int(digits)


def _extra_lines(
    extra: tuple[tuple[bytes, bytes], ...], headers: list[tuple[bytes, bytes]]
) -> list[bytes]:
    """The ``--header`` lines whose name the app's ``headers`` do not already hold."""
    taken = {name.lower() for name, _ in headers}
    return [b"%s: %s\r\n" % (name, value) for name, value in extra if name not in taken]


#: The status line of every registered status, built once (not per response).
_STATUS_LINES = {
    int(status): b"HTTP/1.1 %d %s\r\n" % (status, status.phrase.encode("ascii"))
    for status in HTTPStatus
}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """The ``Date`` header value, recomputed at most once per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]


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
