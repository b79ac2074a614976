"""``Config``: every server setting, defined once, in one validated, immutable object. No I/O.

Each field is declared with :func:`~wsgi2asgi.server.settings.setting`, and that declaration is
the only place a setting is described: its flag (``--threads``), its environment variable
(``WSGI2ASGI_THREADS``), its help line with the default, its gunicorn counterpart and its row in
``docs/server.md`` all come from it (:func:`settings`). Names and defaults follow uvicorn's where
the meaning is the same.

Example::

    from wsgi2asgi.server import Config

    config = Config(app="myproject.asgi:application", port=8080, limit_concurrency=1000)
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from collections.abc import Sequence
from typing import Any, Literal

from wsgi2asgi.exceptions import ConfigError
from wsgi2asgi.prefixes import mount_prefix
from wsgi2asgi.server.settings import (
    Setting,
    boolean,
    comma_list,
    header,
    host_mount,
    integer,
    mount,
    number,
    number_or_off,
    optional_integer,
    setting,
    settings_of,
)

__all__ = ["Config", "settings"]

Interface = Literal["auto", "asgi3", "asgi2", "wsgi"]
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


@dataclasses.dataclass(frozen=True)
class Config:
    """Server settings; the flag of each is its name with dashes (``--timeout-keep-alive``).

    Raises:
        ConfigError: an invalid combination or value (raised by ``__post_init__``).
    """

    # -- what to serve ---------------------------------------------------------------------
    app: Any = setting(
        None,
        "module:attr of a WSGI or ASGI app, or module:factory(...) called with literal "
        "arguments; optional with --mount",
        positional=True,
        metavar="APP",
    )
    mounts: Sequence[tuple[str, Any]] = setting(
        (),
        "mount another app (WSGI or ASGI) at PREFIX; repeatable; the longest prefix wins",
        parse=mount,
        repeat=True,
        metavar="PREFIX=APP",
        doc="`/` is the root; a prefix `Mount` refuses, or given twice, is a one-line error",
    )
    host_mounts: Sequence[tuple[str, str, Any]] = setting(
        (),
        "mount APP at PREFIX for requests whose Host matches HOST (example.com, "
        "*.example.com); repeatable; tried before --mount",
        parse=host_mount,
        repeat=True,
        metavar="HOST=PREFIX=APP",
    )
    factory: bool = setting(False, "APP is a factory: call it with no arguments")
    interface: Interface = setting(
        "auto",
        "how to call APP; auto detects WSGI, ASGI 2 or ASGI 3",
        choices=("auto", "asgi3", "asgi2", "wsgi"),
        doc="([the rule](asgi.md#which-apps-it-takes-one-rule-with-wsgi2asgi-serve) "
        "`asgi_to_wsgi` uses too)",
    )
    app_dir: str = setting(".", "put this directory first on sys.path", metavar="DIR")
    root_path: str = setting(
        "",
        "the prefix a proxy serves us under (added to root_path and path)",
        metavar="PATH",
        doc="(and, percent-encoded, to `raw_path`, as uvicorn does)",
    )
    lifespan: Literal["auto", "on", "off"] = setting(
        "auto",
        "lifespan events: auto (skip apps without lifespan), on (required), off",
        choices=("auto", "on", "off"),
    )
    # -- where to listen -------------------------------------------------------------------
    host: str = setting("127.0.0.1", "the address to listen on", metavar="ADDRESS")
    port: int = setting(8000, "the TCP port to listen on", parse=integer, metavar="N")
    uds: str | None = setting(None, "listen on this Unix domain socket instead", metavar="PATH")
    fd: int | None = setting(
        None, "listen on this inherited socket instead", parse=optional_integer, metavar="N"
    )
    backlog: int = setting(
        2048, "the listen backlog", parse=integer, metavar="N", gunicorn="backlog"
    )
    # -- processes -------------------------------------------------------------------------
    workers: int = setting(
        1,
        "server processes sharing the socket, supervised and restarted",
        parse=integer,
        metavar="N",
        doc="(default: `$WEB_CONCURRENCY` when set; see below)",
    )
    multiprocess: bool = setting(False, "wsgi.multiprocess is true (a worker)", hidden=True)
    reload: bool = setting(False, "development: restart when a watched file changes")
    reload_dirs: Sequence[str] = setting(
        (),
        "watch this directory for --reload; repeatable (none given: --app-dir)",
        repeat=True,
        metavar="DIR",
    )
    reload_includes: Sequence[str] = setting(
        (),
        "also watch files matching GLOB for --reload (*.py always); repeatable",
        repeat=True,
        metavar="GLOB",
    )
    reload_excludes: Sequence[str] = setting(
        (),
        "ignore files and directories matching GLOB for --reload; repeatable",
        repeat=True,
        metavar="GLOB",
        doc="(hidden directories, `__pycache__`, `.venv` and `node_modules` always)",
    )
    reload_delay: float = setting(
        0.25,
        "seconds over which changes make one restart (without watchfiles: how often files "
        "are checked)",
        parse=number,
        unit="s",
        metavar="S",
    )
    threads: int = setting(
        32, "worker threads per WSGI app", parse=integer, metavar="N", gunicorn="threads"
    )
    malloc_arena_max: int | None = setting(
        None,
        "cap glibc malloc arenas (as MALLOC_ARENA_MAX=N); 2 keeps threaded WSGI RSS flat",
        parse=optional_integer,
        metavar="N",
        shown_default="glibc's",
        doc="(see below)",
    )
    # -- proxies ---------------------------------------------------------------------------
    proxy_headers: bool = setting(True, "honour proxy headers from trusted addresses")
    forwarded_allow_ips: Sequence[str] = setting(
        ("127.0.0.1",),
        "comma-separated addresses or networks whose proxy headers are trusted ('*': all)",
        parse=comma_list,
        metavar="LIST",
        gunicorn="forwarded_allow_ips",
    )
    # -- limits ----------------------------------------------------------------------------
    limit_concurrency: int | None = setting(
        None,
        "answer 503 to requests and WebSocket handshakes beyond N in flight",
        parse=optional_integer,
        metavar="N",
    )
    limit_max_requests: int | None = setting(
        None,
        "exit gracefully after N requests (a supervised worker is then replaced)",
        parse=optional_integer,
        metavar="N",
        gunicorn="max_requests",
        doc="(the last one answered with `Connection: close`; a guard against slow leaks)",
    )
    limit_max_requests_jitter: int = setting(
        0,
        "add a random 0..N to --limit-max-requests, so workers do not restart together",
        parse=integer,
        metavar="N",
    )
    # Longer than common client pool expiries (httpx 5 s, aiohttp 15 s): the client then
    # closes an idle connection first. Closing it from our side at the moment the client
    # reuses it loses that request (the soak found exactly this with equal 5 s timeouts).
    timeout_keep_alive: float = setting(
        20.0,
        "seconds an idle keep-alive connection stays open after its last response",
        parse=number,
        unit="s",
        metavar="S",
        gunicorn="keepalive",
        doc="(keep it above the idle timeout of the clients and proxies in front; see below)",
    )
    timeout_request_header: float = setting(
        10.0,
        "seconds a request head (and a TLS handshake) may take to arrive",
        parse=number,
        unit="s",
        metavar="S",
        doc="(see \u201cDeadlines\u201d below for when the clock starts)",
    )
    timeout_request_body: float = setting(
        30.0,
        "seconds a request body may stall between two reads: 408",
        parse=number,
        unit="s",
        metavar="S",
    )
    #: Seconds a response may make no progress while the client does not read it (the write
    #: buffer full); then the connection is closed and the app told (None: wait for ever).
    timeout_write: float | None = setting(
        60.0,
        "close a connection whose client takes nothing of its response for S seconds (0: never)",
        parse=number_or_off,
        unit="s",
        metavar="S",
        doc="(see below)",
    )
    timeout_graceful_shutdown: float | None = setting(
        30.0,
        "seconds in-flight requests may take to finish at shutdown",
        parse=number,
        unit="s",
        metavar="S",
        gunicorn="graceful_timeout",
        doc="(then the apps are told their clients are gone, and cancelled a second later; "
        "see below)",
    )
    max_target_size: int = setting(
        8190,
        "longer request targets: 414",
        parse=integer,
        metavar="BYTES",
        gunicorn="limit_request_line",
    )
    max_header_size: int = setting(
        65536,
        "larger request heads (request line and header lines, counted as they arrive): 431",
        parse=integer,
        metavar="BYTES",
        doc="(a chunked body's trailer section too)",
    )
    max_headers: int = setting(
        100,
        "more request header lines: 431",
        parse=integer,
        metavar="N",
        gunicorn="limit_request_fields",
    )
    max_body_size: int | None = setting(
        None, "larger request bodies: 413", parse=optional_integer, metavar="BYTES"
    )
    # -- WebSockets ------------------------------------------------------------------------
    ws_max_size: int = setting(
        16 * 1024 * 1024,
        "larger WebSocket messages: close 1009",
        parse=integer,
        metavar="BYTES",
        shown_default="16 MiB",
    )
    ws_max_queue: int = setting(
        32,
        "WebSocket messages queued for the app before the server stops reading",
        parse=integer,
        metavar="N",
        doc="(until the app has received half of them)",
    )
    #: Seconds without a frame from a WebSocket client before the server pings it (None: never);
    #: a client that then stays silent for ``ws_ping_timeout`` is closed with 1011. Finds peers
    #: that vanished without a FIN (a dropped NAT mapping, a sleeping laptop), which would
    #: otherwise hold their session, and the app's task, forever.
    ws_ping_interval: float | None = setting(
        20.0,
        "ping a WebSocket client silent for S seconds (0: never)",
        parse=number_or_off,
        unit="s",
        metavar="S",
    )
    ws_ping_timeout: float | None = setting(
        20.0,
        "close (1011) a WebSocket client that then stays silent for S more seconds "
        "(0: wait forever)",
        parse=number_or_off,
        unit="s",
        metavar="S",
    )
    ws_per_message_deflate: bool = setting(
        True, "negotiate permessage-deflate compression (RFC 7692) with WebSocket clients"
    )
    # -- responses -------------------------------------------------------------------------
    server_header: bool = setting(True, "send Server: wsgi2asgi")
    date_header: bool = setting(True, "send a Date header")
    headers: Sequence[tuple[str, str]] = setting(
        (),
        "add this header to every response (unless the app sets it); repeatable",
        parse=header,
        repeat=True,
        joiner=":",
        metavar="NAME:VALUE",
    )
    # -- logs ------------------------------------------------------------------------------
    log_level: str | None = setting(
        None,
        "the level of the wsgi2asgi.error and wsgi2asgi.access logs",
        choices=_LOG_LEVELS,
        shown_default="info",
        doc="(with `--log-config`: the file's, unless given)",
    )
    log_config: str | None = setting(
        None,
        "configure logging from this file: dictConfig as .json or .yaml (PyYAML), else the "
        "ini form of fileConfig",
        metavar="FILE",
        doc="(see \u201cLogs\u201d below)",
    )
    use_colors: bool | None = setting(
        None,
        "colour the log levels and access statuses",
        parse=boolean,
        shown_default="when the log goes to a terminal",
    )
    access_log: bool = setting(True, "log one line per request to wsgi2asgi.access")
    access_log_format: str | None = setting(
        None,
        "the access line, with gunicorn's atoms: %(h)s %(r)s %(s)s %(b)s %({header}i)s ...",
        metavar="FORMAT",
        shown_default='uvicorn\'s: CLIENT - "REQUEST LINE" STATUS',
        doc="(under gunicorn, its `--access-logformat` in its `--access-logfile`)",
    )
    debug_blocking: float | None = setting(
        None,
        "log the stack and request of code holding the event loop longer than MS milliseconds",
        parse=number_or_off,
        metavar="MS",
        shown_default="off",
        doc="(see `docs/tools.md`)",
    )
    dashboard: str | None = setting(
        None,
        "serve the migration dashboard at PATH, to this machine only unless --dashboard-token",
        metavar="PATH",
        shown_default="off",
        doc="(see `docs/dashboard.md`)",
    )
    dashboard_token: str | None = setting(
        None,
        "let other machines see the dashboard with this secret of 16 characters or more",
        metavar="TOKEN",
        doc="(prefer the environment variable: a flag shows in `ps`)",
    )
    # -- TLS -------------------------------------------------------------------------------
    ssl_keyfile: str | None = setting(
        None, "serve HTTPS (TLS 1.2+) with this private key (PEM)", metavar="PATH",
        gunicorn="keyfile",
    )  # fmt: skip
    ssl_certfile: str | None = setting(
        None, "and this certificate chain (PEM)", metavar="PATH", gunicorn="certfile"
    )
    ssl_keyfile_password: str | None = setting(
        None, "the password of an encrypted --ssl-keyfile", metavar="TEXT"
    )
    ssl_ca_certs: str | None = setting(
        None,
        "CA certificates (PEM) that client certificates are checked against",
        metavar="PATH",
        gunicorn="ca_certs",
    )
    ssl_cert_reqs: int = setting(
        0,
        "client certificates: 0 not asked, 1 optional, 2 required (ssl.CERT_*)",
        parse=integer,
        choices=("0", "1", "2"),
        gunicorn="cert_reqs",
    )
    ssl_ciphers: str | None = setting(
        None,
        "the ciphers allowed for TLS 1.2 (an OpenSSL cipher list)",
        metavar="LIST",
        shown_default="Python's",
        gunicorn="ciphers",
    )

    def __post_init__(self) -> None:
        if self.app is None and not self.mounts and not self.host_mounts:
            raise ConfigError("give an app, or at least one --mount")
        _check_listening(self)
        _check_mounts(self)
        _check_limits(self)
        _check_tls(self)
        _check_dashboard(self)
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


@functools.cache
def settings() -> tuple[Setting, ...]:
    """Every setting of :class:`Config`, in the order of its fields.

    Example::

        [s.flag for s in settings()][:3]     # ['--app', '--mount', '--host-mount']
    """
    return settings_of(Config)


def _check_listening(config: Config) -> None:
    if config.port < 0 or config.port > 65535:
        raise ConfigError(f"port must be 0-65535, not {config.port}")
    if config.uds is not None and config.fd is not None:
        raise ConfigError("--uds and --fd cannot be used together")
    if config.interface not in ("auto", "asgi3", "asgi2", "wsgi"):
        raise ConfigError(f"unknown interface {config.interface!r}")
    if config.lifespan not in ("auto", "on", "off"):
        raise ConfigError(f"--lifespan must be auto, on or off, not {config.lifespan!r}")
    if config.root_path and (
        not config.root_path.startswith("/") or config.root_path.endswith("/")
    ):
        raise ConfigError("--root-path must start with '/' and not end with '/'")
    if config.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if config.reload and config.workers > 1:
        raise ConfigError("--reload and --workers cannot be used together")
    if config.reload_delay < 0:
        raise ConfigError("--reload-delay must not be negative")


def _check_mounts(config: Config) -> None:
    taken = {""} if config.app is not None and config.mounts else set()  # APP goes at "/"
    for prefix, _ in config.mounts:
        try:
            prefix = mount_prefix(prefix)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if prefix in taken:
            raise ConfigError(f"two apps mounted at {prefix or '/'!r}: one would never be reached")
        taken.add(prefix)
    per_host: set[tuple[str, str]] = set()
    for host, prefix, _ in config.host_mounts:
        try:
            key = (host.lower(), mount_prefix(prefix))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if key in per_host:
            raise ConfigError(f"two apps mounted at {host}{prefix or '/'}: one is never reached")
        per_host.add(key)


def _check_limits(config: Config) -> None:
    for name in ("timeout_keep_alive", "timeout_request_header", "timeout_request_body"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be positive")
    if config.debug_blocking is not None and config.debug_blocking <= 0:
        raise ConfigError("--debug-blocking must be a positive number of milliseconds")
    at_least_one = ("limit_concurrency", "limit_max_requests", "malloc_arena_max", "threads")
    for name in (*at_least_one, "ws_max_queue"):
        value = getattr(config, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    if config.limit_max_requests_jitter < 0:
        raise ConfigError("--limit-max-requests-jitter must not be negative")
    if config.max_body_size is not None and config.max_body_size < 0:
        raise ConfigError("--max-body-size must not be negative")
    for name in ("ws_ping_interval", "ws_ping_timeout", "timeout_write"):
        value = getattr(config, name)
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be positive (or None: off)")


def _check_tls(config: Config) -> None:
    if (config.ssl_keyfile is None) != (config.ssl_certfile is None):
        raise ConfigError("--ssl-keyfile and --ssl-certfile go together")
    if config.ssl_cert_reqs not in (0, 1, 2):
        raise ConfigError(f"--ssl-cert-reqs must be 0, 1 or 2, not {config.ssl_cert_reqs}")
    if config.ssl_certfile is None and (config.ssl_ca_certs or config.ssl_cert_reqs):
        raise ConfigError("--ssl-ca-certs and --ssl-cert-reqs need --ssl-certfile")
    if config.ssl_cert_reqs and config.ssl_ca_certs is None:
        raise ConfigError("--ssl-cert-reqs needs --ssl-ca-certs (the CAs to check clients by)")


def _check_dashboard(config: Config) -> None:
    if config.dashboard is not None:
        try:
            path = mount_prefix(config.dashboard)
        except ValueError as exc:
            raise ConfigError(f"--dashboard {config.dashboard!r}: {exc}") from None
        if not path:
            raise ConfigError("--dashboard needs a path of its own, not the root (/_wsgi2asgi)")
        if any(mount_prefix(prefix) == path for prefix, _ in config.mounts):
            raise ConfigError(f"--dashboard {path} is also a --mount prefix: one is never reached")
    if config.dashboard_token is not None and len(config.dashboard_token) < 16:
        raise ConfigError(
            "--dashboard-token must be at least 16 characters "
            "(python -c 'import secrets; print(secrets.token_urlsafe())')"
        )
