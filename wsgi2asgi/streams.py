"""Byte streams between a WSGI worker thread and the event loop, both with backpressure.

Rules this module keeps:

* ``RequestBody`` is ``wsgi.input``. One task on the loop, :meth:`RequestBody.feed`, is the
  only caller of the ASGI ``receive``: it receives ahead of the app, at most ``READ_AHEAD``
  bytes beyond what the app has taken, then pauses until the app takes them. At most about
  twice that is held (what the app took but has not read yet, and what the feeder holds), so
  the client is read no faster than the app consumes (the server's flow control then pauses
  the socket) and a 512 MiB upload never sits in memory, while most reads find their bytes
  already here. A read returns as soon as it has what it asked for, never waiting for more.
  Reads never go past ``Content-Length`` (PEP 3333: "the application should not attempt to
  read more data than is specified by the CONTENT_LENGTH variable"; we enforce it).
* Hand-offs are few and cheap. The server's bytes reach the app as they are: a read of one
  whole message returns that very ``bytes`` object; a shorter read copies what it returns,
  once. A worker that needs bytes not yet received waits on a lock the feeder releases when
  they (or the end) arrive: no task, future or loop turn per read. The worker calls into the
  loop only to un-pause the feeder, once per ``READ_AHEAD`` bytes at most.
* ``feed()`` is also how a disconnect is noticed: ``receive()`` is the only place the ASGI
  spec reports it, and servers (uvicorn) silently drop what is sent after it. Once the
  client is gone, reads that need more bytes raise
  :class:`~wsgi2asgi.exceptions.ClientDisconnected` and the ``on_disconnect`` callback closes
  the response channel. An app that never reads a body of more than ``READ_AHEAD`` bytes
  while it streams forever is the one case a disconnect goes unnoticed until a send fails
  (the feeder must not buffer without bound).
* ``ResponseChannel`` carries ASGI messages from the worker thread to the loop. The thread
  appends under a lock and wakes the loop only when the loop is waiting (one
  ``call_soon_threadsafe`` per burst, not per chunk, and none for a message whose end follows
  at once: :meth:`ResponseChannel.finish` wakes for both); it blocks once more than
  ``high_water`` bytes are queued and resumes when the loop has sent them below
  ``low_water``. When the client is gone, ``put`` raises ``ClientDisconnected`` so the app
  stops being iterated.

Example (inside the adapter)::

    body = RequestBody(loop, receive, content_length=1024)
    loop.create_task(body.feed())
    data = body.read(100)             # in the worker thread
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable, Iterable, Iterator

from wsgi2asgi.exceptions import ClientDisconnected
from wsgi2asgi.futures import resolve
from wsgi2asgi.typing import Message, Receive

__all__ = ["READ_AHEAD", "RequestBody", "ResponseChannel"]

#: Request body bytes the loop receives ahead of the app's reads, so most reads find their
#: bytes already there and the worker calls into the loop once per ``READ_AHEAD`` bytes at
#: most. What the app took from there may wait in its buffer meanwhile: at most about twice
#: this (plus one server message) is ever held for a request.
READ_AHEAD = 256 * 1024


def _call_soon_threadsafe(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
    try:
        loop.call_soon_threadsafe(resolve, future, None)
    except RuntimeError:
        pass  # the loop is closed: nobody waits any more


class RequestBody:
    """``wsgi.input``: the request body, received ahead by the loop, read by the worker thread.

    Args:
        loop: the event loop that owns ``receive``.
        receive: the ASGI receive callable.
        content_length: the declared length, or ``None`` (chunked / unknown).
        complete: there is no body (by HTTP framing): reads return ``b""`` at once.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        receive: Receive,
        content_length: int | None,
        complete: bool = False,
    ) -> None:
        self._loop = loop
        self._receive = receive
        self._remaining = content_length  # bytes the app may still read, when declared
        self.complete = complete  # the app has all of the body it will get
        self.disconnected = False
        #: Called (on the loop) when the client is gone.
        self.on_disconnect: Callable[[], None] | None = None
        #: The most bytes ever held for the app: what "bounded" means, measurable.
        self.peak_buffered = 0
        # Between the feeder (loop) and the worker, under _lock.
        self._lock = threading.Lock()
        self._incoming: list[bytes] = []  # received, not taken by the worker yet
        self._incoming_size = 0
        self._ended = False  # the last http.request message was received
        self._gate: threading.Lock | None = None  # held while the worker waits for bytes
        self._wanted = 0  # the bytes that waiting worker needs
        self._room: asyncio.Future[None] | None = None  # the paused feeder waits on it
        # The worker's side: what it took and has not read yet, from _offset in _chunks[0].
        self._chunks: collections.deque[bytes] = collections.deque()
        self._offset = 0
        self._size = 0

    # -- the loop's side -------------------------------------------------------------------

    async def feed(self) -> None:
        """Receive ahead of the app (see the module's rules) until the client disconnects.

        After the last body message only ``http.disconnect`` can come: it is still waited
        for, as the one sign that the client left. Anything else then is off-spec: stop.
        """
        receive = self._receive
        while not self.disconnected:
            if not self._ended:
                room = self._pause()
                if room is not None:
                    await room
                    continue
            message = await receive()
            if message["type"] == "http.disconnect":
                self._disconnect()
                return
            if self._ended:
                return
            self._deliver(message.get("body", b""), not message.get("more_body", False))

    def _pause(self) -> asyncio.Future[None] | None:
        """A future to wait on when ``READ_AHEAD`` bytes wait for the app (None: go on)."""
        with self._lock:
            if self._incoming_size < READ_AHEAD:
                return None
            room = self._room = self._loop.create_future()
            return room

    def _deliver(self, body: bytes, last: bool) -> None:
        with self._lock:
            if last:
                self._ended = True
            if body and not self.complete:  # past Content-Length: not the app's business
                self._incoming.append(body)
                self._incoming_size += len(body)
            gate = self._gate
            if gate is not None and (self._ended or self._incoming_size >= self._wanted):
                self._gate = None
                gate.release()

    def _disconnect(self) -> None:
        self._stop()
        if self.on_disconnect is not None:
            self.on_disconnect()

    def _stop(self) -> None:
        """No more bytes will come: a worker waiting for some raises ClientDisconnected."""
        with self._lock:
            self.disconnected = True
            gate, self._gate = self._gate, None
            if gate is not None:
                gate.release()

    def abandon(self) -> None:
        """The ASGI call is over: a read still waiting for bytes raises ClientDisconnected.

        Without this, a worker reading after the server gave up on the request could wait
        forever for bytes nobody receives.
        """
        self._stop()

    # -- the worker's side -----------------------------------------------------------------

    def _fill(self, want: int) -> None:
        """Hold ``want`` bytes (or what is left of the body): take what the feeder received,
        waiting for it when there is not enough.

        Raises:
            ClientDisconnected: the client left (or the request ended) before they came.
        """
        while self._size < want and not self.complete:
            with self._lock:
                incoming = self._incoming
                if incoming:
                    self._incoming, self._incoming_size = [], 0
                    room, self._room = self._room, None
                    gate = None
                elif self._ended:
                    self.complete = True
                    return
                elif self.disconnected:
                    raise ClientDisconnected("the client disconnected while the body was read")
                else:
                    gate = self._gate = threading.Lock()
                    gate.acquire()
                    self._wanted = want - self._size
            if gate is not None:
                gate.acquire()  # released by the feeder: bytes, the end, or a disconnect
                continue
            self._chunks.extend(incoming)
            self._size += sum(map(len, incoming))
            self.peak_buffered = max(self.peak_buffered, self._size)
            if room is not None:
                _call_soon_threadsafe(self._loop, room)

    def _limit(self, size: int) -> int:
        """Clip a read size to what Content-Length still allows (``-1`` = all)."""
        if self._remaining is None:
            return size
        return self._remaining if size < 0 else min(size, self._remaining)

    def _take(self, size: int) -> bytes:
        """The next ``size`` bytes held (``size`` at most ``self._size``)."""
        if size <= 0:
            return b""
        chunks, offset = self._chunks, self._offset
        first = chunks[0]
        if offset == 0 and len(first) == size:
            data = chunks.popleft()  # a whole message: no copy
        elif len(first) - offset > size:
            data = first[offset : offset + size]
            self._offset = offset + size
        else:
            data = self._join(size)
        self._size -= size
        if self._remaining is not None:
            self._remaining -= size
            if self._remaining == 0:
                # The declared body is all read; anything more is not the app's business.
                self.complete = True
        return data

    def _join(self, size: int) -> bytes:
        """``_take`` across chunks: one copy into the result."""
        chunks = self._chunks
        parts: list[bytes | memoryview] = []
        need, offset = size, self._offset
        while need:
            chunk = chunks[0]
            available = len(chunk) - offset
            if available <= need:
                parts.append(memoryview(chunk)[offset:] if offset else chunk)
                chunks.popleft()
                need -= available
                offset = 0
            else:
                parts.append(memoryview(chunk)[offset : offset + need])
                offset += need
                need = 0
        self._offset = offset
        return b"".join(parts)

    def _find_newline(self, start: int) -> int:
        """Where the first ``\\n`` at or after ``start`` is in the held bytes, or -1."""
        position = 0  # of the current chunk's first held byte
        for index, chunk in enumerate(self._chunks):
            begin = self._offset if index == 0 else 0
            length = len(chunk) - begin
            if position + length > start:
                found = chunk.find(b"\n", begin + max(start - position, 0))
                if found >= 0:
                    return position + found - begin
            position += length
        return -1

    # -- the file-like API PEP 3333 asks for -------------------------------------------------

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all that is left when ``size`` is ``-1`` or ``None``)."""
        size = self._limit(-1 if size is None else size)
        if size < 0:
            self._fill(1 << 62)
            return self._take(self._size)
        if self._size < size:
            self._fill(size)
        return self._take(min(size, self._size))

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line, up to ``size`` bytes."""
        size = self._limit(-1 if size is None else size)
        scanned = 0
        while True:
            end = self._find_newline(scanned)
            if end >= 0:
                length = end + 1
                break
            if 0 <= size <= self._size:
                length = size
                break
            scanned = held = self._size
            self._fill(held + 1)
            if self._size == held:  # the end of the body
                length = held
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
        self._queue: list[tuple[Message, int]] = []
        self._queued_bytes = 0
        self._waiter: asyncio.Future[None] | None = None  # the loop waits on it
        self._gate: threading.Lock | None = None  # held while the producer waits for room
        self.high_water = high_water
        self.low_water = low_water
        self.closed = False  # the client is gone (set on the loop thread)
        self.done = False  # the producer is done: the response's close() has returned

    # -- worker thread ---------------------------------------------------------------------

    def put(self, message: Message, size: int = 0, wake: bool = True) -> None:
        """Queue a message; block while too much is in flight.

        ``wake=False``: the caller calls :meth:`finish` right after, which wakes the loop for
        both (a blocked ``put`` still wakes it).

        Raises:
            ClientDisconnected: the client has gone away; stop producing.
        """
        self.put_all(((message, size),), wake)

    def put_all(self, items: Iterable[tuple[Message, int]], wake: bool = True) -> None:
        """Queue several ``(message, size)`` pairs with one hand-off (see :meth:`put`)."""
        if self.closed:
            raise ClientDisconnected("the client disconnected during the response")
        with self._lock:
            for message, size in items:
                self._queue.append((message, size))
                self._queued_bytes += size
            gate = None
            if self._queued_bytes > self.high_water:
                gate = self._gate = threading.Lock()
                gate.acquire()
            waiter = None
            if wake or gate is not None:
                waiter, self._waiter = self._waiter, None
        if waiter is not None:
            _call_soon_threadsafe(self._loop, waiter)
        if gate is not None:
            gate.acquire()  # released by sent() below low_water, or by close()
            if self.closed:
                raise ClientDisconnected("the client disconnected during the response")

    def finish(self) -> None:
        """Nothing more comes: the response's ``close()`` has returned. Never raises."""
        with self._lock:
            self.done = True
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            _call_soon_threadsafe(self._loop, waiter)

    # -- loop thread -------------------------------------------------------------------------

    async def get(self) -> list[tuple[Message, int]]:
        """Wait for and return every queued message, small bodies merged; ``[]`` once the
        producer is done and all was taken, or the channel is closed."""
        while True:
            with self._lock:
                items = self._queue
                if items:
                    self._queue = []
                    break
                if self.done or self.closed:
                    return []
                waiter = self._waiter = self._loop.create_future()
            await waiter
        if len(items) == 1 or (len(items) == 2 and items[0][0]["type"] == _START):
            return items  # nothing to merge: the common cases, without the loop
        return _coalesce(items)

    async def wait_done(self) -> None:
        """Wait until the producer called :meth:`finish`."""
        while True:
            with self._lock:
                if self.done:
                    return
                waiter = self._waiter = self._loop.create_future()
            await waiter

    def sent(self, size: int) -> None:
        """Record that ``size`` bytes reached the transport; release a blocked producer."""
        if not size:
            return
        with self._lock:
            self._queued_bytes -= size
            gate = self._gate
            if gate is not None and self._queued_bytes <= self.low_water:
                self._gate = None
                gate.release()

    def close(self) -> None:
        """The client is gone: make the producer's next ``put`` raise, and unblock both sides.

        Call on the loop's thread.
        """
        with self._lock:
            self.closed = True
            waiter, self._waiter = self._waiter, None
            gate, self._gate = self._gate, None
        if gate is not None:
            gate.release()
        if waiter is not None:
            resolve(waiter, None)


_START = "http.response.start"
# Body messages already queued together are sent as one while they stay this small: fewer
# send() calls for many small chunks, and no copying of large ones.
_COALESCE_LIMIT = 64 * 1024


def _coalesce(items: list[tuple[Message, int]]) -> list[tuple[Message, int]]:
    """Merge runs of small ``http.response.body`` messages queued in one burst."""
    merged: list[tuple[Message, int]] = []
    run: list[tuple[Message, int]] = []  # body messages waiting to be merged
    run_size = 0
    for message, size in items:
        is_body = message["type"] == "http.response.body"
        if run and (not is_body or run_size + size > _COALESCE_LIMIT):
            merged.append(_merge(run))
            run, run_size = [], 0
        if is_body:
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
