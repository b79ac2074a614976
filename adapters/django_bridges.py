"""Django's thread crossings through wsgi2asgi's bridges: an opt-in, off by default.

Django's async path (``ASGIHandler``, ``MiddlewareMixin`` in async mode, ``Signal.asend``,
the ORM's ``a``-methods, streaming, sessions, cache) crosses between the loop and threads
with ``asgiref.sync``'s ``sync_to_async``, ``async_to_sync`` and ``ThreadSensitiveContext``,
each module importing them by name. :func:`use_wsgi2asgi_bridges` points those names (the
modules of ``TARGETS``) at this module's versions, which run on :mod:`wsgi2asgi.bridges`, and
logs once, at INFO, what it replaced; :func:`use_asgiref_bridges` points them back.
``django.test`` is left alone, and so is ``asgiref.sync`` itself: code that imports
asgiref's bridges keeps them.

Rules the replacements keep, so asgiref's semantics hold with code that still uses asgiref:

1. A ``ThreadSensitiveContext`` (one per request in ``ASGIHandler``) gives the request's
   thread-sensitive calls one thread of their own, ours.
2. Inside one of our contexts (rule 1, or a coroutine our ``async_to_sync`` runs), asgiref's
   own ``sync_to_async(thread_sensitive=True)`` goes where ours would: an asgiref context is
   entered alongside, whose executor hands each call to our bridges (``_FollowOurs``).
3. Inside asgiref's ``async_to_sync`` (Django's async tests, a management command, a Celery
   task) or an asgiref ``ThreadSensitiveContext``, asgiref decides, as it would without us:
   the replacements hand the call to asgiref's bridges, and our context does nothing (asgiref
   gives the thread blocked in ``async_to_sync`` priority over a context).
4. A call made while an exception is being handled runs inside an ``except`` block for it on
   the other side, as asgiref's do: ``sys.exc_info()`` there is the caller's (Django's
   ``handle_uncaught_exception`` logs it and sends it with ``got_request_exception``).

:func:`middleware_mixins_as_sync` is the other half of the saving: Django's handlers built
inside it load ``MiddlewareMixin`` middleware as sync-only, so a run of them crosses to the
request's thread once per request rather than once per hook (Django's own adaptation for
sync-only middleware; ``docs/adapters.md``).

Example::

    django.setup()
    use_wsgi2asgi_bridges()     # INFO: Django's thread crossings now run through wsgi2asgi ...
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import importlib
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asgiref.sync
from asgiref.sync import AsyncToSync, SyncToAsync

from wsgi2asgi import bridges

__all__ = [
    "TARGETS",
    "ThreadSensitiveContext",
    "async_to_sync",
    "middleware_mixins_as_sync",
    "sync_to_async",
    "use_asgiref_bridges",
    "use_wsgi2asgi_bridges",
    "wsgi2asgi_bridges_in_use",
]

logger = logging.getLogger(__name__)

#: ``(module, names it imports from asgiref.sync, the app it belongs to or None)``. A module
#: of an app that is not installed is not imported; a name a module does not bind is skipped.
TARGETS: tuple[tuple[str, tuple[str, ...], str | None], ...] = (
    ("django.core.handlers.asgi", ("ThreadSensitiveContext", "sync_to_async"), None),
    ("django.core.handlers.base", ("async_to_sync", "sync_to_async"), None),
    ("django.core.handlers.exception", ("sync_to_async",), None),
    ("django.utils.deprecation", ("sync_to_async",), None),
    ("django.dispatch.dispatcher", ("async_to_sync", "sync_to_async"), None),
    ("django.http.response", ("async_to_sync", "sync_to_async"), None),
    ("django.db.models.base", ("sync_to_async",), None),
    ("django.db.models.query", ("sync_to_async",), None),
    ("django.db.models.fields.related_descriptors", ("sync_to_async",), None),
    ("django.core.cache.backends.base", ("sync_to_async",), None),
    ("django.contrib.auth.backends", ("sync_to_async",), "django.contrib.auth"),
    ("django.contrib.auth.decorators", ("async_to_sync", "sync_to_async"), "django.contrib.auth"),
    ("django.contrib.auth.middleware", ("sync_to_async",), "django.contrib.auth"),
    ("django.contrib.contenttypes.fields", ("sync_to_async",), "django.contrib.contenttypes"),
    ("django.contrib.sessions.backends.base", ("sync_to_async",), "django.contrib.sessions"),
    ("django.contrib.sessions.backends.db", ("sync_to_async",), "django.contrib.sessions"),
    ("django.contrib.staticfiles.handlers", ("sync_to_async",), "django.contrib.staticfiles"),
)

# (module, name) -> asgiref's object it held, for use_asgiref_bridges().
_replaced: dict[tuple[Any, str], Any] = {}
_logged = False
_switch = threading.Lock()


class _ContextForAsgiref(asgiref.sync.ThreadSensitiveContext):
    """asgiref's context entered alongside ours (rule 2); its type says it is ours."""


def _asgiref_decides() -> bool:
    """Rule 3: an asgiref ``async_to_sync`` or context is the innermost one here."""
    if getattr(AsyncToSync.executors, "current", None) is not None:
        return True
    context = SyncToAsync.thread_sensitive_context.get(None)
    return context is not None and not isinstance(context, _ContextForAsgiref)


def _inside_ours() -> bool:
    return isinstance(SyncToAsync.thread_sensitive_context.get(None), _ContextForAsgiref)


class _FollowOurs(concurrent.futures.Executor):
    """asgiref's executor inside our contexts: each call runs where ours would run it.

    asgiref calls ``submit`` on the loop, from the awaiting task (``run_in_executor``), so a
    task started here inherits that task's context, and our bridges pick its thread.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()  # strongly held until done

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        run = bridges.sync_to_async(_run_into, thread_sensitive=True)
        task = asyncio.get_running_loop().create_task(run(future, fn, args, kwargs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return future


def _run_into(
    future: concurrent.futures.Future[Any],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # delivered to asgiref's caller through the future
        future.set_exception(exc)
    else:
        future.set_result(result)


_FOLLOW_OURS = _FollowOurs()


@contextlib.asynccontextmanager
async def _asgiref_follows_ours() -> AsyncIterator[None]:
    """Rule 2: asgiref's thread-sensitive calls in this block go to our bridges.

    A plain asgiref context with ``_FOLLOW_OURS`` registered as its executor, through the two
    class attributes asgiref's ``SyncToAsync`` looks contexts up in (there since asgiref 3.3).
    Not ``ThreadSensitiveContext(executor=...)`` (asgiref 3.13): that one refuses the calls
    of tasks that outlive it, which a plain context serves, as Django's default does.
    """
    theirs = _ContextForAsgiref()
    await theirs.__aenter__()  # type: ignore[no-untyped-call]
    SyncToAsync.context_to_thread_executor[theirs] = _FOLLOW_OURS
    try:
        yield
    finally:
        # Taken back first: asgiref would shut the executor down in a thread of its own.
        SyncToAsync.context_to_thread_executor.pop(theirs, None)
        await theirs.__aexit__(None, None, None)  # type: ignore[no-untyped-call]


class ThreadSensitiveContext:
    """Django's per-request context on our bridges (rules 1 to 3 above).

    Example::

        async with ThreadSensitiveContext():
            await sync_to_async(f)()      # f, and asgiref's sync_to_async(g), on one thread
    """

    def __init__(self) -> None:
        self._ours: bridges.ThreadSensitiveContext | None = None
        self._theirs: contextlib.AbstractAsyncContextManager[Any] | None = None

    async def __aenter__(self) -> ThreadSensitiveContext:
        if _asgiref_decides() or _inside_ours():
            return self
        self._ours = bridges.ThreadSensitiveContext()
        await self._ours.__aenter__()
        self._theirs = _asgiref_follows_ours()
        await self._theirs.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        theirs, ours, self._theirs, self._ours = self._theirs, self._ours, None, None
        if theirs is not None:
            await theirs.__aexit__(None, None, None)
        if ours is not None:
            await ours.__aexit__(*exc_info)


def sync_to_async(
    func: Callable[..., Any] | None = None,
    *,
    thread_sensitive: bool = True,
    executor: Any = None,
) -> Any:
    """:func:`wsgi2asgi.bridges.sync_to_async`, handing over to asgiref's under rule 3.

    Example::

        user = await sync_to_async(User.objects.get)(pk=1)
    """
    if func is None:
        return functools.partial(
            sync_to_async, thread_sensitive=thread_sensitive, executor=executor
        )
    ours = bridges.sync_to_async(func, thread_sensitive=thread_sensitive, executor=executor)
    target = func

    async def run(*args: Any, **kwargs: Any) -> Any:
        if thread_sensitive and _asgiref_decides():
            theirs = asgiref.sync.sync_to_async(target, thread_sensitive=True)
            return await theirs(*args, **kwargs)
        handling = sys.exception()
        if handling is not None:  # rule 4
            during = bridges.sync_to_async(
                _call_while_handling, thread_sensitive=thread_sensitive, executor=executor
            )
            return await during(handling, target, args, kwargs)
        return await ours(*args, **kwargs)

    return functools.update_wrapper(run, ours)


def _call_while_handling(
    handling: BaseException, func: Callable[..., Any], args: Any, kwargs: Any
) -> Any:
    """Call ``func`` inside an ``except`` block for ``handling``: ``sys.exc_info()`` is it."""
    try:
        raise handling
    except BaseException:
        return func(*args, **kwargs)


def async_to_sync(
    awaitable: Callable[..., Any] | None = None, *, force_new_loop: bool = False
) -> Any:
    """:func:`wsgi2asgi.bridges.async_to_sync`, its coroutine inside rule 2's context.

    Under rule 3 the call is handed to asgiref's ``async_to_sync``.

    Example::

        responses = async_to_sync(signal.asend)(sender=None)
    """
    if awaitable is None:
        return functools.partial(async_to_sync, force_new_loop=force_new_loop)
    target = awaitable

    async def inside_ours(handling: BaseException | None, args: Any, kwargs: Any) -> Any:
        if _inside_ours():
            return await _await_while_handling(handling, target, args, kwargs)
        async with _asgiref_follows_ours():
            return await _await_while_handling(handling, target, args, kwargs)

    _copy_metadata(inside_ours, awaitable)
    ours = bridges.async_to_sync(inside_ours, force_new_loop=force_new_loop)

    def run(*args: Any, **kwargs: Any) -> Any:
        if _asgiref_decides():
            theirs = asgiref.sync.async_to_sync(target, force_new_loop=force_new_loop)
            return theirs(*args, **kwargs)
        return ours(sys.exception(), args, kwargs)

    return functools.update_wrapper(run, ours)


async def _await_while_handling(
    handling: BaseException | None, func: Callable[..., Any], args: Any, kwargs: Any
) -> Any:
    """Await ``func`` (inside an ``except`` block for ``handling``, if any)."""
    if handling is None:
        return await func(*args, **kwargs)
    try:
        raise handling
    except BaseException:
        return await func(*args, **kwargs)


def _copy_metadata(wrapper: Callable[..., Any], wrapped: Callable[..., Any]) -> None:
    """``wraps`` when ``wrapped`` is a function, and its ``__self__`` (Django names by it)."""
    with contextlib.suppress(AttributeError, TypeError):
        functools.update_wrapper(wrapper, wrapped)
    instance = getattr(wrapped, "__self__", None)
    if instance is not None:
        wrapper.__self__ = instance  # type: ignore[attr-defined]


_OURS: dict[str, Any] = {
    "sync_to_async": sync_to_async,
    "async_to_sync": async_to_sync,
    "ThreadSensitiveContext": ThreadSensitiveContext,
}


def use_wsgi2asgi_bridges() -> None:
    """Point Django's ``asgiref.sync`` names (``TARGETS``) at wsgi2asgi's bridges.

    Process-wide and idempotent; logged once at INFO, naming what was replaced. Call it after
    ``django.setup()`` (``django_app(bridges="wsgi2asgi")`` does). Off by default.

    Example::

        django.setup()
        use_wsgi2asgi_bridges()

    Raises:
        django.core.exceptions.AppRegistryNotReady: Django is not set up yet.
    """
    global _logged
    from django.apps import apps

    apps.check_apps_ready()
    with _switch:
        changed = [f"{module.__name__}.{name}" for module, name in _point_names_at_ours(apps)]
        if changed and not _logged:
            _logged = True
            logger.info(
                "Django's thread crossings now run through wsgi2asgi's bridges "
                "(bridges='wsgi2asgi'): replaced asgiref.sync's names in %s",
                ", ".join(changed),
            )


def _point_names_at_ours(apps: Any) -> list[tuple[Any, str]]:
    changed = []
    for module_name, names, app in TARGETS:
        if app is not None and not apps.is_installed(app):
            continue
        module = importlib.import_module(module_name)
        for name in names:
            theirs = getattr(asgiref.sync, name)
            if getattr(module, name, None) is theirs:
                _replaced[(module, name)] = theirs
                setattr(module, name, _OURS[name])
                changed.append((module, name))
    return changed


def use_asgiref_bridges() -> None:
    """Point the names :func:`use_wsgi2asgi_bridges` replaced back at asgiref's.

    Example::

        use_asgiref_bridges()   # e.g. in a test's teardown
    """
    with _switch:
        for (module, name), theirs in _replaced.items():
            setattr(module, name, theirs)
        _replaced.clear()


def wsgi2asgi_bridges_in_use() -> bool:
    """Whether Django's names point at wsgi2asgi's bridges (:func:`use_wsgi2asgi_bridges`)."""
    return bool(_replaced)


_mixins_lock = threading.RLock()  # a middleware may build a handler while loaded


@contextlib.contextmanager
def middleware_mixins_as_sync() -> Iterator[None]:
    """Let Django handlers built in this block (this thread) load ``MiddlewareMixin`` as sync.

    In an async handler Django runs each hook of a ``MiddlewareMixin`` middleware through its
    own ``sync_to_async``: with the default seven, fifteen crossings per request. Declared
    sync-only, a run of them is entered once (``sync_to_async``) and calls the next handler
    through ``async_to_sync``, as Django does for any sync-only middleware: every hook still
    runs on the request's thread. A subclass that overrides ``__call__`` or ``__acall__``, or
    whose hooks are coroutine functions, is left as it is.

    Example::

        with middleware_mixins_as_sync():
            handler = ASGIHandler()
    """
    from django.core.handlers import base

    with _mixins_lock:
        original = base.import_string
        owner = threading.get_ident()

        def import_middleware(path: str) -> Any:
            found = original(path)
            if threading.get_ident() == owner and _plain_mixin(found):
                return _SyncOnly(found)
            return found

        base.import_string = import_middleware
        try:
            yield
        finally:
            base.import_string = original


def _plain_mixin(found: Any) -> bool:
    from django.utils.deprecation import MiddlewareMixin

    if not (isinstance(found, type) and issubclass(found, MiddlewareMixin)):
        return False
    hooks = (getattr(found, name, None) for name in ("process_request", "process_response"))
    return (
        found.__call__ is MiddlewareMixin.__call__
        and getattr(found, "__acall__", None) is MiddlewareMixin.__acall__
        and getattr(found, "sync_capable", True)
        and not any(bridges.iscoroutinefunction(hook) for hook in hooks if hook is not None)
    )


class _SyncOnly:
    """A middleware class as ``load_middleware`` sees it: sync-capable only."""

    sync_capable = True
    async_capable = False

    def __init__(self, middleware: type) -> None:
        self.middleware = middleware

    def __call__(self, get_response: Any) -> Any:
        return self.middleware(get_response)
