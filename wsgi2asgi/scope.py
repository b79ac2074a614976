"""The ASGI side of a request, built from a WSGI environ: the inverse of ``environ.py``.

Pure functions, no I/O: environ in, scope out; ``http.response.start`` in, ``start_response``
arguments out. Rules this module keeps:

* CGI values are native strings holding bytes: "strings that are decoded from bytes using the
  ISO-8859-1 (latin-1) encoding" (PEP 3333, "Unicode Issues"). Each is encoded back to the
  bytes the server saw; a value that is not latin-1 text is a broken environ (``ValueError``).
* ``root_path`` is ``SCRIPT_NAME`` and ``path`` is ``SCRIPT_NAME + PATH_INFO`` (ASGI
  ``www.rst``: "path ... The root_path is included"), both as text: the bytes decoded as UTF-8
  ("with percent-encoded sequences and UTF-8 byte sequences decoded into characters"); bytes
  that are not UTF-8 become U+FFFD, as uvicorn does. An empty path is ``/``.
* ``raw_path`` is the path as the client sent it when the server tells us (``REQUEST_URI`` or
  gunicorn's ``RAW_URI``: query and any ``scheme://authority`` removed), it is plain ASCII, and
  it percent-decodes to the same bytes as the path; otherwise the path bytes are re-quoted.
  So ``%2F`` survives when the server reports it, and ``raw_path`` always agrees with ``path``.
* ``HTTP_FOO_BAR`` becomes the header ``foo-bar``; ``CONTENT_TYPE`` and ``CONTENT_LENGTH``
  become ``content-type`` and ``content-length`` when not empty (CGI: empty means absent), and
  win over an ``HTTP_CONTENT_TYPE`` / ``HTTP_CONTENT_LENGTH`` some servers also set.
* ``client`` and ``server`` are ``(host, int port)``; an unknown client port is ``0`` and an
  unknown server port is the scheme's default. No ``REMOTE_ADDR`` means ``client`` is None.
* The body length is ``CONTENT_LENGTH`` (digits only: anything else is a malformed request),
  else "up to EOF" if ``wsgi.input_terminated`` is set, else nothing (PEP 3333).
* The response: a status from 200 to 599 with the reason phrase of ``http.HTTPStatus``; header
  names are tokens, values have no control character but HTAB (a CR or LF would split the
  response); hop-by-hop headers are dropped ("applications ... must not" send them, PEP 3333).

Example::

    scope = build_scope(environ, state=lifespan_state)
    status, headers = start_response_args({"type": "http.response.start", "status": 200})
"""

from __future__ import annotations

import http
import logging
from typing import Any
from urllib.parse import quote_from_bytes, unquote_to_bytes

from wsgi2asgi.exceptions import ASGIContractError
from wsgi2asgi.headers import DEFAULT_PORTS, HOP_BY_HOP, valid_name, valid_value
from wsgi2asgi.typing import Environ, HTTPScope, Message

__all__ = ["build_scope", "request_body_length", "start_response_args", "status_line"]

logger = logging.getLogger(__name__)

# RFC 3986: pchar = unreserved / pct-encoded / sub-delims / ":" / "@" (and "/" between them).
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_HTTP_VERSIONS = {
    "HTTP/1.0": "1.0",
    "HTTP/1.1": "1.1",
    "HTTP/2": "2",
    "HTTP/2.0": "2",
    "HTTP/3": "3",
    "HTTP/3.0": "3",
}
_BODY_HEADERS = ("CONTENT_TYPE", "CONTENT_LENGTH")


def build_scope(environ: Environ, *, state: dict[str, Any] | None = None) -> HTTPScope:
    """Build the ASGI ``http`` scope for a PEP 3333 environ.

    >>> scope = build_scope({"REQUEST_METHOD": "GET", "SCRIPT_NAME": "/app",
    ...     "PATH_INFO": "/caf\\u00c3\\u00a9", "QUERY_STRING": "a=1", "SERVER_NAME": "h",
    ...     "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http"})
    >>> scope["path"], scope["raw_path"], scope["root_path"]
    ('/app/caf\\xe9', b'/app/caf%C3%A9', '/app')

    Args:
        environ: the WSGI environ.
        state: the lifespan state (ASGI "state" extension); the scope gets a shallow copy.

    Returns:
        The scope, with every key of the ASGI spec filled in.

    Raises:
        ValueError: the environ has no ``REQUEST_METHOD``, or a CGI value that is not a
            latin-1 native string.
    """
    if not environ.get("REQUEST_METHOD"):
        raise ValueError("the environ has no REQUEST_METHOD (PEP 3333 requires it)")
    script_name = _cgi_bytes(environ, "SCRIPT_NAME")
    full_path = script_name + _cgi_bytes(environ, "PATH_INFO") or b"/"
    scheme = str(environ.get("wsgi.url_scheme") or "http")
    scope: HTTPScope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        # ASGI: http_version is 'One of "1.0", "1.1" or "2"'.
        "http_version": _HTTP_VERSIONS.get(str(environ.get("SERVER_PROTOCOL", "")).upper(), "1.1"),
        # ASGI: "method (Unicode string) -- The HTTP method name, uppercased."
        "method": str(environ["REQUEST_METHOD"]).upper(),
        "scheme": scheme,
        "path": full_path.decode("utf-8", "replace"),
        "raw_path": _raw_path(environ, full_path),
        "root_path": script_name.decode("utf-8", "replace"),
        "query_string": _cgi_bytes(environ, "QUERY_STRING"),
        "headers": _headers(environ),
        "client": _client(environ),
        "server": _server(environ, scheme),
        "extensions": {},
    }
    if state is not None:
        # ASGI lifespan "state": "a copy of the namespace passed into the lifespan".
        scope["state"] = dict(state)
    return scope


def _cgi_bytes(environ: Environ, key: str) -> bytes:
    value = environ.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"environ[{key!r}] must be a native string, not {type(value).__name__}")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"environ[{key!r}] is not latin-1 text: {value!r}") from None


def _raw_path(environ: Environ, full_path: bytes) -> bytes:
    for key in ("REQUEST_URI", "RAW_URI"):
        if environ.get(key):
            sent = _target_path(_cgi_bytes(environ, key))
            if sent is not None and unquote_to_bytes(sent) == full_path:
                return sent
    return quote_from_bytes(full_path, safe=_PATH_SAFE).encode("ascii")


def _target_path(target: bytes) -> bytes | None:
    """The path of a request target (origin or absolute form), or None if it is not clean."""
    target = target.partition(b"?")[0].partition(b"#")[0]
    if not target.startswith(b"/"):
        scheme, sep, rest = target.partition(b"://")
        if not sep or not scheme.isalpha():
            return None
        target = b"/" + rest.partition(b"/")[2]
    # Only what a client may send unescaped: visible ASCII, no spaces or controls.
    if any(byte <= 0x20 or byte >= 0x7F for byte in target):
        return None
    return target


def _headers(environ: Environ) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    for key in environ:
        if key.startswith("HTTP_"):
            if key[5:] in _BODY_HEADERS and environ.get(key[5:]):
                continue  # the CGI variable says the same thing and wins
            name = key[5:]
        elif key in _BODY_HEADERS:
            if not environ[key]:
                continue
            name = key
        else:
            continue
        value = _cgi_bytes(environ, key)
        headers.append((name.lower().replace("_", "-").encode("latin-1"), value))
    return headers


def _client(environ: Environ) -> tuple[str, int] | None:
    host = environ.get("REMOTE_ADDR")
    if not host:
        return None
    return str(host), _port(environ.get("REMOTE_PORT"), 0)


def _server(environ: Environ, scheme: str) -> tuple[str, int | None] | None:
    host = environ.get("SERVER_NAME")
    if not host:
        return None
    return str(host), _port(environ.get("SERVER_PORT"), DEFAULT_PORTS.get(scheme, 80))


def _port(value: object, default: int) -> int:
    try:
        port = int(str(value))
    except ValueError:
        return default
    return port if 0 <= port <= 65535 else default


def request_body_length(environ: Environ) -> int | None:
    """How many body bytes to read from ``wsgi.input``: an int, or None for "up to EOF".

    >>> request_body_length({"CONTENT_LENGTH": "12"}), request_body_length({})
    (12, 0)
    >>> request_body_length({"wsgi.input_terminated": True}) is None
    True

    Raises:
        ValueError: ``CONTENT_LENGTH`` is set but is not a decimal number.
    """
    value = environ.get("CONTENT_LENGTH")
    if value:
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise ValueError(f"invalid CONTENT_LENGTH {value!r}")
        return int(value)
    # PEP 3333: with wsgi.input_terminated set, the application may read "until EOF".
    return None if environ.get("wsgi.input_terminated") else 0


def start_response_args(message: Message) -> tuple[str, list[tuple[str, str]]]:
    """Check an ``http.response.start`` message and return its ``start_response`` arguments.

    >>> start_response_args({"type": "http.response.start", "status": 404,
    ...     "headers": [(b"content-type", b"text/plain"), (b"connection", b"close")]})
    ('404 Not Found', [('content-type', 'text/plain')])

    Raises:
        ASGIContractError: a status outside 200-599, a header that is not a pair of byte
            strings, an invalid header name, or a control character in a value.
    """
    status = message.get("status")
    if type(status) is not int or not 200 <= status <= 599:
        raise ASGIContractError(f"invalid status {status!r} in http.response.start")
    headers: list[tuple[str, str]] = []
    for header in message.get("headers", ()):
        try:
            name, value = header
        except (TypeError, ValueError):
            raise ASGIContractError(f"a header must be a (name, value) pair: {header!r}") from None
        if not isinstance(name, bytes | bytearray) or not isinstance(value, bytes | bytearray):
            raise ASGIContractError(f"header name and value must be bytes: {header!r}")
        if not valid_name(name):
            raise ASGIContractError(f"invalid response header name {bytes(name)!r}")
        if not valid_value(value):
            raise ASGIContractError(f"control character in response header {bytes(name)!r}")
        if name.lower() in HOP_BY_HOP:
            logger.debug("dropping hop-by-hop response header %r (PEP 3333)", bytes(name))
            continue
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    return status_line(status), headers


def status_line(status: int) -> str:
    """The WSGI status string for a status code.

    >>> status_line(200), status_line(299)
    ('200 OK', '299 Unknown')
    """
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    # PEP 3333: "a status code and a reason phrase, in that order and separated by a single space"
    return f"{status} {phrase}"
