"""Find the app to serve: import ``module:attr``, tell WSGI from ASGI, compose mounts.

Rules this module keeps:

* ``module:attr`` (``attr`` may be dotted); with ``factory=True`` the attribute is called with
  no arguments and its result is the app. ``app_dir`` goes first on ``sys.path``.
* Interface detection (``auto``) is :func:`wsgi2asgi.interface.detect_interface`, the rule
  ``asgi_to_wsgi`` uses too: a coroutine function (or async ``__call__``) is ASGI 3; otherwise
  the required positional parameters decide: ``scope`` is ASGI 2, ``environ, start_response``
  WSGI (PEP 3333), ``scope, receive, send`` ASGI 3.
* WSGI apps are served through :func:`wsgi2asgi.wsgi.wsgi_to_asgi`; ASGI 2 apps through
  :class:`wsgi2asgi.interface.ASGI2App`; several mounts through
  :class:`wsgi2asgi.routing.Router`; the mounts of one host (``--host-mount``) through a
  ``Host`` route holding a router of their own, tried before the other mounts.

Example::

    app, described = load(config)      # described: [("/", "wsgi", "32 threads"), ...]
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from wsgi2asgi.exceptions import ConfigError
from wsgi2asgi.interface import ASGI2App, detect_interface
from wsgi2asgi.routing import Host, Mount, Router
from wsgi2asgi.server.config import Config
from wsgi2asgi.typing import ASGIApp

__all__ = ["describe", "import_app", "load"]


def import_app(spec: str, *, factory: bool = False, app_dir: str | None = ".") -> Any:
    """Import ``module:attr`` and return the object (called first when ``factory``).

    Raises:
        ConfigError: the spec is malformed, or the module or attribute cannot be found.
    """
    if app_dir is not None and app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"app must look like 'module:attribute', not {spec!r}")
    if attr.endswith("()"):
        attr, factory = attr[:-2], True
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(f"could not import module {module_name!r}") from exc
        raise
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"module {module_name!r} has no attribute {attr!r}") from None
    if factory:
        obj = obj()
    return obj


def _wrap(obj: Any, interface: str, config: Config) -> tuple[ASGIApp, str, str]:
    if isinstance(obj, str):
        obj = import_app(obj, factory=config.factory, app_dir=config.app_dir)
    kind = _detect(obj) if interface == "auto" else interface
    if kind == "wsgi":
        from wsgi2asgi.wsgi import wsgi_to_asgi

        return (
            wsgi_to_asgi(obj, max_threads=config.threads, multiprocess=config.multiprocess),
            kind,
            f"{config.threads} threads",
        )
    if kind == "asgi2":
        return ASGI2App(obj), kind, "event loop"
    return obj, kind, "event loop"


def _detect(obj: Any) -> str:
    try:
        return detect_interface(obj)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def describe(app: Any, prefix: str = "") -> list[tuple[str, str, str]]:
    """List ``(mount prefix, interface, pool)`` for every app inside our routers, recursively.

    Unwraps ``Router``/``Mount``, ``Fallback`` (both apps), the framework adapters and
    ``WSGIAdapter`` (shown as ``wsgi`` with its thread count).
    """
    from wsgi2asgi.fallback import Fallback
    from wsgi2asgi.wsgi import WSGIAdapter

    if isinstance(app, Router):
        rows: list[tuple[str, str, str]] = []
        for route in app.declared:
            child_prefix = prefix + route.prefix if isinstance(route, Mount) else prefix
            rows += describe(route.app, child_prefix)
        if app.default is not None:
            rows += describe(app.default, prefix)
        return rows
    if isinstance(app, Fallback):
        return describe(app.primary, prefix) + describe(app.fallback, prefix)
    if isinstance(app, WSGIAdapter):
        return [(prefix or "/", "wsgi", f"{app.max_threads} threads")]
    inner = getattr(app, "handler", None) or (
        getattr(app, "app", None) if type(app).__name__ == "StarletteApp" else None
    )
    if inner is not None and inner is not app:
        return describe(inner, prefix)
    return [(prefix or "/", "asgi", f"{type(app).__name__}, event loop")]


def load(config: Config) -> tuple[ASGIApp, list[tuple[str, str, str]]]:
    """Build the app to serve from ``config``; describe each part for the startup line."""
    hosts, described = _host_routes(config)
    mounts: list[Mount] = []
    for prefix, target in config.mounts:
        app, kind, pool = _wrap(target, "auto", config)
        mounts.append(Mount(prefix, app))
        described.append((prefix or "/", kind, pool))
    if config.app is not None:
        app, kind, pool = _wrap(config.app, config.interface, config)
        if not mounts and not hosts:
            if isinstance(app, Router):
                return app, describe(app)
            return app, [("/", kind, pool)]
        mounts.append(Mount("", app))
        described.append(("/", kind, pool))
    return Router([*hosts, *mounts]), described


def _host_routes(config: Config) -> tuple[list[Host], list[tuple[str, str, str]]]:
    """One ``Host`` route per host of ``--host-mount``, holding that host's mounts."""
    by_host: dict[str, list[Mount]] = {}
    described: list[tuple[str, str, str]] = []
    for host, prefix, target in config.host_mounts:
        app, kind, pool = _wrap(target, "auto", config)
        by_host.setdefault(host, []).append(Mount(prefix, app))
        described.append((f"{host}{prefix or '/'}", kind, pool))
    try:
        return [Host(host, Router(mounts)) for host, mounts in by_host.items()], described
    except ValueError as exc:  # a Host pattern with a port that is not a number
        raise ConfigError(f"--host-mount: {exc}") from None
