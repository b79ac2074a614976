"""Open the listening sockets (``--host``/``--port``, ``--uds``, ``--fd``) before the app starts.

Rules this module keeps:

* Sockets are bound before the app is imported or its lifespan started, so a port in use, a
  host that is not this machine's or a missing directory stops the server at once, with one
  line naming the address and the reason (:class:`~wsgi2asgi.exceptions.ConfigError`), and
  the app's startup (migrations, connections) never runs for nothing. Connections that
  arrive during the startup wait in the backlog, as under ``--workers`` and gunicorn.
* ``--host`` is an IP address or a host name (RFC 1123 §2.1: letters, digits and hyphens in
  dot-separated labels, the last one not all digits, so ``256.0.0.1`` is a mistyped address,
  not a name); anything else is refused before any lookup. A name is resolved with
  ``getaddrinfo`` and every address it has is bound (``localhost``: ``::1`` and
  ``127.0.0.1``), as ``asyncio``'s ``create_server`` does.
* ``--uds``: an existing socket file at the path is replaced (a previous run's); any other
  file there is an error, never deleted.

Example::

    sockets = bind_config(config)          # [<socket ... laddr=('127.0.0.1', 8000)>]
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import socket
import stat
from typing import TYPE_CHECKING, Any

from wsgi2asgi.exceptions import ConfigError

if TYPE_CHECKING:
    from wsgi2asgi.server.config import Config

__all__ = ["bind", "bind_config", "check_host"]

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def bind_config(config: Config) -> list[socket.socket]:
    """The listening sockets ``config`` asks for (``--fd``, ``--uds``, or host and port).

    Raises:
        ConfigError: one line naming the address and why it cannot be listened on.
    """
    if config.fd is not None:
        try:
            return [socket.socket(fileno=config.fd)]  # family and type read from the fd
        except OSError as exc:
            raise ConfigError(f"cannot listen on --fd {config.fd}: {_reason(exc)}") from None
    return bind(config.host, config.port, config.uds, config.backlog)


def bind(host: str, port: int, uds: str | None, backlog: int) -> list[socket.socket]:
    """Bind and listen on ``uds``, or on every address ``host`` has at ``port``.

    Example::

        bind("localhost", 8000, None, 2048)    # two sockets: [::1]:8000 and 127.0.0.1:8000

    Raises:
        ConfigError: the host is malformed or unknown, or an address cannot be bound.
    """
    if uds is not None:
        return [_bind_unix(uds, backlog)]
    check_host(host)
    where = _address(host, port)
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {where}: unknown host ({exc.strerror})") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            _bind_inet(sock, address, backlog, _address(str(address[0]), port))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def check_host(host: str) -> None:
    """Refuse a ``--host`` that is neither an IP address nor a host name (no lookup is made).

    Raises:
        ConfigError: ``--host '256.0.0.1' is not an IP address or a host name``.
    """
    if not host:
        return  # every interface, as asyncio reads an empty host
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    if (
        len(host) <= 253
        and all(_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
    ):
        return
    raise ConfigError(f"--host {host!r} is not an IP address or a host name")


def _bind_inet(sock: socket.socket, address: Any, backlog: int, where: str) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sock.family == socket.AF_INET6:
        # One socket per family, as asyncio does: the IPv6 one must not claim IPv4 too.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        hint = " (ports below 1024 need privileges)" if exc.errno == errno.EACCES else ""
        raise ConfigError(f"cannot listen on {where}: {_reason(exc)}{hint}") from None


def _bind_unix(path: str, backlog: int) -> socket.socket:
    where = f"unix:{path}"
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise ConfigError(f"cannot listen on {where}: the directory {directory} does not exist")
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)  # a previous server's socket file
        else:
            raise ConfigError(f"cannot listen on {where}: a file that is not a socket is there")
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {where}: {_reason(exc)}") from None
    return sock


def _address(host: str, port: int) -> str:
    """``127.0.0.1:8000``, ``[::1]:8000``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(exc: OSError) -> str:
    """``address already in use``: the system's message, as part of a sentence."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]
