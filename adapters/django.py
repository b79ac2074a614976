"""Serve a Django project as an ASGI app that behaves correctly under a mount prefix.

Two ways in, the user chooses (``docs/adapters.md`` says when to pick which):

* ``interface="asgi"`` (default): Django's own ``ASGIHandler``. Async views run on the
  server's loop; sync views run through asgiref's ``sync_to_async``, one thread per request.
* ``interface="wsgi"``: Django's ``WSGIHandler`` through :func:`wsgi2asgi.wsgi.wsgi_to_asgi`,
  every request on one worker thread from start to ``close()`` — exactly the model the project
  had under gunicorn, which is the safe first step for a large sync codebase.

Under a mount, Django takes its script prefix from ``root_path`` (ASGI) or ``SCRIPT_NAME``
(WSGI), so ``reverse()``, ``{% url %}``, the admin, relative ``STATIC_URL`` and redirects all
carry the prefix without ``FORCE_SCRIPT_NAME``.

What this adapter adds:

* a lifespan. Django's handlers refuse ``lifespan`` scopes; this one runs Django's system
  checks at startup (like ``runserver`` does) and answers ``lifespan.startup.failed`` with the
  errors if any check fails, so a broken configuration stops the server with the failing mount
  named instead of failing request by request. ``migrate=True`` also applies migrations at
  startup (a convenience for examples and development). At shutdown the database connections of
  the thread-sensitive thread are closed. Per request, Django's own ``request_finished`` signal
  closes connections, which both handlers send (the WSGI one from the response's ``close()``,
  which ``wsgi_to_asgi`` always calls on the request's own thread).
* cookies under a prefix: Django's session, CSRF, language and messages cookies default to
  ``Path=/``. Under a mount, the adapter scopes them to the mount (``Path=<root_path>``) so two
  projects mounted side by side do not overwrite each other's cookies; a path configured in
  settings (anything but ``/``) is left alone.
* ``static=True`` serves ``STATIC_URL`` from the staticfiles finders, as ``runserver`` does
  (Django's ``ASGIStaticFilesHandler``/``StaticFilesHandler``): handy for the admin in
  development; in production collect static files and mount them, or use a CDN.
* WebSockets: Django's handlers take only HTTP (``ASGIHandler`` raises on anything else, which
  the server turns into a 500). The adapter closes the handshake before accepting, which the
  server answers with 403 (ASGI ``www.rst``).
* the bare prefix: under ``Mount("/dj")`` a request for ``/dj`` reaches ``ASGIHandler`` with an
  empty ``path_info``, which no URL pattern matches (404; 301 with ``CommonMiddleware``). The
  adapter answers it with ``308 Location: /dj/`` (query kept, method and body kept by the
  client). ``WSGIHandler`` answers ``/dj`` itself (it reads an empty ``PATH_INFO`` as ``/``),
  so ``interface="wsgi"`` is left alone.

Example::

    import os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site.settings")
    from adapters.django import django_app

    application = Router([Mount("", django_app())])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import django

from wsgi2asgi.bridges import sync_to_async
from wsgi2asgi.wsgi import wsgi_to_asgi

if TYPE_CHECKING:
    from wsgi2asgi.typing import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DjangoApp", "django_app"]


class DjangoApp:
    """An ASGI app: Django's handler for ``http``, its own answer for ``lifespan``.

    Args:
        handler: the ASGI app that serves HTTP (Django's ASGIHandler or a wrapped WSGIHandler).
        migrate: apply migrations at lifespan startup.
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
            self._serve_static(scope.get("root_path", ""))
        if scope["type"] == "http" and scope.get("root_path"):
            await self.handler(scope, receive, self._scoped_cookies(scope["root_path"], send))
        else:
            await self.handler(scope, receive, send)

    def _serve_static(self, root_path: str) -> None:
        """Wrap the handler with the static files handler, at the first request.

        Django computes a relative ``STATIC_URL`` (``"static/"``) with the script prefix *once*
        and caches it; the static handler reads it when built. Both must therefore happen under
        the mount's prefix, which is first known here.
        """
        from django.conf import settings
        from django.urls import get_script_prefix, set_script_prefix

        wrap, self._static = self._static, None
        assert wrap is not None
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
                call_command("migrate", interactive=False, verbosity=0)
            except Exception as exc:  # reported to the server as a failed startup
                return f"migrate failed: {exc!r}"
            finally:
                _close_connections()
        messages = checks.run_checks(include_deployment_checks=False)
        return "; ".join(str(m) for m in messages if m.is_serious())


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


def django_app(
    *,
    interface: Literal["asgi", "wsgi"] = "asgi",
    migrate: bool = False,
    static: bool = False,
    **options: Any,
) -> ASGIApp:
    """Return an ASGI app serving the configured Django project.

    ``DJANGO_SETTINGS_MODULE`` must be set (or ``settings.configure()`` called) first.

    Example::

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
        app = Router([Mount("/site", django_app(interface="wsgi", max_threads=16))])

    Args:
        interface: ``"asgi"`` for Django's ASGIHandler, ``"wsgi"`` for its WSGIHandler
            through ``wsgi_to_asgi``.
        migrate: apply migrations at lifespan startup (development and examples).
        static: serve ``STATIC_URL`` from the staticfiles finders, like ``runserver``.
        **options: passed to :func:`wsgi2asgi.wsgi.wsgi_to_asgi` (``interface="wsgi"`` only).

    Raises:
        ValueError: an unknown ``interface``, or options given with ``interface="asgi"``.
    """
    if interface == "asgi":
        if options:
            raise ValueError(f"options {sorted(options)} only apply to interface='wsgi'")
        from django.core.handlers.asgi import ASGIHandler

        django.setup(set_prefix=False)
        return DjangoApp(
            ASGIHandler(),
            migrate=migrate,
            static=_static_handler(static),
            redirect_bare_prefix=True,
        )
    if interface == "wsgi":
        from django.core.handlers.wsgi import WSGIHandler

        django.setup(set_prefix=False)
        # Static files are served at the ASGI level in both modes: Django's WSGI
        # StaticFilesHandler compares PATH_INFO with a prefixed STATIC_URL and misses under a
        # mount; the ASGI one compares the full path.
        return DjangoApp(
            wsgi_to_asgi(WSGIHandler(), **options), migrate=migrate, static=_static_handler(static)
        )
    raise ValueError(f"interface must be 'asgi' or 'wsgi', not {interface!r}")
