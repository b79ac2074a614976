"""Serve a Django project as an ASGI app: sync views at WSGI speed, async views on the loop.

Three ways in (``docs/adapters.md`` has the whole story):

* ``interface="auto"`` (default): per request, decided before any middleware runs by
  resolving the path against ``ROOT_URLCONF`` (rules: :mod:`wsgi2asgi.dispatch`). A sync
  view's request goes through Django's ``WSGIHandler`` behind ``wsgi_to_asgi``: one pool thread
  from ``request_started`` to the response's ``close()``, as under gunicorn. An async view's
  goes through Django's ``ASGIHandler``, on the loop. No view (404): the sync path. A view that
  cannot be known in advance: the async path, which serves every view correctly.
* ``interface="asgi"``: ``ASGIHandler`` for every request.
* ``interface="wsgi"``: ``WSGIHandler`` for every request.

The script prefix comes from the mount (``root_path`` / ``SCRIPT_NAME``), so ``reverse()``,
``{% url %}``, the admin, a relative ``STATIC_URL`` and redirects carry it. Added to Django's
handlers: a lifespan (system checks, optional ``migrate``), cookies scoped to the mount,
``static=True`` (``runserver``'s static files), WebSockets closed before accept (403), and the
bare prefix (``/dj``) answered ``308 Location: /dj/`` with ``"auto"`` and ``"asgi"``.

Example::

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site.settings")
    application = Router([Mount("", django_app())])
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import django
from asgiref.sync import iscoroutinefunction
from django.urls import Resolver404, get_resolver
from django.utils import translation

from adapters.django_bridges import (
    middleware_mixins_as_sync,
    use_wsgi2asgi_bridges,
    wsgi2asgi_bridges_in_use,
)
from wsgi2asgi.bridges import sync_to_async
from wsgi2asgi.dispatch import NO_MATCH, Dispatcher, confirm
from wsgi2asgi.prefixes import route_path
from wsgi2asgi.wsgi import wsgi_to_asgi

if TYPE_CHECKING:
    from wsgi2asgi.typing import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DjangoApp", "django_app"]


class DjangoApp:
    """An ASGI app: Django's handler for ``http``, its own answer for ``lifespan``.

    Args:
        handler: the ASGI app that serves HTTP: Django's ASGIHandler, its WSGIHandler behind
            ``wsgi_to_asgi``, or a ``Dispatcher`` over both.
        migrate: apply migrations at lifespan startup (once for processes that start
            together: see ``_migration_lock``).
        static: wraps the handler to serve static files (at the first request).
        redirect_bare_prefix: answer the mount point without its slash (``/dj``) with a 308 to
            ``/dj/`` instead of passing it to the handler (for ``ASGIHandler``, which 404s it).
    """

    def __init__(
        self,
        handler: ASGIApp,
        *,
        migrate: bool = False,
        static: Callable[[ASGIApp], ASGIApp] | None = None,
        redirect_bare_prefix: bool = False,
    ) -> None:
        self.handler = handler
        self.migrate = migrate
        self.redirect_bare_prefix = redirect_bare_prefix
        self._static = static
        self._cookie_names: frozenset[bytes] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind == "websocket":
            # ASGI www.rst: a close before accept makes the server reject the handshake (403).
            await send({"type": "websocket.close", "code": 1000})
            return
        if self.redirect_bare_prefix and kind == "http" and _is_bare_prefix(scope):
            await _redirect_to_slash(scope, send)
            return
        if self._static is not None:
            self._serve_static(self._static, scope.get("root_path", ""))
        if scope["type"] == "http" and scope.get("root_path"):
            await self.handler(scope, receive, self._scoped_cookies(scope["root_path"], send))
        else:
            await self.handler(scope, receive, send)

    def _serve_static(self, wrap: Callable[[ASGIApp], ASGIApp], root_path: str) -> None:
        """Wrap the handler with the static files handler, at the first request.

        Django computes a relative ``STATIC_URL`` (``"static/"``) with the script prefix *once*
        and caches it; the static handler reads it when built. Both must therefore happen under
        the mount's prefix, which is first known here.
        """
        from django.conf import settings
        from django.urls import get_script_prefix, set_script_prefix

        self._static = None
        previous = get_script_prefix()
        set_script_prefix(root_path.rstrip("/") + "/")
        try:
            for name in ("STATIC_URL", "MEDIA_URL"):
                settings.__dict__.pop(name, None)  # recomputed under this prefix on next read
            self.handler = wrap(self.handler)
        finally:
            set_script_prefix(previous)

    def _scoped_cookies(self, root_path: str, send: Send) -> Send:
        if self._cookie_names is None:
            self._cookie_names = _default_path_cookies()
        names = self._cookie_names
        if not names:
            return send
        path = b"Path=" + root_path.encode("latin-1")

        async def scoped_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [
                    (k, _rescope(v, names, path) if k.lower() == b"set-cookie" else v)
                    for k, v in message.get("headers", ())
                ]
            await send(message)

        return scoped_send

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                errors = await sync_to_async(self._startup, thread_sensitive=False)()
                if errors:
                    await send({"type": "lifespan.startup.failed", "message": errors})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await sync_to_async(_close_connections)()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _startup(self) -> str:
        from django.core import checks
        from django.core.management import call_command

        if self.migrate:
            try:
                with _migration_lock():
                    call_command("migrate", interactive=False, verbosity=0)
            except Exception as exc:  # reported to the server as a failed startup
                return f"migrate failed: {exc!r}"
            finally:
                _close_connections()
        messages = checks.run_checks(include_deployment_checks=False)
        return "; ".join(str(m) for m in messages if m.is_serious())


@contextlib.contextmanager
def _migration_lock() -> Iterator[None]:
    """Hold an exclusive lock per set of databases while migrating.

    Server processes that start together (``--workers``, gunicorn ``-w``) each run this
    lifespan: without it they all migrate a fresh database at once, and all but one fail
    (``table "auth_permission" already exists``). With it, the first migrates and the others
    find nothing left to do. The lock is a file in the temporary directory named after the
    databases; on a system without ``fcntl`` nothing is locked.
    """
    from django.conf import settings

    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    databases = sorted(
        (
            alias,
            str(db.get("ENGINE")),
            str(db.get("HOST")),
            str(db.get("PORT")),
            str(db.get("NAME")),
        )
        for alias, db in settings.DATABASES.items()
    )
    digest = hashlib.sha256(repr(databases).encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"wsgi2asgi-migrate-{digest}.lock")
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _is_bare_prefix(scope: Scope) -> bool:
    root_path: str = scope.get("root_path", "")
    return bool(root_path) and scope["path"] == root_path


async def _redirect_to_slash(scope: Scope, send: Send) -> None:
    """Answer ``308 Location: <root_path>/[?query]`` with an empty body.

    RFC 9110 §15.4.9: 308 keeps the method and body, unlike Django's own 301. The location is
    a relative reference (``path-absolute``): the path percent-encoded, the query as received.
    """
    location = quote(scope["path"], safe="/:@!$&'()*+,;=-._~").encode("ascii") + b"/"
    query: bytes = scope.get("query_string", b"")
    if query:
        location += b"?" + query
    headers = [(b"location", location), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 308, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _close_connections() -> None:
    from django.db import connections

    connections.close_all()


def _default_path_cookies() -> frozenset[bytes]:
    from django.conf import settings

    candidates = {
        settings.SESSION_COOKIE_NAME: settings.SESSION_COOKIE_PATH,
        settings.CSRF_COOKIE_NAME: settings.CSRF_COOKIE_PATH,
        settings.LANGUAGE_COOKIE_NAME: settings.LANGUAGE_COOKIE_PATH,
        "messages": "/",
    }
    return frozenset(name.encode("latin-1") for name, path in candidates.items() if path == "/")


def _rescope(value: bytes, names: frozenset[bytes], path: bytes) -> bytes:
    """Rewrite ``Path=/`` to ``path`` in a ``Set-Cookie`` value whose cookie is in ``names``."""
    name = value.split(b"=", 1)[0].strip()
    if name not in names:
        return value
    parts = value.split(b";")
    for index, part in enumerate(parts):
        if part.strip().lower() == b"path=/":
            parts[index] = b" " + path
    return b";".join(parts)


def _static_handler(static: bool) -> Callable[[ASGIApp], ASGIApp] | None:
    if not static:
        return None
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    return ASGIStaticFilesHandler  # type: ignore[no-any-return]


def _find_view(scope: Scope) -> object:
    """The view ``ROOT_URLCONF`` gives the request's path (before any middleware), or NO_MATCH.

    The path is Django's ``path_info``: below the mount, ``/`` when empty (as ``WSGIRequest``).
    ``i18n_patterns`` match the *active* language's prefix, which ``LocaleMiddleware`` sets from
    the path later on: a path that fails is tried again in the language its prefix names.
    """
    path_info = route_path(scope) or "/"
    resolver = get_resolver()
    try:
        return resolver.resolve(path_info).func
    except Resolver404:
        pass
    language = translation.get_language_from_path(path_info)  # None without USE_I18N
    if language is None:
        return NO_MATCH
    with translation.override(language):
        try:
            return resolver.resolve(path_info).func
        except Resolver404:
            return NO_MATCH


def _reporting_wsgi_handler() -> Any:
    """Django's ``WSGIHandler``, telling the dispatcher which view each request reached.

    The hook is an instance attribute rather than a subclass: Django names the handler's class
    in ``request_started`` (``sender``) and receivers may filter on ``WSGIHandler``.
    """
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    resolve = handler.resolve_request

    def resolve_request(request: Any) -> Any:
        match = resolve(request)  # with request.urlconf, if a middleware set one
        confirm(match.func)
        return match

    handler.resolve_request = resolve_request
    return handler


def _asgi_handler(ours: bool) -> Any:
    """Django's ``ASGIHandler``; with our bridges, its ``MiddlewareMixin`` middleware as sync."""
    from django.core.handlers.asgi import ASGIHandler

    with middleware_mixins_as_sync() if ours else contextlib.nullcontext():
        return ASGIHandler()


def _auto_handler(options: dict[str, Any], ours: bool) -> Dispatcher:
    """Both of Django's handlers (each builds its own middleware chain) behind a dispatcher."""
    return Dispatcher(
        wsgi_to_asgi(_reporting_wsgi_handler(), **options),
        _asgi_handler(ours),
        find=_find_view,
        # Django's own test (BaseHandler._get_response): asgiref's, which also honours
        # markcoroutinefunction (class-based views with async handlers are marked so).
        is_async=iscoroutinefunction,
    )


def django_app(
    *,
    interface: Literal["auto", "asgi", "wsgi"] = "auto",
    migrate: bool = False,
    static: bool = False,
    bridges: Literal["asgiref", "wsgi2asgi"] = "asgiref",
    **options: Any,
) -> ASGIApp:
    """Return an ASGI app serving the configured Django project.

    ``DJANGO_SETTINGS_MODULE`` must be set (or ``settings.configure()`` called) first.

    Example::

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
        app = Router([Mount("/site", django_app(max_threads=16))])

    Args:
        interface: ``"auto"``: sync views through Django's WSGIHandler on one pool thread each,
            async views through its ASGIHandler, per request; ``"asgi"``: ASGIHandler only;
            ``"wsgi"``: WSGIHandler only (through ``wsgi_to_asgi``).
        migrate: apply migrations at lifespan startup (development and examples).
        static: serve ``STATIC_URL`` from the staticfiles finders, like ``runserver``.
        bridges: ``"wsgi2asgi"`` runs Django's own thread crossings (``ASGIHandler``,
            ``MiddlewareMixin``, signals, the ORM's async methods) through wsgi2asgi's bridges
            instead of asgiref's, process-wide (``use_wsgi2asgi_bridges()`` in
            :mod:`adapters.django_bridges`), and crosses once per run of ``MiddlewareMixin``
            middleware on the async path.
        **options: passed to :func:`wsgi2asgi.wsgi.wsgi_to_asgi` (``"auto"`` and ``"wsgi"``:
            ``max_threads`` bounds the sync views running at once, like gunicorn's
            ``--threads``).

    Raises:
        ValueError: an unknown ``interface`` or ``bridges``, options given with
            ``interface="asgi"``, or ``bridges="asgiref"`` in a process whose Django already
            runs on wsgi2asgi's bridges.
    """
    if interface not in ("auto", "asgi", "wsgi"):
        raise ValueError(f"interface must be 'auto', 'asgi' or 'wsgi', not {interface!r}")
    if bridges not in ("asgiref", "wsgi2asgi"):
        raise ValueError(f"bridges must be 'asgiref' or 'wsgi2asgi', not {bridges!r}")
    if interface == "asgi" and options:
        raise ValueError(f"options {sorted(options)} do not apply to interface='asgi'")
    django.setup(set_prefix=False)
    ours = bridges == "wsgi2asgi"
    if ours:
        use_wsgi2asgi_bridges()
    elif wsgi2asgi_bridges_in_use():
        raise ValueError(
            "Django already runs on wsgi2asgi's bridges in this process: pass "
            "bridges='wsgi2asgi' here too, or call adapters.django_bridges.use_asgiref_bridges()"
        )
    handler: ASGIApp
    if interface == "auto":
        handler = _auto_handler(options, ours)
    elif interface == "asgi":
        handler = _asgi_handler(ours)
    else:
        from django.core.handlers.wsgi import WSGIHandler

        handler = wsgi_to_asgi(WSGIHandler(), **options)
    # Static files are served at the ASGI level in every mode: Django's WSGI StaticFilesHandler
    # compares PATH_INFO with a prefixed STATIC_URL and misses under a mount; the ASGI one
    # compares the full path.
    return DjangoApp(
        handler,
        migrate=migrate,
        static=_static_handler(static),
        redirect_bare_prefix=interface != "wsgi",
    )
