"""``Local``: a ``threading.local`` that is also task-local and travels across the bridges.

Rules this module keeps (asgiref's semantics, which Django relies on):

* Default (``thread_critical=False``): values live in a context variable holding an immutable
  mapping; every write makes a new mapping (copy-on-write). So a task sees the values its
  creator had when it was created, and its own writes never leak to its parent or siblings —
  concurrent requests are isolated. Sync code in one thread shares the thread's context, so it
  behaves like ``threading.local``. ``sync_to_async``/``async_to_sync`` carry context both ways,
  so values set before a bridge are visible on the other side, and values set on the other side
  are visible after it returns.
* ``thread_critical=True``: a plain ``threading.local`` in sync threads; in a thread running an
  event loop, a per-thread context variable (task-local within that thread). Never crosses a
  bridge — what Django's database connections need.
* No per-access lock: reads are one ``ContextVar.get``; writes one ``dict`` copy.
* No process-wide state, so nothing to reset across ``fork()``: the forking thread's values are
  still there in the child (the bridges restart their own threads there).

Example::

    request_user = Local()

    async def view(request):
        request_user.name = "ada"
        await sync_to_async(audit)()     # audit() reads request_user.name == "ada"
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

__all__ = ["Local"]

_EMPTY: dict[str, Any] = {}


class Local:
    """An attribute namespace local to the current thread *and* task.

    Example::

        local = Local()
        local.x = 1
        assert local.x == 1
        del local.x

    Args:
        thread_critical: keep values strictly per thread (never across a bridge).
    """

    # Name-mangled (``_Local__var``...), so user attributes such as ``_var`` never collide.
    __slots__ = ("__critical", "__var", "__thread", "__weakref__")
    __critical: bool
    __var: contextvars.ContextVar[dict[str, Any]]
    __thread: threading.local

    def __init__(self, thread_critical: bool = False) -> None:
        object.__setattr__(self, "_Local__critical", thread_critical)
        object.__setattr__(self, "_Local__var", contextvars.ContextVar(f"Local-{id(self)}"))
        object.__setattr__(self, "_Local__thread", threading.local())

    def _cvar(self) -> contextvars.ContextVar[dict[str, Any]]:
        if not self.__critical:
            return self.__var
        # Thread-critical in a thread with a running loop: one context variable per thread.
        thread = self.__thread
        try:
            var: contextvars.ContextVar[dict[str, Any]] = thread.cvar
        except AttributeError:
            var = contextvars.ContextVar(f"Local-{id(self)}-{threading.get_ident()}")
            thread.cvar = var
        return var

    def _in_sync_thread(self) -> bool:
        return self.__critical and asyncio._get_running_loop() is None

    def __getattr__(self, name: str) -> Any:
        if self._in_sync_thread():
            try:
                return self.__thread.values[name]
            except (AttributeError, KeyError):
                raise AttributeError(f"{self!r} has no attribute {name!r}") from None
        try:
            return self._cvar().get(_EMPTY)[name]
        except KeyError:
            raise AttributeError(f"{self!r} has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if self._in_sync_thread():
            try:
                self.__thread.values[name] = value
            except AttributeError:
                self.__thread.values = {name: value}
            return
        var = self._cvar()
        values = dict(var.get(_EMPTY))
        values[name] = value
        var.set(values)

    def __delattr__(self, name: str) -> None:
        if self._in_sync_thread():
            try:
                del self.__thread.values[name]
            except (AttributeError, KeyError):
                raise AttributeError(f"{self!r} has no attribute {name!r}") from None
            return
        var = self._cvar()
        current = var.get(_EMPTY)
        if name not in current:
            raise AttributeError(f"{self!r} has no attribute {name!r}")
        values = dict(current)
        del values[name]
        var.set(values)

    def __repr__(self) -> str:
        kind = "thread_critical" if self.__critical else "context"
        return f"<Local {kind} at {id(self):#x}>"
