"""An httpx transport that calls an ASGI app in-process, as our server would call it.

Rules this module keeps (they are the server's, ``server/tcp.py``, so a test sees what
production sees):

* The scope is built like the server's: ``path`` includes ``root_path`` (ASGI ``www.rst``:
  "the root path this application is mounted at"), ``raw_path`` too, percent-encoded; header
  names lowercased; ``state`` a shallow copy of the lifespan state for every request (ASGI
  lifespan: "each request ... gets a shallow copy"); ``client`` and ``server`` filled in.
* The app runs as a task, so its response streams: ``httpx``'s ``Client.stream`` reads the
  body as the app sends it (endless responses, Server-Sent Events), at most ``WINDOW`` chunks
  ahead of the reader. The request body is sent in one ``http.request`` message; once the
  response is complete or the reader closes it, ``receive()`` returns ``http.disconnect``, and
  ``send()`` after a close raises :class:`~wsgi2asgi.exceptions.ClientDisconnected`.
* Closing the response waits for the app to return (its background tasks included), at most
  ``CLOSE_GRACE`` seconds, then cancels it, so nothing of one request runs into the next test.
* Every wait is bounded by the request's ``read`` timeout (httpx's default: 5 s): an app that
  never answers raises :class:`httpx.ReadTimeout` and is cancelled, instead of hanging the test.
* An exception from the app is raised in the test (``raise_app_exceptions``, the default), or
  answered as the server answers it: 500 before the response started, a cut connection
  (:class:`httpx.RemoteProtocolError`) after.

Example::

    transport = AppTransport(app, state={})
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.get("/")
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, unquote

import httpx

from wsgi2asgi.exceptions import ASGIContractError, ClientDisconnected
from wsgi2asgi.typing import ASGIApp, Message, Scope

__all__ = ["CLOSE_GRACE", "WINDOW", "AppTransport", "ResponseStream", "request_scope"]

#: Response chunks the app may send ahead of the reader before ``send`` waits (backpressure).
WINDOW = 16
#: Seconds a closed response's app gets to return before it is cancelled.
CLOSE_GRACE = 5.0

_END = b""  # the queue's end-of-body marker (empty chunks are never queued)


def request_scope(
    request: httpx.Request,
    *,
    kind: str,
    root_path: str,
    client: tuple[str, int],
    state: dict[str, Any],
) -> Scope:
    """The ASGI ``http`` or ``websocket`` scope of ``request``, as our server builds it.

    Example::

        request_scope(httpx.Request("GET", "http://testserver/a%20b?x=1"), kind="http",
                      root_path="/site", client=("127.0.0.1", 50000), state={})["path"]
        # "/site/a b"
    """
    url = request.url
    raw_path = url.raw_path.split(b"?", 1)[0]
    path = unquote(raw_path.decode("ascii"))
    secure = url.scheme in ("https", "wss")
    scope: dict[str, Any] = {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": (url.host, url.port or (443 if secure else 80)),
        "client": client,
        "scheme": ("wss" if secure else "ws") if kind == "websocket" else url.scheme,
        "root_path": root_path,
        # ASGI: path includes root_path; so does raw_path, percent-encoded (server/tcp.py).
        "path": root_path + path,
        "raw_path": quote(root_path).encode("ascii") + raw_path,
        "query_string": url.query,
        "headers": [(name.lower(), value) for name, value in request.headers.raw],
        "state": dict(state),
        "extensions": {},
    }
    if kind == "http":
        scope["method"] = request.method
    return scope


def _read_timeout(request: httpx.Request) -> float | None:
    """The ``read`` timeout httpx put on ``request`` (``None``: wait for ever)."""
    timeout = request.extensions.get("timeout", {})
    value = timeout.get("read") if isinstance(timeout, dict) else None
    return float(value) if value is not None else None


class AppTransport(httpx.AsyncBaseTransport):
    """Send httpx requests to an ASGI app in-process (see the module's rules).

    Args:
        app: the ASGI app (a whole composite).
        state: the lifespan state; each request gets a shallow copy.
        root_path: where a proxy mounted the app (our server's ``--root-path``).
        client: the ``(host, port)`` the app sees as the client's address.
        raise_app_exceptions: raise the app's exceptions in the test (else: 500, as served).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        state: dict[str, Any],
        root_path: str = "",
        client: tuple[str, int] = ("127.0.0.1", 50000),
        raise_app_exceptions: bool = True,
    ) -> None:
        self.app = app
        self.state = state
        self.root_path = root_path.rstrip("/")
        self.client = client
        self.raise_app_exceptions = raise_app_exceptions

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        status, headers, stream = await self.start(request, await request.aread())
        return httpx.Response(status, headers=headers, stream=stream, request=request)

    async def start(
        self, request: httpx.Request, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], ResponseStream]:
        """Start the app on ``request`` (its ``body`` read already); return once it answered.

        Returns:
            The status, the headers and the body stream, read as the app sends it.
        """
        scope = request_scope(
            request, kind="http", root_path=self.root_path, client=self.client, state=self.state
        )
        call = _AppCall(body, self.raise_app_exceptions)
        call.task = asyncio.create_task(self._run(scope, call))
        timeout = _read_timeout(request)
        status, headers = await call.started(request, timeout)
        return status, headers, ResponseStream(call, request, timeout)

    async def _run(self, scope: Scope, call: _AppCall) -> None:
        try:
            await self.app(scope, call.receive, call.send)
        finally:
            call.ended.set()


class _AppCall:
    """One call of the app for one request of the test: the body in, the response out."""

    def __init__(self, body: bytes, raise_app_exceptions: bool) -> None:
        self.body: bytes | None = body
        self.raise_app_exceptions = raise_app_exceptions
        self.task: asyncio.Task[None] | None = None
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.head = asyncio.Event()  # http.response.start sent
        self.ended = asyncio.Event()  # the app returned or raised
        self.done = asyncio.Event()  # the response is complete or the reader closed it
        self.closed = False
        self.chunks: asyncio.Queue[bytes] = asyncio.Queue(WINDOW)

    async def receive(self) -> Message:
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self.done.wait()  # ASGI: receive blocks until the client is gone
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.closed:
            raise ClientDisconnected("the test client closed the response")
        kind = message["type"]
        if kind == "http.response.start" and self.status is None:
            self.status = int(message["status"])
            self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
            self.head.set()
        elif kind == "http.response.body" and self.status is not None and not self.done.is_set():
            chunk = bytes(message.get("body", b""))
            if chunk:
                await self.chunks.put(chunk)
            if not message.get("more_body", False):
                self.done.set()
                await self.chunks.put(_END)
        else:
            raise ASGIContractError(f"the app sent {kind!r} out of order")

    async def started(
        self, request: httpx.Request, timeout: float | None
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        """Wait for ``http.response.start``; the app's error, a 500 or a timeout otherwise."""
        await self.wait(request, timeout, self.head)
        if self.status is not None:
            return self.status, self.headers
        failure = self.failure() or ASGIContractError("the app returned without a response")
        if self.raise_app_exceptions:
            raise failure
        return 500, [(b"content-type", b"text/plain; charset=utf-8")]

    async def next_chunk(self, request: httpx.Request, timeout: float | None) -> bytes:
        """The next body chunk, ``_END`` at the end; raises if the app stops short."""
        if self.chunks.empty() and not self.done.is_set():
            getter = asyncio.ensure_future(self.chunks.get())
            try:
                await self.wait(request, timeout, getter)
            finally:
                getter.cancel()
            if getter.done() and not getter.cancelled():
                return getter.result()
        if not self.chunks.empty():
            return self.chunks.get_nowait()
        if self.done.is_set():
            return _END
        failure = self.failure() or ASGIContractError("the app returned with the body unfinished")
        if self.raise_app_exceptions:
            raise failure
        raise httpx.RemoteProtocolError("the server cut the response short", request=request)

    async def wait(self, request: httpx.Request, timeout: float | None, what: Any) -> None:
        """Wait for ``what`` (an Event or a future) or the app's end, within ``timeout``."""
        waiter = asyncio.ensure_future(what.wait()) if isinstance(what, asyncio.Event) else what
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            done, _ = await asyncio.wait(
                {waiter, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ended.cancel()
            if waiter is not what:
                waiter.cancel()
        if not done:
            await self.aclose(grace=0)
            raise httpx.ReadTimeout(f"the app did not answer within {timeout} s", request=request)

    def failure(self) -> BaseException | None:
        task = self.task
        if task is None or not task.done() or task.cancelled():
            return None
        return task.exception()

    async def aclose(self, grace: float = CLOSE_GRACE) -> None:
        """The reader is done: tell the app, wait ``grace`` seconds for it, then cancel it.

        An app told that its client left (``http.disconnect``, or ``send`` raising) may raise
        its own way of saying so (Starlette's ``ClientDisconnect``): not a failure then.
        """
        early = not self.done.is_set()
        self.closed = True
        self.done.set()
        task = self.task
        if task is None:
            return
        while not self.chunks.empty():  # unblock a send() waiting for room
            self.chunks.get_nowait()
        _, pending = await asyncio.wait({task}, timeout=grace)
        if pending:
            task.cancel()
            await asyncio.wait({task})
        failure = self.failure()
        if failure is not None and self.raise_app_exceptions and not early:
            raise failure


class ResponseStream(httpx.AsyncByteStream):
    """The response body as the app sends it; closing it disconnects the app."""

    def __init__(self, call: _AppCall, request: httpx.Request, timeout: float | None) -> None:
        self._call = call
        self._request = request
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self.next_chunk()
            if chunk is None:
                return
            yield chunk

    async def next_chunk(self) -> bytes | None:
        """The next chunk of the body, ``None`` at its end."""
        chunk = await self._call.next_chunk(self._request, self._timeout)
        return chunk or None  # only the end is empty: empty chunks are never queued

    async def aclose(self) -> None:
        await self._call.aclose()
