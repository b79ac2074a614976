"""The ``wsgi2asgi`` command line.

Example::

    $ wsgi2asgi serve myproject.wsgi:application --port 8080
    $ wsgi2asgi serve --mount /legacy=legacy.wsgi:app --mount /=site.asgi:application
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from wsgi2asgi import __version__
from wsgi2asgi.exceptions import ConfigError
from wsgi2asgi.inventory import register as _add_routes
from wsgi2asgi.prefixes import mount_prefix
from wsgi2asgi.shadow import register as _add_shadow_report

__all__ = ["build_parser", "main"]


def _mount(text: str) -> tuple[str, str]:
    """Parse ``--mount PREFIX=APP``; the prefix is checked and normalised as ``Mount`` does.

    >>> _mount("/legacy/=legacy.wsgi:app"), _mount("/=site:app")
    (('/legacy', 'legacy.wsgi:app'), ('', 'site:app'))

    Raises:
        ConfigError: no ``=`` or no APP, an empty PREFIX (the root is ``/``), or a prefix
            ``Mount`` refuses; ``main`` prints it on one line (not argparse's usage).
    """
    prefix, sep, app = text.partition("=")
    if not sep or not app:
        raise ConfigError(f"--mount wants PREFIX=module:attr, not {text!r}")
    if not prefix:
        raise ConfigError(f"--mount {text!r}: empty PREFIX (to mount at the root: '/={app}')")
    try:
        return mount_prefix(prefix), app
    except ValueError as exc:
        raise ConfigError(f"--mount {text!r}: {exc}") from None


def _add_serve(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="serve a WSGI or ASGI app (or several, mounted side by side)",
        description="Serve a WSGI or ASGI app over HTTP/1.1 and WebSockets.",
    )
    serve.add_argument("app", nargs="?", help="module:attr (WSGI or ASGI); optional with --mount")
    serve.add_argument(
        "--mount",
        action="append",
        type=_mount,
        default=[],
        metavar="PREFIX=APP",
        help="mount another app (WSGI or ASGI) at PREFIX; repeatable",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--uds", help="listen on this Unix domain socket")
    serve.add_argument("--fd", type=int, help="listen on this inherited file descriptor")
    serve.add_argument("--factory", action="store_true", help="APP is a factory: call it")
    serve.add_argument("--interface", choices=["auto", "asgi3", "asgi2", "wsgi"], default="auto")
    serve.add_argument("--app-dir", default=".", help="put this directory first on sys.path")
    serve.add_argument("--root-path", default="", help="the prefix a proxy serves us under")
    serve.add_argument("--lifespan", choices=["auto", "on", "off"], default="auto")
    serve.add_argument("--proxy-headers", action=argparse.BooleanOptionalAction, default=True)
    serve.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        help="comma-separated addresses/networks whose proxy headers are trusted ('*': all)",
    )
    serve.add_argument("--limit-concurrency", type=int, help="answer 503 above this many")
    serve.add_argument(
        "--limit-max-requests",
        type=int,
        help="exit gracefully after this many requests (a supervised worker is then replaced)",
    )
    serve.add_argument(
        "--limit-max-requests-jitter",
        type=int,
        default=0,
        help="add a random 0..N to --limit-max-requests so workers do not restart together",
    )
    serve.add_argument("--multiprocess", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--backlog", type=int, default=2048)
    serve.add_argument(
        "--timeout-keep-alive",
        type=float,
        default=20.0,
        help="seconds an idle keep-alive connection stays open (keep it above your clients' "
        "and proxy's own idle timeouts)",
    )
    serve.add_argument("--timeout-request-header", type=float, default=10.0)
    serve.add_argument(
        "--timeout-request-body",
        type=float,
        default=30.0,
        help="seconds a request body may stall between two reads before 408 and close",
    )
    serve.add_argument("--timeout-graceful-shutdown", type=float, default=30.0)
    serve.add_argument(
        "--timeout-write",
        type=float,
        default=60.0,
        metavar="S",
        help="close a connection whose client has read nothing of its response for S seconds "
        "(0: never)",
    )
    serve.add_argument("--max-target-size", type=int, default=8190, help="longer: 414")
    serve.add_argument("--max-header-size", type=int, default=65536, help="larger: 431")
    serve.add_argument("--max-headers", type=int, default=100, help="more lines: 431")
    serve.add_argument("--max-body-size", type=int, help="larger request bodies: 413")
    serve.add_argument("--ws-max-size", type=int, default=16 * 1024 * 1024, help="larger: 1009")
    serve.add_argument(
        "--ws-max-queue",
        type=int,
        default=32,
        metavar="N",
        help="WebSocket messages queued for the app before the server stops reading",
    )
    serve.add_argument(
        "--ws-ping-interval",
        type=float,
        default=20.0,
        metavar="S",
        help="ping each WebSocket client after S idle seconds (0: never)",
    )
    serve.add_argument(
        "--ws-ping-timeout",
        type=float,
        default=20.0,
        metavar="S",
        help="close (1011) a WebSocket whose client has not answered a ping in S seconds "
        "(0: wait forever)",
    )
    serve.add_argument("--threads", type=int, default=32, help="worker threads per WSGI app")
    serve.add_argument(
        "--malloc-arena-max",
        type=int,
        metavar="N",
        help="cap glibc malloc arenas (as MALLOC_ARENA_MAX=N); 2 keeps threaded WSGI RSS flat",
    )
    serve.add_argument(
        "--workers", type=int, default=1, help="server processes sharing the socket (supervised)"
    )
    serve.add_argument(
        "--reload", action="store_true", help="restart when a .py file changes (development)"
    )
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    serve.add_argument("--server-header", action=argparse.BooleanOptionalAction, default=True)
    serve.add_argument(
        "--debug-blocking",
        type=float,
        metavar="MS",
        help="log the stack of code that holds the event loop longer than MS milliseconds",
    )
    serve.add_argument("--ssl-keyfile", help="serve HTTPS with this private key (PEM)")
    serve.add_argument("--ssl-certfile", help="and this certificate chain (PEM)")
    serve.set_defaults(func=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from wsgi2asgi.server import serve

    if args.reload:
        if args.workers > 1:
            raise ConfigError("--reload and --workers cannot be used together")
        from wsgi2asgi.server.reloader import run_with_reload
        from wsgi2asgi.server.supervisor import worker_command

        logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
        command = worker_command([a for a in args.argv if a != "--reload"], multiprocess=False)
        return run_with_reload(command, [args.app_dir])
    if args.workers > 1:
        from wsgi2asgi.server.supervisor import bind, supervise, worker_command

        logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
        sock = bind(args.host, args.port, args.uds, args.backlog)
        command = worker_command(args.argv)
        return supervise(command, args.workers, sock, args.timeout_graceful_shutdown)
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")

    return serve(args.app, **config_options(args))


def config_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~wsgi2asgi.server.config.Config` fields that ``serve``'s flags set."""
    return {
        "mounts": tuple(args.mount),
        "host": args.host,
        "port": args.port,
        "uds": args.uds,
        "fd": args.fd,
        "factory": args.factory,
        "interface": args.interface,
        "app_dir": args.app_dir,
        "root_path": args.root_path,
        "lifespan": args.lifespan,
        "proxy_headers": args.proxy_headers,
        "forwarded_allow_ips": tuple(a.strip() for a in args.forwarded_allow_ips.split(",")),
        "limit_concurrency": args.limit_concurrency,
        "limit_max_requests": args.limit_max_requests,
        "limit_max_requests_jitter": args.limit_max_requests_jitter,
        "multiprocess": args.multiprocess,
        "malloc_arena_max": args.malloc_arena_max,
        "backlog": args.backlog,
        "timeout_keep_alive": args.timeout_keep_alive,
        "timeout_request_header": args.timeout_request_header,
        "timeout_request_body": args.timeout_request_body,
        "timeout_graceful_shutdown": args.timeout_graceful_shutdown,
        "timeout_write": args.timeout_write or None,
        "max_target": args.max_target_size,
        "max_header_bytes": args.max_header_size,
        "max_headers": args.max_headers,
        "max_body": args.max_body_size,
        "ws_max_size": args.ws_max_size,
        "ws_max_queue": args.ws_max_queue,
        "ws_ping_interval": args.ws_ping_interval or None,
        "ws_ping_timeout": args.ws_ping_timeout or None,
        "max_threads": args.threads,
        "log_level": args.log_level,
        "access_log": args.access_log,
        "server_header": args.server_header,
        "debug_blocking": args.debug_blocking,
        "ssl_keyfile": args.ssl_keyfile,
        "ssl_certfile": args.ssl_certfile,
    }


#: Sub-commands, each a function adding itself to the sub-parsers (one line per command).
COMMANDS = (_add_serve, _add_routes, _add_shadow_report)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with one sub-command per tool."""
    parser = argparse.ArgumentParser(
        prog="wsgi2asgi",
        description="Move a WSGI codebase to ASGI one piece at a time.",
    )
    parser.add_argument("--version", action="version", version=f"wsgi2asgi {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except ConfigError as exc:  # a value argparse cannot judge (_mount): one line, no usage
        print(f"wsgi2asgi: error: {exc}", file=sys.stderr)
        return 2
    args.argv = argv
    if args.command is None:
        parser.print_help()
        return 2
    try:
        status: int = args.func(args)
    except ConfigError as exc:
        logging.getLogger("wsgi2asgi.error").debug("configuration error", exc_info=True)
        print(f"wsgi2asgi {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return status
