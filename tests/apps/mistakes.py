"""Apps a user gets slightly wrong, and a factory taking arguments (``serve``'s load checks)."""

from __future__ import annotations

from typing import Any


def create_app(greeting: str, *, punctuation: str = "") -> Any:
    """A factory taking arguments: ``'tests.apps.mistakes:create_app("hi")'``."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{greeting}{punctuation}".encode()]

    return app


def no_args() -> list[bytes]:
    """Callable, but with nothing to take a request with."""
    return [b"never"]


def four(environ: Any, start_response: Any, extra: Any, more: Any) -> list[bytes]:
    """Four required arguments: neither WSGI (two) nor ASGI (three)."""
    return [b"never"]


async def lonely(scope: Any) -> None:
    """A coroutine function taking only ``scope``: ASGI 3 calls it with three arguments."""


class NoScope:
    """A class whose instances take no arguments: not an ASGI 2 app, not a WSGI one."""

    def __init__(self) -> None:
        self.ready = True
