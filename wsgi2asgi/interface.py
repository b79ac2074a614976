"""Tell a WSGI app from an ASGI 2 or ASGI 3 one: the one rule ``serve`` and ``asgi_to_wsgi`` share.

Rules this module keeps, in order (the first that applies decides):

1. asgiref's markers: ``_asgi_single_callable`` means ASGI 3, ``_asgi_double_callable`` ASGI 2.
2. A coroutine function, or an object whose ``__call__`` is one, is ASGI 3.
3. Otherwise the number of required positional parameters decides, read from the signature
   (a class's is its ``__init__``'s): 1 (``scope``) is ASGI 2, the double callable (a class
   taking ``scope``, or a factory function returning the instance); 2 (``environ``,
   ``start_response``) is WSGI, a function or a class (PEP 3333: "the application object ...
   could be a class"); 3 is ASGI 3, a sync callable returning an awaitable.
4. A signature that cannot be read, or takes ``*args``: a class is ASGI 2, anything else WSGI
   (what ``serve`` always did; uvicorn and asgiref would take both for ASGI 2).

Then the signature is checked against the call the interface makes (``app(environ,
start_response)``, ``app(scope)`` or ``app(scope, receive, send)``): a callable that cannot take
it (no parameters, four required ones, ``async def app(scope)``) is refused with the reason,
where it would otherwise be served and fail every request with a 500.

Example::

    >>> async def app(scope, receive, send): ...
    >>> detect_interface(app), detect_interface(lambda environ, start_response: [])
    ('asgi3', 'wsgi')
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Literal

from wsgi2asgi.bridges import iscoroutinefunction
from wsgi2asgi.typing import ASGIApp, Receive, Scope, Send

__all__ = [
    "ASGI2App",
    "Interface",
    "app_name",
    "as_asgi3",
    "check_signature",
    "detect_interface",
]

Interface = Literal["asgi3", "asgi2", "wsgi"]

_BY_ARITY: dict[int, Interface] = {1: "asgi2", 2: "wsgi", 3: "asgi3"}
#: How each interface calls the app (an ASGI 2 app's first call; its instance takes the rest).
_CALLS: dict[Interface, tuple[str, ...]] = {
    "wsgi": ("environ", "start_response"),
    "asgi2": ("scope",),
    "asgi3": ("scope", "receive", "send"),
}
_NAMES: dict[Interface, str] = {"wsgi": "WSGI", "asgi2": "ASGI 2", "asgi3": "ASGI 3"}


def detect_interface(app: object) -> Interface:
    """Return ``"asgi3"``, ``"asgi2"`` or ``"wsgi"`` for ``app`` (the rules above).

    Example::

        detect_interface(flask_app)       # 'wsgi'
        detect_interface(starlette_app)   # 'asgi3'

    Raises:
        TypeError: ``app`` is not callable, or cannot be called as any interface calls it.
    """
    kind = _interface(app)
    check_signature(app, kind, detected=True)
    return kind


def check_signature(app: object, kind: Interface, *, detected: bool = False) -> None:
    """Check that ``app`` can be called the way ``kind`` calls it; nothing to check when its
    signature cannot be read (a builtin).

    Example::

        check_signature(lambda environ, start_response: [], "wsgi")   # fine
        check_signature(lambda: [], "wsgi")
        # TypeError: <lambda>() is not a WSGI app (environ, start_response): too many ...

    Args:
        detected: ``kind`` came from :func:`detect_interface` (the message then names all the
            interfaces, not only the one chosen).

    Raises:
        TypeError: the call would fail; the message shows the signature and the reason.
    """
    try:
        signature = inspect.signature(app)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*_CALLS[kind])
    except TypeError as exc:
        name = getattr(app, "__qualname__", None) or type(app).__qualname__
        wanted = (
            "a WSGI app (environ, start_response) or an ASGI app (scope, receive, send)"
            if detected
            else f"{'an' if kind != 'wsgi' else 'a'} {_NAMES[kind]} app ({', '.join(_CALLS[kind])})"
        )
        raise TypeError(f"{name}{_parameters(signature)} is not {wanted}: {exc}") from None


def _interface(app: object) -> Interface:
    """The interface ``app`` looks like (rules 1 to 4 above)."""
    if not callable(app):
        raise TypeError(f"{app!r} is not callable: not a WSGI or ASGI app")
    if getattr(app, "_asgi_single_callable", False):
        return "asgi3"
    if getattr(app, "_asgi_double_callable", False):
        return "asgi2"
    if not inspect.isclass(app) and iscoroutinefunction(app):
        return "asgi3"
    arity = _required_positional(app)
    if arity in _BY_ARITY:
        return _BY_ARITY[arity]
    return "asgi2" if inspect.isclass(app) else "wsgi"


def _parameters(signature: inspect.Signature) -> str:
    """``(environ, start_response)``: the parameter names, without annotations or defaults."""
    names: list[str] = []
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY and not any(n.startswith("*") for n in names):
            names.append("*")
        stars = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(parameter.kind.name, "")
        names.append(f"{stars}{parameter.name}")
    return f"({', '.join(names)})"


def as_asgi3(app: object) -> ASGIApp:
    """Return ``app`` as an ASGI 3 callable: ASGI 2 apps wrapped in :class:`ASGI2App`.

    Example::

        as_asgi3(ClassicASGI2App)     # ASGI2App(ClassicASGI2App)

    Raises:
        TypeError: ``app`` is not callable, or is a WSGI app.
    """
    kind = detect_interface(app)
    if kind == "wsgi":
        raise TypeError(
            f"{app!r} is a WSGI app (it takes environ, start_response), not an ASGI app"
        )
    if kind == "asgi2":
        return ASGI2App(app)  # type: ignore[arg-type]
    return app  # type: ignore[return-value]


class ASGI2App:
    """Serve an ASGI 2 (double callable) app as ASGI 3.

    These two are equivalent::

        await ASGI2App(app)(scope, receive, send)
        await app(scope)(receive, send)
    """

    def __init__(self, app: Callable[[Scope], Callable[[Receive, Send], Awaitable[None]]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instance = self.app(scope)
        await instance(receive, send)


def app_name(app: object) -> str:
    """How logs and errors name an app: ``module:attr`` as given, else ``module:qualname``.

    ``wsgi2asgi serve``'s startup line, its load errors and ``asgi_to_wsgi``'s lifespan
    messages all name apps so.

    >>> app_name("myproject.wsgi:application")
    'myproject.wsgi:application'
    >>> app_name(app_name)
    'wsgi2asgi.interface:app_name'
    """
    if isinstance(app, str):
        return app
    module = getattr(app, "__module__", None) or type(app).__module__
    name = getattr(app, "__qualname__", None) or type(app).__qualname__
    return f"{module}:{name}"


def _required_positional(app: object) -> int | None:
    """How many positional arguments calling ``app`` needs; ``None`` when that cannot be known."""
    try:
        parameters = inspect.signature(app).parameters.values()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in parameters if p.kind in positional and p.default is p.empty)
