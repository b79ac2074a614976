"""Settling a future from another thread's callback, when its waiter may have given up.

A thread hands a result to the event loop with ``loop.call_soon_threadsafe(resolve, future,
value)``; by the time the loop runs the callback the waiting task may have been cancelled,
which cancels the future too. Setting a result then would raise ``InvalidStateError`` inside
the loop's callback, logged as an error for something that is normal.

Example::

    loop.call_soon_threadsafe(resolve, future, data)
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["resolve"]


def resolve(future: asyncio.Future[Any], value: Any) -> None:
    """Set ``future``'s result to ``value`` unless it is already done (cancelled)."""
    if not future.done():
        future.set_result(value)
