"""Find the app to serve: import ``module:attr``, tell WSGI from ASGI, compose mounts.

Rules this module keeps:

* ``module:attr`` (``attr`` may be dotted); with ``factory=True`` the attribute is called with
  no arguments and its result is the app. ``app_dir`` goes first on ``sys.path``.
* ``module:create_app("x", debug=True)`` calls the factory with those arguments, as gunicorn
  does: they must be Python literals (read with :func:`ast.literal_eval`: strings, numbers,
  ``True``, ``None``, tuples, lists, dicts); a name or an expression is refused, never
  evaluated. ``--factory`` adds nothing to a call (it is not called twice).
* The app's signature is checked against the call its interface makes
  (:func:`wsgi2asgi.interface.check_signature`): a mistake stops the load with the reason.
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

import ast
import importlib
import inspect
import sys
from typing import Any

from wsgi2asgi.exceptions import ConfigError
from wsgi2asgi.interface import ASGI2App, app_name, check_signature, detect_interface
from wsgi2asgi.routing import Host, Mount, Router
from wsgi2asgi.server.config import Config
from wsgi2asgi.typing import ASGIApp

__all__ = ["describe", "import_app", "load"]


def import_app(spec: str, *, factory: bool = False, app_dir: str | None = ".") -> Any:
    """Import ``module:attr`` and return the object (called first when ``factory``).

    Example::

        import_app("myproject.wsgi:application")
        import_app("myproject.app:create_app('production', debug=False)")   # called

    Raises:
        ConfigError: the spec is malformed, the module or attribute cannot be found, or a
            factory's arguments are not literals or do not fit it.
    """
    if app_dir is not None and app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    module_name, _, attr = spec.partition(":")
    path, call = _parse_attr(spec, attr)
    if not module_name:
        raise ConfigError(f"app must look like 'module:attribute', not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(f"could not import module {module_name!r}") from exc
        raise
    obj: Any = module
    for part in path:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            dotted = ".".join(path)
            raise ConfigError(f"module {module_name!r} has no attribute {dotted!r}") from None
    if call is None and factory:
        call = (), {}
    if call is not None:
        obj = _call_factory(obj, attr, *call)
    return obj


_Call = tuple[tuple[Any, ...], dict[str, Any]]


def _parse_attr(spec: str, attr: str) -> tuple[list[str], _Call | None]:
    """Split ``create_app("x", debug=True)`` into ``["create_app"]`` and its literal arguments.

    Raises:
        ConfigError: not a dotted name, optionally called; or an argument is not a literal.
    """
    try:
        node = ast.parse(attr.strip(), mode="eval").body
    except SyntaxError:
        node = None
    call: _Call | None = None
    if isinstance(node, ast.Call):
        call = _literal_arguments(node)
        node = node.func
    path = _dotted(node)
    if path is None:
        raise ConfigError(f"app must look like 'module:attribute', not {spec!r}")
    return path, call


def _dotted(node: ast.expr | None) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]``; ``None`` for anything else."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else [*head, node.attr]
    return None


def _literal_arguments(call: ast.Call) -> _Call:
    args: list[Any] = []
    for node in call.args:
        if isinstance(node, ast.Starred):  # *["a", "b"]
            args.extend(_literal(node.value, (list, tuple)))
        else:
            args.append(_literal(node))
    kwargs: dict[str, Any] = {}
    for keyword in call.keywords:
        if keyword.arg is None:  # **{"debug": True}
            kwargs.update(_literal(keyword.value, (dict,)))
        else:
            kwargs[keyword.arg] = _literal(keyword.value)
    return tuple(args), kwargs


def _literal(node: ast.expr, kinds: tuple[type, ...] = (object,)) -> Any:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):  # a name, a call, an operation
        pass
    else:
        if isinstance(value, kinds):
            return value
    raise ConfigError(
        "the factory's arguments must be Python literals (strings, numbers, True, None, "
        f"lists, dicts): {ast.unparse(node)!r} is not"
    )


def _call_factory(factory: Any, attr: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if not callable(factory):
        raise ConfigError(f"{attr!r} is not callable: it cannot be called as a factory")
    try:
        inspect.signature(factory).bind(*args, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"calling {attr} failed: {exc}") from None
    except ValueError:
        pass  # no signature to check (a builtin): the call itself will tell
    return factory(*args, **kwargs)


def _wrap(obj: Any, interface: str, config: Config) -> tuple[ASGIApp, str, str]:
    name = app_name(obj)
    if isinstance(obj, str):
        obj = import_app(obj, factory=config.factory, app_dir=config.app_dir)
    try:
        kind: str = detect_interface(obj) if interface == "auto" else interface
        if interface != "auto":
            check_signature(obj, interface)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ConfigError(f"cannot serve {name!r}: {exc}") from None
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
