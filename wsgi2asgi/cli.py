"""The ``wsgi2asgi`` command line: ``serve``, ``routes`` and ``shadow-report``.

Rules this module keeps:

* ``serve`` declares no flag of its own: each comes from a setting's definition in
  :mod:`wsgi2asgi.server.config` (plus ``--config`` and ``--env-file``, :data:`SOURCES`). A
  setting's value is the first of: its flag, its ``WSGI2ASGI_*`` environment variable (after
  ``--env-file`` is loaded), the config file, its default (``$WEB_CONCURRENCY`` for
  ``--workers``, as uvicorn and gunicorn read it).
* The tools (:mod:`wsgi2asgi.inventory`, :mod:`wsgi2asgi.shadow`) are libraries: this module
  parses their arguments and prints what they return.
* A user's mistake is one line on stderr and exit status 2, never a traceback.

Example::

    $ wsgi2asgi serve myproject.wsgi:application --port 8080
    $ wsgi2asgi serve --mount /legacy=legacy.wsgi:app --mount /=site.asgi:application
    $ wsgi2asgi serve --config wsgi2asgi.toml --env-file .env
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from wsgi2asgi import __version__
from wsgi2asgi.exceptions import ConfigError
from wsgi2asgi.server.config import Config, settings
from wsgi2asgi.server.settings import Setting, integer
from wsgi2asgi.server.sources import from_config_file, from_environment, load_env_file

__all__ = ["SOURCES", "build_parser", "main", "serve_config", "serve_settings"]

#: ``serve``'s flags that say where other settings come from (not ``Config`` fields).
SOURCES = (
    Setting(
        "read settings, mounts and hosts from this TOML file (none given: the "
        "[tool.wsgi2asgi] table of ./pyproject.toml, if any)",
        metavar="FILE",
        name="config",
        doc="(see \u201cConfig file\u201d below)",
    ),
    Setting(
        "load environment variables from this dotenv file (variables already set win)",
        metavar="FILE",
        name="env_file",
    ),
)


def serve_settings() -> tuple[Setting, ...]:
    """``serve``'s arguments in ``--help`` order: APP, the sources, then every setting."""
    every = settings()
    return (
        *(s for s in every if s.positional),
        *SOURCES,
        *(s for s in every if not s.positional),
    )


# -- serve ---------------------------------------------------------------------------------


def _add_serve(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="serve a WSGI or ASGI app (or several, mounted side by side)",
        description="Serve a WSGI or ASGI app over HTTP/1.1 and WebSockets. Every flag can "
        "also be set as WSGI2ASGI_<FLAG> in the environment, or in a config file.",
    )
    for setting in serve_settings():
        _add_setting(serve, setting)
    serve.set_defaults(func=_run_serve)


def _add_setting(parser: argparse.ArgumentParser, setting: Setting) -> None:
    """One argument for ``setting``; absent, it sets nothing (so other sources can)."""
    shown = argparse.SUPPRESS if setting.hidden else setting.help_text.replace("%", "%%")
    common: dict[str, Any] = {"help": shown, "default": argparse.SUPPRESS}
    if setting.positional:
        parser.add_argument(setting.name, nargs="?", metavar=setting.metavar, **common)
    elif setting.switch:
        parser.add_argument(
            setting.flag, dest=setting.name, action=argparse.BooleanOptionalAction, **common
        )
    else:
        parser.add_argument(
            setting.flag,
            dest=setting.name,
            type=_argparse_type(setting),
            action="append" if setting.repeat else "store",
            metavar=setting.placeholder,
            **common,
        )


def _argparse_type(setting: Setting) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return setting.value(text)
        except ValueError as exc:  # argparse prints it as "argument --port: MESSAGE"
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def serve_config(args: argparse.Namespace, environ: MutableMapping[str, str]) -> Config:
    """The ``Config`` that ``serve``'s ``args`` mean in ``environ``.

    Each setting comes from its flag, else its ``WSGI2ASGI_*`` variable, else the config
    file, else its default. ``--env-file`` is loaded into ``environ`` first (the app sees it).

    Example::

        config = serve_config(build_parser().parse_args(["serve", "m:app"]), os.environ)

    Raises:
        ConfigError: a bad file, variable or value, said in one line.
    """
    config_source, env_file_source = SOURCES
    env_file = getattr(args, "env_file", None) or environ.get(env_file_source.env)
    if env_file:
        load_env_file(env_file, environ)
    every = settings()
    path = getattr(args, "config", None) or environ.get(config_source.env)
    options = from_config_file(path, every)
    options.update(from_environment(environ, every))
    given = vars(args)
    options.update(
        {
            s.name: tuple(given[s.name]) if s.repeat else given[s.name]
            for s in every
            if s.name in given
        }
    )
    if "workers" not in options and "WEB_CONCURRENCY" in environ:
        try:
            options["workers"] = integer(environ["WEB_CONCURRENCY"])
        except ValueError as exc:
            raise ConfigError(f"WEB_CONCURRENCY: {exc}") from None
    return Config(**options)


def _run_serve(args: argparse.Namespace) -> int:
    from wsgi2asgi.server.main import run_config

    config = serve_config(args, os.environ)
    wrap_app = None
    # The dashboard is a tool: the server cannot import it. Under --workers or --reload the
    # server processes are this command too, and each adds it.
    if config.dashboard is not None and config.workers == 1 and not config.reload:
        from wsgi2asgi.dashboard import server_wrapper

        wrap_app = server_wrapper(config.dashboard, config.dashboard_token)
    return run_config(config, wrap_app=wrap_app)


# -- routes -------------------------------------------------------------------------------------


def _add_routes(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "routes",
        help="list every route of an app (Flask, Django, Starlette, mounts) as sync or async",
        description="List the routes of an app tree, to plan a migration.",
    )
    parser.add_argument("app", help="module:attr or module:factory()")
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    parser.add_argument("--app-dir", default=".", help="put this directory first on sys.path")
    parser.add_argument("--factory", action="store_true", help="APP is a factory: call it")
    parser.add_argument(
        "--all-methods", action="store_true", help="keep HEAD and OPTIONS in the methods"
    )
    parser.set_defaults(func=_run_routes)


def _run_routes(args: argparse.Namespace) -> int:
    from wsgi2asgi.inventory import collect_routes, format_table, summarize
    from wsgi2asgi.server.loading import import_app

    try:
        app = import_app(args.app, factory=args.factory, app_dir=args.app_dir)
    except ConfigError:
        raise
    except Exception as exc:  # the user's module failed while importing: say so, briefly
        raise ConfigError(f"could not load {args.app!r}: {type(exc).__name__}: {exc}") from exc
    try:
        routes = collect_routes(app, implicit_methods=args.all_methods)
    except TypeError as exc:  # not callable: a module, a settings dict, a str
        raise ConfigError(f"{args.app!r} is {exc}") from None
    if args.json:
        document = {"routes": [dataclasses.asdict(r) for r in routes], "summary": summarize(routes)}
        print(json.dumps(document, indent=2))
    else:
        print(format_table(routes))
    return 0


# -- shadow-report ------------------------------------------------------------------------------


def _add_shadow_report(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "shadow-report",
        help="fetch a Shadow report endpoint and summarise it (exit 1 on differences)",
        description="Print the statistics of a running Shadow (its report_path endpoint).",
    )
    parser.add_argument("url", help="e.g. http://127.0.0.1:8000/__shadow__")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait")
    parser.set_defaults(func=_run_shadow_report)


def _run_shadow_report(args: argparse.Namespace) -> int:
    """Print a running Shadow's report; 0, or 1 when answers differed (2 on failure)."""
    from wsgi2asgi.shadow import fetch_report, format_report

    try:
        report = fetch_report(args.url, timeout=args.timeout)
    except OSError as exc:
        raise ConfigError(f"{args.url}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{args.url} is not a shadow report ({exc})") from None
    print(format_report(report))
    return 1 if report["different"] else 0


# -- the parser and main ---------------------------------------------------------------------

#: Sub-commands, each a function adding itself to the sub-parsers (one line per command).
COMMANDS = (_add_serve, _add_routes, _add_shadow_report)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with one sub-command per tool.

    Example::

        args = build_parser().parse_args(["serve", "m:app", "--port", "9000"])
    """
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
    """Run the command line; return the process exit status.

    Example::

        raise SystemExit(main(["routes", "mysite.asgi:application", "--json"]))
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except ConfigError as exc:  # a value argparse cannot judge (a mount): one line, no usage
        print(f"wsgi2asgi: error: {exc}", file=sys.stderr)
        return 2
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
