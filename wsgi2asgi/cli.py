"""The ``wsgi2asgi`` command line.

Example::

    $ wsgi2asgi --version
    wsgi2asgi 0.1.0.dev0
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from wsgi2asgi import __version__

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with one sub-command per tool."""
    parser = argparse.ArgumentParser(
        prog="wsgi2asgi",
        description="Move a WSGI codebase to ASGI one piece at a time.",
    )
    parser.add_argument("--version", action="version", version=f"wsgi2asgi {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return 0
