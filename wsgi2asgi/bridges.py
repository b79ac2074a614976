"""``sync_to_async`` and ``async_to_sync``: call sync code from async code and back.

Same shape and semantics as asgiref's (what Django users know), with less work per call.

How the threads hand off
------------------------
* ``sync_to_async(f)`` on loop L: the caller copies its context and queues one work item. A
  worker thread runs ``f`` in that context copy, then reports with a single
  ``L.call_soon_threadsafe``. On asyncio's own loops the work item is also what the caller
  awaits (a Future-compatible object, no ``asyncio.Future``), and the worker's callback wakes
  the waiting task then and there: one loop turn per call, not two; the worker then spins
  briefly before it parks (:class:`wsgi2asgi.threads.Spinner`), so a run of calls costs no
  OS wake-up on its side. On uvloop the caller awaits an ``asyncio.Future`` and the worker
  parks at once (both measured faster there). No ``run_in_executor``, no
  ``concurrent.futures.Future``, no ``shield``.
* Which worker: ``thread_sensitive=False`` → a bounded pool (or the ``executor`` given).
  ``thread_sensitive=True`` → the first of: the thread blocked in the enclosing
  ``async_to_sync`` (so sync → async → sync returns to the very same thread, which keeps
  Django's database connections safe); the dedicated thread of the enclosing
  ``ThreadSensitiveContext``; one process-wide thread. Each of these runs items in order.
* ``async_to_sync(g)`` in a thread that ``sync_to_async`` started: ``g`` becomes a task on the
  caller's loop L (the same loop object). The thread then serves its own queue: thread-sensitive
  calls made by ``g`` run on it, until ``g`` finishes. From a thread with no loop (a script, a
  WSGI worker): ``g`` runs on a long-lived *runner* thread with its own loop (reused from call to
  call; ``force_new_loop=True`` runs a fresh loop there instead), and the calling thread serves
  its queue the same way. Tasks ``g`` leaves behind are cancelled when it returns, as
  ``asyncio.run`` does.
* Context variables: the callee runs in a copy of the caller's context; when it returns, every
  variable whose value changed is set in the caller's context. Both directions, any depth.
* Across ``fork()`` (multiprocessing, ``gunicorn --preload``, uWSGI): only the forking thread
  exists in the child. ``os.register_at_fork`` hooks make the child start clean: that thread
  forgets the loop it worked for and the waiting ``async_to_sync`` its context sent
  thread-sensitive calls to; the shared workers and the runners start new threads on demand
  (:mod:`wsgi2asgi.threads`, :mod:`wsgi2asgi.runners`). No check on the per-call path.

Example::

    @sync_to_async
    def load(user_id):            # runs in a worker thread
        return User.objects.get(pk=user_id)

    async def view(request):
        user = await load(42)     # the loop keeps serving other requests meanwhile

    @async_to_sync
    async def fetch(url):
        async with httpx.AsyncClient() as client:
            return (await client.get(url)).text

    fetch("https://example.com")  # from sync code
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import itertools
import os
import threading
from asyncio import get_running_loop
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator
from contextvars import copy_context
from typing import Any, Generic, ParamSpec, TypeVar, overload

from wsgi2asgi.futures import resolve
from wsgi2asgi.runners import cancel_leftovers, runners
from wsgi2asgi.threads import CallerQueue, Executor, Pool, SerialWorker, finishing

__all__ = [
    "Origin",
    "ThreadSensitiveContext",
    "async_to_sync",
    "iscoroutinefunction",
    "origin",
    "sync_to_async",
]

P = ParamSpec("P")
R = TypeVar("R")

_MISSING: Any = object()

# The executor that thread-sensitive calls go to, when set: a CallerQueue (inside
# async_to_sync) or a ThreadSensitiveContext's worker.
_sensitive: contextvars.ContextVar[Executor | None] = contextvars.ContextVar(
    "wsgi2asgi.sensitive", default=None
)
# Variables the bridges manage themselves: never copied back to a caller.
_PRIVATE: frozenset[contextvars.ContextVar[Any]] = frozenset({_sensitive})

_shared_sensitive = SerialWorker("wsgi2asgi-sensitive")
_context_numbers = itertools.count(1)
_pool = Pool("wsgi2asgi-sync")


class Origin:
    """Where a worker thread's work came from: the event loop that handed it over.

    ``async_to_sync`` in a thread with an origin runs its coroutine on ``loop``; ``inner`` is
    that coroutine's task while it runs (cancelled when the caller is cancelled).
    """

    __slots__ = ("cancel_pending", "inner", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.inner: asyncio.Task[Any] | None = None
        # A cancel that found no running inner task (the worker had not reached, or had just
        # scheduled, its async_to_sync): delivered once, to the next inner task that starts.
        self.cancel_pending = False

    def cancel_inner(self) -> None:
        """Cancel the running ``async_to_sync`` coroutine, if any (call on ``loop``'s thread)."""
        if self.inner is not None and not self.inner.done():
            self.inner.cancel()
        else:
            self.cancel_pending = True

    def start_inner(
        self, coro: Coroutine[Any, Any, None], ctx: contextvars.Context
    ) -> asyncio.Task[None]:
        """Start ``coro`` as the inner task on ``loop`` (call on ``loop``'s thread)."""
        task = self.inner = self.loop.create_task(coro, context=ctx)
        if self.cancel_pending:
            self.cancel_pending = False
            task.cancel()
        return task


class _ThreadState(threading.local):
    """What a bridge worker thread is doing: the call it runs (innermost first)."""

    call: Origin | None = None


@contextlib.contextmanager
def origin(loop: asyncio.AbstractEventLoop) -> Iterator[Origin]:
    """Mark the current (worker) thread as working for ``loop`` while the block runs.

    For adapters that start their own worker threads (the WSGI adapter): ``async_to_sync``
    called inside the block runs its coroutine on ``loop`` — the server's loop — instead of a
    runner loop, exactly as inside a ``sync_to_async`` worker.

    Example::

        with origin(loop) as here:
            response = wsgi_app(environ, start_response)
    """
    here = Origin(loop)
    outer, _state.call = _state.call, here
    try:
        yield here
    finally:
        _state.call = outer


_state = _ThreadState()


def iscoroutinefunction(func: object) -> bool:
    """Tell whether ``func`` (or its ``__call__``) returns a coroutine when called.

    >>> async def f(): ...
    >>> iscoroutinefunction(f), iscoroutinefunction(sync_to_async(len))
    (True, True)
    """
    if inspect.iscoroutinefunction(func):
        return True
    if getattr(func, "_is_coroutine", None) is not None:  # asyncio/asgiref marker, < 3.12
        return True
    call = getattr(func, "__call__", None)  # noqa: B004
    return call is not None and not inspect.isfunction(func) and inspect.iscoroutinefunction(call)


# Markers that make a callable pass for a coroutine function: inspect's (3.12+) and asyncio's
# (what asgiref's markcoroutinefunction sets before 3.12). functools.wraps copies them with
# __dict__; on async_to_sync's sync wrapper they would lie.
_COROUTINE_MARKERS = ("_is_coroutine_marker", "_is_coroutine")


def _wrap(wrapper: Callable[..., Any], wrapped: Callable[..., Any]) -> Callable[..., Any]:
    """``functools.wraps``, plus asgiref's ``__self__``, minus coroutine-function markers."""
    functools.update_wrapper(wrapper, wrapped)
    for marker in _COROUTINE_MARKERS:
        wrapper.__dict__.pop(marker, None)
    # asgiref copies a bound method's instance, and Django reads it: a middleware whose
    # process_template_response (wrapped by sync_to_async) returns None is named by
    # middleware_method.__self__.__class__.__name__.
    instance = getattr(wrapped, "__self__", _MISSING)
    if instance is not _MISSING:
        wrapper.__self__ = instance  # type: ignore[attr-defined]
    return wrapper


def _adopt(ctx: contextvars.Context) -> None:
    """Set, in the current context, every variable whose value in ``ctx`` differs."""
    for var, value in ctx.items():
        if var.get(_MISSING) is not value and var not in _PRIVATE:
            var.set(value)


_PENDING, _FINISHED, _CANCELLED = 0, 1, 2
#: No callbacks beyond the waiting task's (shared, never mutated: lists are replaced).
_NONE: list[Any] = []


class _Call(Origin, Generic[R]):
    """One ``sync_to_async`` call: the work item a worker runs, and what the caller awaits.

    On asyncio's own loops it is its own future, of the shape asyncio's ``Task`` accepts from
    an ``await`` (``_asyncio_future_blocking``, ``get_loop``, ``add_done_callback``,
    ``result``, ``cancel``: what ``asyncio.isfuture`` checks). Unlike an ``asyncio.Future``,
    finishing it wakes the waiting task at once, inside the one callback the worker
    scheduled, instead of one more turn of the loop later (a turn of asyncio's loop is Python
    code). On other loops (uvloop, whose turns are cheap) the caller awaits ``future``, a
    plain ``asyncio.Future``, whose C code costs less there than this class's Python.
    """

    __slots__ = (
        "_asyncio_future_blocking",
        "_callbacks",
        "_error",
        "_state",
        "_tb",
        "_value",
        "_waker",
        "args",
        "ctx",
        "func",
        "future",
        "kwargs",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        ctx: contextvars.Context,
        func: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.loop = loop
        self.inner = None
        self.cancel_pending = False
        self.ctx = ctx
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self._state = _PENDING
        # The awaiting task's wake-up (the one callback there is, in practice), then others.
        self._waker: tuple[Callable[[Any], object], contextvars.Context | None] | None = None
        self._callbacks: list[tuple[Callable[[Any], object], contextvars.Context | None]] = _NONE
        self._value: Any = None
        self._error: BaseException | None = None
        self._tb: Any = None
        self._asyncio_future_blocking = False
        self.future: asyncio.Future[R] | None = (
            None if isinstance(loop, asyncio.BaseEventLoop) else loop.create_future()
        )

    # -- the worker's side ------------------------------------------------------------------

    def __call__(self) -> None:
        """Run on the worker thread; report to the loop with one thread-safe callback."""
        future = self.future
        if self._state == _CANCELLED or (future is not None and future.cancelled()):
            return  # the caller gave up before we started: do not run the work at all
        outer, _state.call = _state.call, self
        try:
            value = self.ctx.run(self.func, *self.args, **self.kwargs)
        except BaseException as exc:
            self._report(exc, True)
        else:
            self._report(value, False)
        finally:
            _state.call = outer

    def _report(self, value: Any, failed: bool) -> None:
        future = self.future
        # On a Pool thread, the caller's next call comes to this thread. A worker spins before
        # it parks only for asyncio's own loops: uvloop takes the GIL once per callback, and a
        # worker taking it in between makes the loop thread sleep and wake up again.
        finishing(self, spin=future is None)
        try:
            if future is None:
                self.loop.call_soon_threadsafe(self._fail if failed else self._succeed, value)
            else:
                self.loop.call_soon_threadsafe(_fail if failed else resolve, future, value)
        except RuntimeError:  # the loop was closed under us: nobody is waiting any more
            pass

    # -- the loop's side ----------------------------------------------------------------------

    def _succeed(self, value: R) -> None:
        if self._state == _PENDING:
            self._value = value
            self._finish()

    def _fail(self, exc: BaseException) -> None:
        if self._state == _PENDING:
            exc = _travelling(exc)
            self._error, self._tb = exc, exc.__traceback__
            self._finish()

    def _finish(self) -> None:
        # Called in a plain loop callback, never inside a task: the waiting task may step now.
        self._state = _FINISHED
        waker, self._waker = self._waker, None
        if waker is not None:
            callback, context = waker
            if context is None:
                callback(self)
            else:
                context.run(callback, self)
        if self._callbacks:
            callbacks, self._callbacks = self._callbacks, _NONE
            for callback, context in callbacks:
                if context is None:
                    callback(self)
                else:
                    context.run(callback, self)

    def __await__(self) -> Generator[Any, None, R]:
        if self._state == _PENDING:
            self._asyncio_future_blocking = True
            yield self
        if self._error is not None:
            raise self._error.with_traceback(self._tb)
        value: R = self._value
        return value

    def result(self) -> R:
        """The function's return value; raise its exception, or ``CancelledError``."""
        if self._state == _PENDING:
            raise asyncio.InvalidStateError("sync_to_async call not finished")
        if self._error is not None:
            raise self._error.with_traceback(self._tb)
        value: R = self._value
        return value

    def done(self) -> bool:
        return self._state != _PENDING

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self.loop

    def add_done_callback(
        self, callback: Callable[[Any], object], *, context: contextvars.Context | None = None
    ) -> None:
        if self._state != _PENDING:
            self.loop.call_soon(callback, self, context=context)
        elif self._waker is None:
            self._waker = (callback, context)
        else:
            self._callbacks = [*self._callbacks, (callback, context)]

    def remove_done_callback(self, callback: Callable[[Any], object]) -> int:
        removed = 0
        if self._waker is not None and self._waker[0] == callback:
            self._waker, removed = None, 1
        kept = [(cb, ctx) for cb, ctx in self._callbacks if cb != callback]
        removed, self._callbacks = removed + len(self._callbacks) - len(kept), kept
        return removed

    def cancel(self, msg: Any = None) -> bool:
        """The awaiting task was cancelled: never start, or stop waiting (call on the loop)."""
        if self._state != _PENDING:
            return False
        self._state = _CANCELLED
        self._error = asyncio.CancelledError() if msg is None else asyncio.CancelledError(msg)
        waker, self._waker = self._waker, None
        callbacks, self._callbacks = self._callbacks, _NONE
        if waker is not None:
            callbacks = [waker, *callbacks]
        for callback, context in callbacks:  # a task may be running: wake the waiter later
            self.loop.call_soon(callback, self, context=context)
        return True


def _travelling(exc: BaseException) -> BaseException:
    """``exc``, or a ``RuntimeError`` for a ``StopIteration`` (cannot travel through a future:
    PEP 479)."""
    if isinstance(exc, StopIteration):
        return RuntimeError(f"StopIteration raised by a sync_to_async function: {exc!r}")
    return exc


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(_travelling(exc))


@overload
def sync_to_async(
    func: Callable[P, R], *, thread_sensitive: bool = ..., executor: Any = ...
) -> Callable[P, Coroutine[Any, Any, R]]: ...


@overload
def sync_to_async(
    func: None = None, *, thread_sensitive: bool = ..., executor: Any = ...
) -> Callable[[Callable[P, R]], Callable[P, Coroutine[Any, Any, R]]]: ...


def sync_to_async(
    func: Callable[P, R] | None = None,
    *,
    thread_sensitive: bool = True,
    executor: Any = None,
) -> Any:
    """Wrap a sync function so async code can ``await`` it; it runs in a worker thread.

    Example::

        rows = await sync_to_async(cursor.fetchall)()

        @sync_to_async(thread_sensitive=False)
        def checksum(path): ...

    Args:
        func: the sync callable (omit it to get a decorator).
        thread_sensitive: run on the one thread of the current context, in order (the thread
            of the enclosing ``async_to_sync``, else the ``ThreadSensitiveContext``'s, else a
            process-wide one). ``False`` runs concurrently in a bounded pool.
        executor: an object with ``submit(fn)`` (e.g. a ``ThreadPoolExecutor``) to run the
            function on; only with ``thread_sensitive=False``.

    Returns:
        An ``async def`` function with ``func``'s name, docstring, attributes, ``__wrapped__``
        and, for a bound method, ``__self__`` (as asgiref). While awaited, the event loop keeps
        running; ``func`` never runs on the loop's thread.

    Raises:
        TypeError: ``func`` is a coroutine function or not callable, or ``executor`` is given
            with ``thread_sensitive=True``.
    """
    if executor is not None and thread_sensitive:
        raise TypeError("executor must not be set when thread_sensitive is True")
    if func is None:
        return functools.partial(
            sync_to_async, thread_sensitive=thread_sensitive, executor=executor
        )
    if not callable(func) or iscoroutinefunction(func):
        raise TypeError(
            f"sync_to_async can only wrap a sync function, not {func!r}; "
            "await a coroutine function directly instead"
        )
    target = func
    if executor is not None:
        submit_to: Executor | None = executor
    elif not thread_sensitive:
        submit_to = _pool
    else:
        submit_to = None  # chosen per call: the context may name a thread

    async def run_in_thread(*args: P.args, **kwargs: P.kwargs) -> R:
        call = _Call(get_running_loop(), copy_context(), target, args, kwargs)
        if submit_to is None:
            (_sensitive.get() or _shared_sensitive).submit(call)
        else:
            submit_to.submit(call)
        try:
            return await (call if call.future is None else call.future)
        except asyncio.CancelledError:
            # If the worker is blocked in async_to_sync, cancel the coroutine it waits for, so
            # the sync code sees CancelledError raised out of that call.
            call.cancel_inner()
            raise
        finally:
            _adopt(call.ctx)

    return _wrap(run_in_thread, func)


@overload
def async_to_sync(
    awaitable: Callable[P, Awaitable[R]], *, force_new_loop: bool = ...
) -> Callable[P, R]: ...


@overload
def async_to_sync(
    awaitable: None = None, *, force_new_loop: bool = ...
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, R]]: ...


def async_to_sync(
    awaitable: Callable[P, Awaitable[R]] | None = None,
    *,
    force_new_loop: bool = False,
) -> Any:
    """Wrap a coroutine function so sync code can call it and get its result.

    Where the coroutine runs: on the event loop of the ``sync_to_async`` call that started the
    current thread (the server's own loop), else on a long-lived runner loop in a background
    thread. While it runs, the calling thread serves the thread-sensitive ``sync_to_async``
    calls the coroutine makes, so they come back to this very thread.

    Cancellation: a sync caller cannot be cancelled. If the task awaiting the enclosing
    ``sync_to_async`` is cancelled, the coroutine is cancelled and ``CancelledError`` is
    raised out of this call into the sync code. A cancel that arrives while the sync code is
    not inside ``async_to_sync`` is delivered once, to its next ``async_to_sync`` call.

    Example::

        @async_to_sync
        async def fetch(url): ...

        html = fetch("https://example.com")

    Args:
        awaitable: a coroutine function, or a callable object with ``async def __call__``
            (omit it to get a decorator).
        force_new_loop: run on a fresh event loop even if a server loop or a runner loop is
            available; the loop is closed afterwards.

    Returns:
        A sync function with ``awaitable``'s name, docstring, attributes, ``__wrapped__`` and,
        for a bound method, ``__self__`` (as asgiref). Never a coroutine function, even when
        ``awaitable`` was marked as one (``markcoroutinefunction``).

    Raises:
        TypeError: ``awaitable`` is not a coroutine function.
        RuntimeError: (when called) the calling thread is running an event loop; ``await``
            the coroutine instead of using ``async_to_sync``.
    """
    if awaitable is None:
        return functools.partial(async_to_sync, force_new_loop=force_new_loop)
    if not iscoroutinefunction(awaitable):
        raise TypeError(
            f"async_to_sync can only wrap a coroutine function, not {awaitable!r}; "
            "call a sync function directly instead"
        )
    target = awaitable

    def run_to_completion(*args: P.args, **kwargs: P.kwargs) -> R:
        if asyncio._get_running_loop() is not None:
            raise RuntimeError(
                "async_to_sync cannot run in a thread whose event loop is running: "
                "just 'await' the coroutine function instead"
            )
        call = _state.call
        # A loop that is stopped but not closed (a test runner between tests) would accept the
        # task and never run it: asgiref hangs there. Only a running loop is used.
        if call is not None and not force_new_loop and call.loop.is_running():
            return _run_on_loop(call, target, args, kwargs)
        return _run_on_runner(target, args, kwargs, force_new_loop)

    return _wrap(run_to_completion, awaitable)


class _Outcome(Generic[R]):
    """The result of a coroutine run for a waiting sync thread."""

    __slots__ = ("ctx", "error", "value")

    def __init__(self, ctx: contextvars.Context) -> None:
        self.ctx = ctx
        self.value: Any = None
        self.error: BaseException | None = None

    def result(self) -> R:
        _adopt(self.ctx)
        if self.error is not None:
            error, self.error = self.error, None  # no reference cycle through the traceback
            raise error
        value: R = self.value
        return value


async def _drive(
    outcome: _Outcome[R],
    func: Callable[..., Awaitable[R]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    waiter: CallerQueue,
) -> None:
    try:
        outcome.value = await func(*args, **kwargs)
    except BaseException as exc:
        outcome.error = exc
    finally:
        waiter.done()


def _prepare(waiter: CallerQueue) -> contextvars.Context:
    ctx = contextvars.copy_context()
    ctx.run(_sensitive.set, waiter)
    return ctx


def _run_on_loop(
    call: Origin,
    func: Callable[..., Awaitable[R]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> R:
    """Run ``func`` as a task on the loop that started this worker thread; serve meanwhile."""
    waiter = CallerQueue(_shared_sensitive)
    ctx = _prepare(waiter)
    outcome: _Outcome[R] = _Outcome(ctx)

    coro = _drive(outcome, func, args, kwargs, waiter)

    def start() -> None:
        call.start_inner(coro, ctx).add_done_callback(settle)

    def settle(task: asyncio.Task[None]) -> None:
        # A task cancelled before its first step never enters _drive (the CancelledError is
        # thrown at the coroutine's start), so _drive cannot report: do it here.
        if task.cancelled() and outcome.error is None:
            outcome.error = asyncio.CancelledError()
            waiter.done()

    try:
        call.loop.call_soon_threadsafe(start)
    except RuntimeError:  # closed since we looked: run it elsewhere
        coro.close()
        return _run_on_runner(func, args, kwargs, False)
    waiter.serve()
    call.inner = None
    return outcome.result()


def _run_on_runner(
    func: Callable[..., Awaitable[R]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    fresh: bool,
) -> R:
    """Run ``func`` on a runner thread's loop (or a fresh loop); serve meanwhile."""
    waiter = CallerQueue(_shared_sensitive)
    ctx = _prepare(waiter)
    outcome: _Outcome[R] = _Outcome(ctx)
    if fresh:

        def run_fresh() -> None:
            # asyncio.run semantics on a brand-new loop: tasks cancelled, generators
            # finalised, default executor shut down, loop closed.
            try:
                with asyncio.Runner() as runner:
                    runner.run(_drive(outcome, func, args, kwargs, waiter), context=ctx)
            except BaseException as exc:  # the loop itself failed; _drive did not signal
                if outcome.error is None:
                    outcome.error = exc
                waiter.done()

        thread = threading.Thread(target=run_fresh, name="wsgi2asgi-fresh-loop", daemon=True)
        thread.start()
        waiter.serve()
        thread.join()
        return outcome.result()

    async def run_and_clean() -> None:
        before = asyncio.all_tasks()
        try:
            await _drive(outcome, func, args, kwargs, waiter)
        finally:
            await cancel_leftovers(before)

    runner = runners.take()

    def start() -> None:
        runner.loop.create_task(run_and_clean(), context=ctx)

    runner.loop.call_soon_threadsafe(start)
    try:
        waiter.serve()
    finally:
        runners.give(runner)
    return outcome.result()


class ThreadSensitiveContext:
    """Give the thread-sensitive calls made inside this block a thread of their own.

    The WSGI adapter and Django's ASGI handler use one per request, so each request's
    thread-sensitive code runs on one thread, in order, without queueing behind other requests.
    Re-entrant: a nested context inside one that is active is a no-op. The thread ends when the
    outermost block exits (after the calls already queued).

    Example::

        async with ThreadSensitiveContext():
            await sync_to_async(f)()   # f and g run on the same dedicated thread
            await sync_to_async(g)()
    """

    def __init__(self) -> None:
        self._worker: SerialWorker | None = None
        self._token: contextvars.Token[Executor | None] | None = None

    async def __aenter__(self) -> ThreadSensitiveContext:
        if not isinstance(_sensitive.get(), _ContextWorker):
            self._worker = _ContextWorker(f"wsgi2asgi-context-{next(_context_numbers)}")
            self._token = _sensitive.set(self._worker)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._token is None or self._worker is None:
            return
        _sensitive.reset(self._token)
        worker, self._worker, self._token = self._worker, None, None
        # Stop after the queued items; never join on the loop (the thread may be parked in
        # an async_to_sync that needs this very loop).
        worker.shutdown(wait=False)


def _forget_parent_after_fork() -> None:
    """In a fork child, where only the forking thread exists: forget the parent's threads.

    That thread may be a bridge worker that thinks it works for the parent's loop (no one runs
    it here: ``async_to_sync`` would wait for ever), and its context may send thread-sensitive
    calls to the queue of a thread blocked in ``async_to_sync`` (gone, or the forking thread
    itself, busy). Those go to the process-wide thread instead. A ``ThreadSensitiveContext``'s
    worker restarts by itself (:mod:`wsgi2asgi.threads`).
    """
    _state.call = None
    if isinstance(_sensitive.get(), CallerQueue):
        _sensitive.set(None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent_after_fork)


class _ContextWorker(SerialWorker):
    """A ThreadSensitiveContext's thread; calls arriving after its exit go to the shared one."""

    def submit(self, item: Callable[[], object], /) -> None:
        try:
            super().submit(item)
        except RuntimeError:
            _shared_sensitive.submit(item)
