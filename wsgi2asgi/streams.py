"""Byte streams between a WSGI worker thread and the event loop, both with backpressure.

Rules this module keeps:

* ``RequestBody`` is ``wsgi.input``. Only one coroutine at a time calls the ASGI ``receive``
  (an ``asyncio.Lock``): either the worker's pull (a hand-off to the loop when the app wants
  bytes it does not have) or ``watch()``, a task that receives ahead of the app, at most
  ``READ_AHEAD`` bytes, then waits until a read has taken them. At most about twice that is
  held (what a read took but the app has not consumed yet, and what the watcher holds), so
  the client is read no faster than the app consumes (the server's flow control then pauses
  the socket) and a 512 MiB upload never sits in memory, while most reads find their bytes
  already here. A read returns as soon as it has what it asked for, never waiting for more.
  Reads never go past ``Content-Length`` (PEP 3333: "the application should not attempt to
  read more data than is specified by the CONTENT_LENGTH variable"; we enforce it).
* ``watch()`` is also how a disconnect is noticed: ``receive()`` is the only place the ASGI
  spec reports it, and servers (uvicorn) silently drop what is sent after it. Once the
  client is gone, reads raise :class:`~wsgi2asgi.exceptions.ClientDisconnected` and the
  ``on_disconnect`` callback closes the response channel. An app that never reads a body
  of more than ``READ_AHEAD`` bytes while it streams forever is the one case a disconnect
  goes unnoticed until a send fails (the watcher must not buffer without bound).
* ``ResponseChannel`` carries ASGI messages from the worker thread to the loop. The thread
  appends under a lock and wakes the loop only when the loop is waiting (one
  ``call_soon_threadsafe`` per burst, not per chunk); it blocks once more than ``high_water``
  bytes are queued and resumes when the loop has sent them below ``low_water``. When the
  client is gone, ``put`` raises ``ClientDisconnected`` so the app stops being iterated.

Example (inside the adapter)::

    body = RequestBody(loop, receive, content_length=1024)
    data = body.read(100)             # in the worker thread
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from wsgi2asgi.exceptions import ClientDisconnected
from wsgi2asgi.futures import resolve
from wsgi2asgi.typing import Message, Receive

__all__ = ["READ_AHEAD", "RequestBody", "ResponseChannel"]

#: Request body bytes the loop receives ahead of the app's reads, so most reads find their
#: bytes already there and a read costs one thread/loop round trip per ``READ_AHEAD`` bytes.
#: What a read took from there may wait in the app's buffer meanwhile: at most about twice
#: this (plus one server message) is ever held for a request.
READ_AHEAD = 256 * 1024
# The most request body fetched in one hand-off from the loop: bounds the memory a single
# read can pull in, while keeping the thread/loop round trips few for large reads.
_MAX_PULL = 1024 * 1024


class RequestBody:
    """``wsgi.input``: the request body, read from the worker thread, pulled on demand.

    Args:
        loop: the event loop that owns ``receive``.
        receive: the ASGI receive callable.
        content_length: the declared length, or ``None`` (chunked / unknown).
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, receive: Receive, content_length: int | None
    ) -> None:
        self._loop = loop
        self._receive = receive
        self._buffer = bytearray()
        self._remaining = content_length  # bytes the app may still read, when declared
        self.complete = False  # the app has all of the body it will get
        self.disconnected = False
        self.on_disconnect: Any = None  # called (on the loop) when the client is gone
        #: The most bytes ever held in the buffer: what "bounded" means, measurable.
        self.peak_buffered = 0
        # Loop side: receive() has one caller at a time (the app's pulls or the watcher);
        # messages the watcher took while the app was not reading wait in the stash.
        self._receiving = asyncio.Lock()
        self._stash: list[bytes] = []
        self._stash_size = 0
        self._ended = False  # the last http.request message (or a disconnect) was received
        self._stash_room = asyncio.Event()
        self._stash_room.set()
        self._pending: concurrent.futures.Future[tuple[list[bytes], bool, bool]] | None = None
        self._abandoned = False

    # -- pulling (worker thread) ---------------------------------------------------------------

    def _pull(self, want: int = 1) -> bool:
        """Fetch messages into the buffer (about ``want`` bytes, one hand-off to the loop).

        Returns False at the end of the body.
        """
        if self.complete:
            return False
        if self.disconnected:
            raise ClientDisconnected("the client disconnected while the request body was read")
        try:
            future = asyncio.run_coroutine_threadsafe(self._gather(want), self._loop)
            self._pending = future
            if self._abandoned:
                future.cancel()
            chunks, more, disconnected = future.result()
        except (concurrent.futures.CancelledError, RuntimeError):
            # The request is over on the loop side (or the loop is closed): nothing more
            # will be received for this request.
            self.disconnected = True
            raise ClientDisconnected("the request ended before its body was read") from None
        finally:
            self._pending = None
        for chunk in chunks:
            self._buffer += chunk
        self.peak_buffered = max(self.peak_buffered, len(self._buffer))
        if disconnected:
            self.disconnected = True
            raise ClientDisconnected("the client disconnected while the request body was read")
        if not more:
            self._finish()
        return True

    # -- receiving (loop thread) ---------------------------------------------------------------

    def abandon(self) -> None:
        """The ASGI call is over: a read still waiting for the loop raises ClientDisconnected.

        Without this, a worker reading after the server gave up on the request could wait
        forever for a ``receive()`` nobody answers.
        """
        self._abandoned = True
        pending = self._pending
        if pending is not None:
            pending.cancel()

    async def _gather(self, want: int) -> tuple[list[bytes], bool, bool]:
        """Return ``want`` bytes (at most ``_MAX_PULL``), or what is left, or a disconnect.

        Never more messages than needed: a streaming app reading 5 bytes gets them as soon as
        one message brings them, and what a message brings beyond stays buffered.
        """
        want = min(want, _MAX_PULL)
        chunks: list[bytes] = []
        size = 0
        while True:
            size += self._stash_size
            chunks += self._take_stash()
            if self._ended or size >= want:
                return chunks, not self._ended, self.disconnected
            async with self._receiving:  # behind the watcher, if it is receiving
                if not self._stash and not self._ended:
                    message = await self._receive()
                    if message["type"] == "http.disconnect":
                        self._disconnect()
                    else:
                        body = message.get("body", b"")
                        chunks.append(body)
                        size += len(body)
                        self._ended = not message.get("more_body", False)

    def _take_stash(self) -> list[bytes]:
        chunks, self._stash, self._stash_size = self._stash, [], 0
        self._stash_room.set()
        return chunks

    async def watch(self) -> None:
        """Receive ahead of the app (see the module's rules) until the client disconnects.

        The only way to learn of a disconnect is ``receive()``. Body bytes that arrive
        meanwhile are kept (at most ``READ_AHEAD``, then receiving pauses until the app reads)
        or dropped once the app has all it may read.
        """
        while not self.disconnected:
            await self._stash_room.wait()
            if self._ended:
                # Only http.disconnect can come now, and no read needs receive(): wait for
                # it without holding the lock, or a read would wait for the disconnect too.
                # (Anything else from a server here is off-spec: stop rather than spin.)
                if (await self._receive())["type"] == "http.disconnect":
                    self._disconnect()
                return
            async with self._receiving:
                if not self._ended:
                    self._stash_message(await self._receive())

    def _stash_message(self, message: Message) -> None:
        if message["type"] == "http.disconnect":
            self._disconnect()
            return
        self._ended = not message.get("more_body", False)
        if self.complete:
            return  # past Content-Length: not the app's business
        body = message.get("body", b"")
        self._stash.append(body)
        self._stash_size += len(body)
        if self._stash_size >= READ_AHEAD:
            self._stash_room.clear()

    def _disconnect(self) -> None:
        self.disconnected = True
        self._ended = True
        if self.on_disconnect is not None:
            self.on_disconnect()

    def _finish(self) -> None:
        self.complete = True

    def _limit(self, size: int) -> int:
        """Clip a read size to what Content-Length still allows (``-1`` = all)."""
        if self._remaining is None:
            return size
        return self._remaining if size < 0 else min(size, self._remaining)

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        if self._remaining is not None:
            self._remaining -= len(data)
            if self._remaining == 0 and not self.complete:
                # The declared body is all read; anything more is not the app's business.
                self._finish()
        return data

    # -- the file-like API PEP 3333 asks for -------------------------------------------------

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all that is left when ``size`` is ``-1`` or ``None``)."""
        size = self._limit(-1 if size is None else size)
        if size < 0:
            while self._pull(_MAX_PULL):
                pass
            return self._take(len(self._buffer))
        while len(self._buffer) < size and self._pull(size - len(self._buffer)):
            pass
        return self._take(min(size, len(self._buffer)))

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line, up to ``size`` bytes."""
        size = self._limit(-1 if size is None else size)
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end >= 0:
                length = end + 1
                break
            if 0 <= size <= len(self._buffer):
                length = size
                break
            start = len(self._buffer)
            if not self._pull():
                length = len(self._buffer)
                break
        if size >= 0:
            length = min(length, size)
        return self._take(length)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Read lines until the end of the body (or about ``hint`` bytes)."""
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def close(self) -> None:
        """Nothing to release; present so the stream can be used where files are expected."""


class ResponseChannel:
    """Messages from the worker thread to the loop, with bounded bytes in flight.

    Args:
        loop: the event loop that sends.
        high_water: bytes queued before ``put`` blocks.
        low_water: bytes queued below which a blocked ``put`` resumes.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        high_water: int = 256 * 1024,
        low_water: int = 64 * 1024,
    ) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple[Message | None, int]] = collections.deque()
        self._queued_bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._writable = threading.Event()
        self._writable.set()
        self.high_water = high_water
        self.low_water = low_water
        self.closed = False  # the client is gone (set on the loop thread)

    # -- worker thread ---------------------------------------------------------------------

    def put(self, message: Message | None, size: int = 0) -> None:
        """Queue a message (``None`` = the app is done); block while too much is in flight.

        Raises:
            ClientDisconnected: the client has gone away; stop producing.
        """
        self.put_all(((message, size),))

    def put_all(self, items: Iterable[tuple[Message | None, int]]) -> None:
        """Queue several ``(message, size)`` pairs with one hand-off (see :meth:`put`)."""
        if self.closed:
            raise ClientDisconnected("the client disconnected during the response")
        with self._lock:
            for message, size in items:
                self._queue.append((message, size))
                self._queued_bytes += size
            waiter, self._waiter = self._waiter, None
            if self._queued_bytes > self.high_water:
                self._writable.clear()
        if waiter is not None:
            self._loop.call_soon_threadsafe(resolve, waiter, None)
        if not self._writable.is_set():
            self._writable.wait()
            if self.closed:
                raise ClientDisconnected("the client disconnected during the response")

    # -- loop thread -------------------------------------------------------------------------

    async def get(self) -> list[tuple[Message | None, int]]:
        """Wait for and return every queued message (at least one), small bodies merged."""
        while True:
            with self._lock:
                items = list(self._queue)
                self._queue.clear()
                if not items:
                    if self.closed:
                        return [(None, 0)]  # the client is gone: nothing more will be sent
                    waiter = self._waiter = self._loop.create_future()
            if items:
                return _coalesce(items)
            await waiter

    def sent(self, size: int) -> None:
        """Record that ``size`` bytes reached the transport; release a blocked producer."""
        with self._lock:
            self._queued_bytes -= size
            if self._queued_bytes <= self.low_water:
                self._writable.set()

    def close(self) -> None:
        """The client is gone: make the producer's next ``put`` raise, and unblock both sides.

        Call on the loop's thread.
        """
        with self._lock:
            self.closed = True
            waiter, self._waiter = self._waiter, None
        self._writable.set()
        if waiter is not None:
            resolve(waiter, None)


# Body messages already queued together are sent as one while they stay this small: fewer
# send() calls for many small chunks, and no copying of large ones.
_COALESCE_LIMIT = 64 * 1024


def _coalesce(items: list[tuple[Message | None, int]]) -> list[tuple[Message | None, int]]:
    """Merge runs of small ``http.response.body`` messages queued in one burst."""
    merged: list[tuple[Message | None, int]] = []
    run: list[tuple[Message, int]] = []  # body messages waiting to be merged
    run_size = 0
    for message, size in items:
        is_body = message is not None and message["type"] == "http.response.body"
        if run and (not is_body or run_size + size > _COALESCE_LIMIT):
            merged.append(_merge(run))
            run, run_size = [], 0
        if message is not None and is_body:
            run.append((message, size))
            run_size += size
        else:
            merged.append((message, size))
    if run:
        merged.append(_merge(run))
    return merged


def _merge(run: list[tuple[Message, int]]) -> tuple[Message, int]:
    if len(run) == 1:
        return run[0]
    last, _ = run[-1]
    body = b"".join(message["body"] for message, _ in run)
    return {**last, "body": body}, len(body)
