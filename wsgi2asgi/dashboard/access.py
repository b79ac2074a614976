"""Who may see the dashboard, and which requests may change something: never public by accident.

Rules this module keeps:

* A request is let in when it carries the token (``Authorization: Bearer TOKEN``, the
  ``wsgi2asgi_dashboard`` cookie, or ``?token=TOKEN``; compared in constant time), or when it
  comes from this machine: a loopback client address (``127.0.0.0/8``, ``::1``), a loopback
  ``Host`` (``localhost``, ``127.0.0.1``, ``[::1]``: a DNS-rebinding page has its own name
  there), and no proxy header (``Forwarded``, ``X-Forwarded-For``, ``X-Real-IP``: a proxy on
  this machine forwards other people's requests from the loopback). Everything else: 403.
* A request that changes something (a ``POST``) must also be one a page of another site
  cannot make: it carries the ``X-Wsgi2asgi-Dashboard`` header (a custom header, which a
  cross-origin page can only send after a CORS preflight that is never granted), and its
  ``Origin``, when present, is the dashboard's own.
* A WebSocket handshake's ``Origin``, when present, must be the dashboard's own: browsers do
  not apply CORS to WebSockets, so any page could otherwise open one to ``127.0.0.1``.

Example::

    rule = AccessRule(token=os.environ.get("WSGI2ASGI_DASHBOARD_TOKEN"))
    rule.refusal(scope)            # None: let in; else the one-line reason for the 403
"""

from __future__ import annotations

import hmac
import ipaddress
import urllib.parse

from wsgi2asgi.headers import request_host
from wsgi2asgi.typing import Scope

__all__ = ["COOKIE", "CSRF_HEADER", "AccessRule", "token_in_query"]

#: The cookie that holds the token once a page was opened with ``?token=``.
COOKIE = "wsgi2asgi_dashboard"
#: The header a ``POST`` must carry (the page's script sends it).
CSRF_HEADER = b"x-wsgi2asgi-dashboard"

_PROXY_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip", b"x-forwarded-host"})
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_MIN_TOKEN = 16


class AccessRule:
    """Decide whether a request may see the dashboard, and whether it may change something.

    Example::

        AccessRule(token="a-long-random-string").refusal(scope)

    Args:
        token: the secret that lets in clients from other machines (``None``: none are).

    Raises:
        ValueError: a token shorter than 16 characters (it could be guessed).
    """

    def __init__(self, token: str | None = None) -> None:
        if token is not None and len(token) < _MIN_TOKEN:
            raise ValueError(f"the dashboard token must be at least {_MIN_TOKEN} characters")
        self.token = token.encode() if token is not None else None

    def refusal(self, scope: Scope) -> str | None:
        """Why ``scope`` may not see the dashboard, or ``None`` when it may."""
        if self.has_token(scope) or self.is_local(scope):
            return None
        if self.token is None:
            return (
                "the dashboard answers this machine only (loopback); to open it to others, "
                "start the server with --dashboard-token (or WSGI2ASGI_DASHBOARD_TOKEN)"
            )
        return "the dashboard needs its token (?token=, a Bearer token or its cookie)"

    def change_refusal(self, scope: Scope) -> str | None:
        """Why a request that changes something must be refused (CSRF), or ``None``."""
        headers = dict(scope.get("headers", ()))
        if CSRF_HEADER not in headers:
            return f"a change needs the {CSRF_HEADER.decode()} header"
        return self.origin_refusal(scope)

    def origin_refusal(self, scope: Scope) -> str | None:
        """Why the request's ``Origin`` is not the dashboard's own, or ``None``."""
        origin = dict(scope.get("headers", ())).get(b"origin")
        if origin is None:
            return None
        parts = urllib.parse.urlsplit(origin.decode("latin-1"))
        host, port = request_host(scope)
        default = "443" if scope.get("scheme") in ("https", "wss") else "80"
        theirs = (parts.hostname or "", str(parts.port or default))
        if theirs != (host.strip("[]"), port or default):
            return f"Origin {origin.decode('latin-1')!r} is not this dashboard's"
        return None

    def is_token(self, text: str) -> bool:
        """Whether ``text`` is the token (constant time)."""
        return self.token is not None and hmac.compare_digest(text.encode(), self.token)

    def has_token(self, scope: Scope) -> bool:
        """Whether the request carries the token (header, cookie or query)."""
        if self.token is None:
            return False
        return any(hmac.compare_digest(given, self.token) for given in _offered(scope))

    def is_local(self, scope: Scope) -> bool:
        """Whether the request comes from this machine, not through a proxy, to a local name."""
        client = scope.get("client")
        if not client or not _is_loopback(str(client[0])):
            return False
        names = set()
        for name, _ in scope.get("headers", ()):
            names.add(name.lower())
        if names & _PROXY_HEADERS:
            return False
        if b"host" not in names:
            return True  # HTTP/1.0 without Host: no browser, so no rebinding
        host, _ = request_host(scope)
        return host in _LOOPBACK_NAMES or host.endswith(".localhost") or _is_loopback(host)


def token_in_query(scope: Scope) -> str | None:
    """The ``token`` of the query string, if any."""
    query = scope.get("query_string", b"").decode("latin-1")
    values = urllib.parse.parse_qs(query).get("token")
    return values[0] if values else None


def _offered(scope: Scope) -> list[bytes]:
    """Every token the request offers: Bearer, cookie, query."""
    offered: list[bytes] = []
    for name, value in scope.get("headers", ()):
        name = name.lower()
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            offered.append(bytes(value[7:]).strip())
        elif name == b"cookie":
            for pair in bytes(value).split(b";"):
                key, _, cookie = pair.strip().partition(b"=")
                if key == COOKIE.encode():
                    offered.append(urllib.parse.unquote_to_bytes(cookie))
    query = token_in_query(scope)
    if query is not None:
        offered.append(query.encode())
    return offered


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
