"""``Config``: every server setting in one validated, immutable object. No I/O here.

Example::

    config = Config(app="myproject.asgi:application", port=8080, limit_concurrency=1000)
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence
from typing import Any, Literal

from wsgi2asgi.exceptions import ConfigError
from wsgi2asgi.prefixes import mount_prefix

__all__ = ["Config"]

Interface = Literal["auto", "asgi3", "asgi2", "wsgi"]


@dataclasses.dataclass(frozen=True)
class Config:
    """Server settings; names and defaults follow uvicorn's where the meaning is the same.

    Raises:
        ConfigError: an invalid combination or value (raised by ``__post_init__``).
    """

    app: Any = None  #: an ASGI/WSGI callable, or ``"module:attr"``
    mounts: Sequence[tuple[str, Any]] = ()  #: ``(prefix, app or "module:attr")`` pairs
    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    fd: int | None = None
    factory: bool = False
    interface: Interface = "auto"
    app_dir: str = "."
    root_path: str = ""
    lifespan: Literal["auto", "on", "off"] = "auto"
    proxy_headers: bool = True
    forwarded_allow_ips: Sequence[str] = ("127.0.0.1",)
    limit_concurrency: int | None = None
    limit_max_requests: int | None = None  #: exit (gracefully) after this many requests
    limit_max_requests_jitter: int = 0  #: add 0..jitter to it, so workers do not restart together
    backlog: int = 2048
    # Longer than common client pool expiries (httpx 5 s, aiohttp 15 s): the client then
    # closes an idle connection first. Closing it from our side at the moment the client
    # reuses it loses that request (the soak found exactly this with equal 5 s timeouts).
    timeout_keep_alive: float = 20.0
    timeout_request_header: float = 10.0
    timeout_request_body: float = 30.0  #: longest pause between two pieces of a request body
    timeout_graceful_shutdown: float | None = 30.0
    #: Seconds a response may make no progress while the client does not read it (the write
    #: buffer full); then the connection is closed and the app told (None: wait for ever).
    timeout_write: float | None = 60.0
    max_target: int = 8190
    max_header_bytes: int = 65536
    max_headers: int = 100
    max_body: int | None = None
    ws_max_size: int = 16 * 1024 * 1024
    ws_max_queue: int = 32  #: WebSocket messages queued for the app before reading pauses
    #: Seconds without a frame from a WebSocket client before the server pings it (None: never);
    #: a client that then stays silent for ``ws_ping_timeout`` is closed with 1011. Finds peers
    #: that vanished without a FIN (a dropped NAT mapping, a sleeping laptop), which would
    #: otherwise hold their session, and the app's task, forever.
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    max_threads: int = 32
    malloc_arena_max: int | None = None  #: cap glibc malloc arenas (see server/allocator.py)
    multiprocess: bool = False  #: ``wsgi.multiprocess``: true for workers under ``--workers``
    access_log: bool = True
    log_level: str = "info"
    server_header: bool = True
    debug_blocking: float | None = None  #: milliseconds; log code that holds the loop longer
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None

    def __post_init__(self) -> None:
        if self.app is None and not self.mounts:
            raise ConfigError("give an app, or at least one --mount")
        if self.port < 0 or self.port > 65535:
            raise ConfigError(f"port must be 0-65535, not {self.port}")
        if self.uds is not None and self.fd is not None:
            raise ConfigError("--uds and --fd cannot be used together")
        if self.interface not in ("auto", "asgi3", "asgi2", "wsgi"):
            raise ConfigError(f"unknown interface {self.interface!r}")
        if self.lifespan not in ("auto", "on", "off"):
            raise ConfigError(f"--lifespan must be auto, on or off, not {self.lifespan!r}")
        if self.root_path and (not self.root_path.startswith("/") or self.root_path.endswith("/")):
            raise ConfigError("--root-path must start with '/' and not end with '/'")
        taken = {""} if self.app is not None and self.mounts else set()  # APP goes at "/"
        for prefix, _ in self.mounts:
            try:
                prefix = mount_prefix(prefix)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            if prefix in taken:
                raise ConfigError(
                    f"two apps mounted at {prefix or '/'!r}: one would never be reached"
                )
            taken.add(prefix)
        for name in ("timeout_keep_alive", "timeout_request_header", "timeout_request_body"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.debug_blocking is not None and self.debug_blocking <= 0:
            raise ConfigError("--debug-blocking must be a positive number of milliseconds")
        if (self.ssl_keyfile is None) != (self.ssl_certfile is None):
            raise ConfigError("--ssl-keyfile and --ssl-certfile go together")
        if self.limit_concurrency is not None and self.limit_concurrency < 1:
            raise ConfigError("--limit-concurrency must be at least 1")
        if self.limit_max_requests is not None and self.limit_max_requests < 1:
            raise ConfigError("--limit-max-requests must be at least 1")
        if self.malloc_arena_max is not None and self.malloc_arena_max < 1:
            raise ConfigError("--malloc-arena-max must be at least 1")
        if self.limit_max_requests_jitter < 0:
            raise ConfigError("--limit-max-requests-jitter must not be negative")
        if self.max_body is not None and self.max_body < 0:
            raise ConfigError("--max-body-size must not be negative")
        if self.ws_max_queue < 1:
            raise ConfigError("--ws-max-queue must be at least 1")
        for name in ("ws_ping_interval", "ws_ping_timeout", "timeout_write"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive (or None: off)")
        for address in self.forwarded_allow_ips:
            if address == "*":
                continue
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise ConfigError(f"invalid --forwarded-allow-ips entry {address!r}") from None

    def trusts(self, client_host: str | None) -> bool:
        """Whether proxy headers from ``client_host`` are believed."""
        if not self.proxy_headers or client_host is None:
            return False
        if "*" in self.forwarded_allow_ips:
            return True
        try:
            address = ipaddress.ip_address(client_host)
        except ValueError:
            return False
        return any(
            address in ipaddress.ip_network(entry, strict=False)
            for entry in self.forwarded_allow_ips
        )
