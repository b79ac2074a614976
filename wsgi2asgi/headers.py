"""Header field rules, one copy for the server and both adapters (RFC 9110, PEP 3333).

* A field name is a non-empty token (RFC 9110 §5.1).
* A field value holds visible characters, space, tab and obs-text (§5.5): no CR, LF, NUL or
  other control character. PEP 3333 says the same of WSGI response headers: a value "must
  not include any control characters, including carriage returns or linefeeds".
* Hop-by-hop headers belong to the connection, not the app (RFC 9110 §7.6.1; PEP 3333:
  applications "must not" send them).
* ``Content-Length`` is ``1*DIGIT`` (RFC 9110 §8.6); anything else declares no length.
* ``Host`` is ``host[:port]``, an IPv6 literal in brackets (RFC 9110 §7.2, RFC 3986 §3.2.2);
  a request without one is for ``scope["server"]``; a missing port is the scheme's default.

The checks use ``bytes.translate(None, allowed)``, which deletes the allowed bytes in C:
anything left over is invalid. Much faster than a regular expression per header.

Example::

    valid_name(b"x-request-id"), valid_value(b"a\\r\\nevil: 1")     # (True, False)
    split_host_port("[::1]:8000")                                 # ('[::1]', '8000')
"""

from __future__ import annotations

from collections.abc import Iterable

from wsgi2asgi.typing import Scope

__all__ = [
    "DEFAULT_PORTS",
    "HOP_BY_HOP",
    "content_length",
    "request_host",
    "split_host_port",
    "valid_name",
    "valid_value",
]

_TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_VALUE_CHARS = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])

#: Headers of the connection, never passed on by an app (lower-case).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
#: The port a URL scheme means when none is given (RFC 9110 §4.2, RFC 6455 §3).
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def valid_name(name: bytes | bytearray) -> bool:
    """Whether ``name`` is a non-empty RFC 9110 token."""
    return bool(name) and not name.translate(None, _TOKEN_CHARS)


def valid_value(value: bytes | bytearray) -> bool:
    """Whether ``value`` is free of CR, LF, NUL and every other control character but tab."""
    return not value.translate(None, _VALUE_CHARS)


def content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The ``Content-Length`` of a header list, or ``None`` when it has none or not a number.

    RFC 9110 §8.6: ``Content-Length = 1*DIGIT``; the field's surrounding whitespace aside,
    anything else (a sign, a second number) declares no length here.

    >>> content_length([(b"Content-Length", b"12")]), content_length([(b"host", b"a")])
    (12, None)
    """
    for name, value in headers:
        if name.lower() == b"content-length":
            digits = value.strip(b" \t")
            return int(digits) if digits.isdigit() else None
    return None


def split_host_port(text: str) -> tuple[str, str]:
    """Split ``host[:port]`` (IPv6 literals in brackets) into ``(host, port)``.

    >>> split_host_port("[::1]:8000"), split_host_port("example.com")
    (('[::1]', '8000'), ('example.com', ''))
    """
    if text.startswith("["):
        host, _, rest = text.partition("]")
        return host + "]", rest.removeprefix(":")
    host, _, port = text.partition(":")
    return host, port


def request_host(scope: Scope) -> tuple[str, str]:
    """Return ``(host, port)`` of a request, lower-cased, from ``Host`` or ``server``.

    RFC 1034 §3.1: a name ending in ``.`` is fully qualified, the same host; one trailing dot
    is removed. The port is ``""`` when the ``Host`` header gives none.

    >>> request_host({"headers": [(b"host", b"Example.COM.:8080")]})
    ('example.com', '8080')
    """
    for name, value in scope.get("headers", ()):
        if name.lower() == b"host":
            host, port = split_host_port(value.decode("latin-1").lower())
            return host.removesuffix("."), port
    server = scope.get("server")
    if server:
        return str(server[0]).lower(), "" if server[1] is None else str(server[1])
    return "", ""
