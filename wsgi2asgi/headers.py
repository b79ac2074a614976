"""Header field rules, one copy for the server and both adapters (RFC 9110, PEP 3333).

* A field name is a non-empty token (RFC 9110 §5.1).
* A field value holds visible characters, space, tab and obs-text (§5.5): no CR, LF, NUL or
  other control character. PEP 3333 says the same of WSGI response headers: a value "must
  not include any control characters, including carriage returns or linefeeds".
* Hop-by-hop headers belong to the connection, not the app (RFC 9110 §7.6.1; PEP 3333:
  applications "must not" send them).

The checks use ``bytes.translate(None, allowed)``, which deletes the allowed bytes in C:
anything left over is invalid. Much faster than a regular expression per header.

Example::

    valid_name(b"x-request-id"), valid_value(b"a\\r\\nevil: 1")     # (True, False)
"""

from __future__ import annotations

__all__ = ["HOP_BY_HOP", "valid_name", "valid_value"]

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


def valid_name(name: bytes | bytearray) -> bool:
    """Whether ``name`` is a non-empty RFC 9110 token."""
    return bool(name) and not name.translate(None, _TOKEN_CHARS)


def valid_value(value: bytes | bytearray) -> bool:
    """Whether ``value`` is free of CR, LF, NUL and every other control character but tab."""
    return not value.translate(None, _VALUE_CHARS)
