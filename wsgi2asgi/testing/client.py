"""``TestClient`` and ``AsyncTestClient``: httpx clients wired to an ASGI app in-process.

Rules this module keeps:

* Entering the client (``with`` / ``async with``) runs the app's lifespan, as our server does:
  a composite (``Router``, ``Fallback``, ``Split``, ``Shadow``) starts every app of its tree,
  each with its own state; leaving it shuts them down. A failed startup raises
  :class:`~wsgi2asgi.exceptions.LifespanFailed`. ``lifespan="off"`` skips it; ``"on"`` makes an
  app that does not speak lifespan an error (``--lifespan on``).
* Requests go through :class:`~wsgi2asgi.testing.transport.AppTransport`; cookies live in the
  client's jar, sent by their domain and ``Path`` as a browser would (a cookie for ``/flask``
  is not sent to ``/api``), and to WebSocket handshakes too.
* ``TestClient`` is synchronous: the app runs on an event loop of its own, on a runner thread
  (:class:`wsgi2asgi.runners.Runner`), started on first use and closed with the client. Call it
  from any thread but that loop's (from inside the app it would deadlock: an error instead).

Example::

    with TestClient(app) as client:             # lifespan startup
        assert client.get("/api/health").status_code == 200
        with client.websocket_connect("/api/ws") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "HI"
                                                # lifespan shutdown
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Literal, TypeVar

import httpx

from wsgi2asgi.exceptions import LifespanFailed
from wsgi2asgi.lifespan import LifespanDriver
from wsgi2asgi.runners import Runner
from wsgi2asgi.testing.transport import CLOSE_GRACE, AppTransport, ResponseStream, request_scope
from wsgi2asgi.testing.websocket import AsyncWebSocketSession
from wsgi2asgi.typing import ASGIApp, Message, Scope

__all__ = ["AsyncTestClient", "TestClient", "WebSocketSession"]

T = TypeVar("T")
LifespanMode = Literal["auto", "on", "off"]


class AsyncTestClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that calls ``app`` in-process and runs its lifespan.

    Example::

        async with AsyncTestClient(app, root_path="/site") as client:
            response = await client.get("/api/items")

    Args:
        app: the ASGI app (a whole composite).
        base_url: the URL requests are relative to (its host is the ``Host`` header).
        root_path: where a proxy mounted the app (our server's ``--root-path``).
        lifespan: ``"auto"`` (run it if the app speaks it), ``"on"`` or ``"off"``.
        lifespan_timeout: seconds startup and shutdown may each take.
        state: the lifespan state dict (a new one by default); requests get copies of it.
        client: the ``(host, port)`` the app sees as the client's address.
        raise_app_exceptions: raise the app's exceptions in the test (else: 500, as served).
        **kwargs: anything else ``httpx.AsyncClient`` takes (``headers``, ``cookies``, ...).

    Raises:
        LifespanFailed: on entering, if the app's lifespan startup failed.
    """

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(
        self,
        app: ASGIApp,
        *,
        base_url: str = "http://testserver",
        root_path: str = "",
        lifespan: LifespanMode = "auto",
        lifespan_timeout: float = 30.0,
        state: dict[str, Any] | None = None,
        client: tuple[str, int] = ("127.0.0.1", 50000),
        raise_app_exceptions: bool = True,
        **kwargs: Any,
    ) -> None:
        self.app = app
        self.state, self.app_transport, self._lifespan = _wire(
            app, state, root_path, client, raise_app_exceptions, lifespan, lifespan_timeout
        )
        super().__init__(transport=self.app_transport, base_url=base_url, **kwargs)

    async def __aenter__(self) -> AsyncTestClient:
        await super().__aenter__()
        try:
            await self._lifespan.startup()
        except BaseException:
            await super().__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self._lifespan.shutdown()
        finally:
            await super().__aexit__(*exc_info)

    @asynccontextmanager
    async def websocket_connect(
        self, url: str, *, subprotocols: Sequence[str] = (), headers: dict[str, str] | None = None
    ) -> AsyncIterator[AsyncWebSocketSession]:
        """Open a WebSocket session with the app; it is closed (code 1000) when the block ends.

        Raises:
            WebSocketRejected: the app refused the handshake (status 403 or its denial's).
        """
        session = _websocket_session(self, self.app_transport, url, subprotocols, headers)
        await session.connect()
        try:
            yield session
        finally:
            await session.close()


class TestClient(httpx.Client):
    """An ``httpx.Client`` that calls ``app`` in-process, on a loop thread, with its lifespan.

    Example::

        with TestClient(app) as client:
            assert client.get("/").status_code == 200

    Takes the same arguments as :class:`AsyncTestClient`.

    Raises:
        LifespanFailed: on entering, if the app's lifespan startup failed.
    """

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(
        self,
        app: ASGIApp,
        *,
        base_url: str = "http://testserver",
        root_path: str = "",
        lifespan: LifespanMode = "auto",
        lifespan_timeout: float = 30.0,
        state: dict[str, Any] | None = None,
        client: tuple[str, int] = ("127.0.0.1", 50000),
        raise_app_exceptions: bool = True,
        **kwargs: Any,
    ) -> None:
        self.app = app
        self.state, self.app_transport, self._lifespan = _wire(
            app, state, root_path, client, raise_app_exceptions, lifespan, lifespan_timeout
        )
        self._portal = _Portal()
        transport = _SyncTransport(self.app_transport, self._portal)
        super().__init__(transport=transport, base_url=base_url, **kwargs)

    def __enter__(self) -> TestClient:
        super().__enter__()
        try:
            self._portal.call(self._lifespan.startup())
        except BaseException:
            super().__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self._portal.call(self._lifespan.shutdown())
        finally:
            super().__exit__(*exc_info)

    @contextmanager
    def websocket_connect(
        self, url: str, *, subprotocols: Sequence[str] = (), headers: dict[str, str] | None = None
    ) -> Iterator[WebSocketSession]:
        """Open a WebSocket session with the app; it is closed (code 1000) when the block ends.

        Raises:
            WebSocketRejected: the app refused the handshake (status 403 or its denial's).
        """
        session = _websocket_session(self, self.app_transport, url, subprotocols, headers)
        self._portal.call(session.connect())
        try:
            yield WebSocketSession(session, self._portal)
        finally:
            self._portal.call(session.close())


class WebSocketSession:
    """The synchronous face of :class:`AsyncWebSocketSession` (``TestClient.websocket_connect``).

    Example::

        with client.websocket_connect("/ws") as ws:
            ws.send_json({"n": 1})
            assert ws.receive_json() == {"n": 2}
    """

    def __init__(self, session: AsyncWebSocketSession, portal: _Portal) -> None:
        self._session = session
        self._portal = portal

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the app accepted, or ``None``."""
        return self._session.subprotocol

    def send_text(self, text: str) -> None:
        """Send a text message to the app."""
        self._portal.call(self._session.send_text(text))

    def send_bytes(self, data: bytes) -> None:
        """Send a binary message to the app."""
        self._portal.call(self._session.send_bytes(data))

    def send_json(self, value: Any) -> None:
        """Send ``value`` as JSON in a text message."""
        self._portal.call(self._session.send_json(value))

    def receive(self) -> Message:
        """The app's next ``websocket.send`` message (``WebSocketClosed`` once it closed)."""
        return self._portal.call(self._session.receive())

    def receive_text(self) -> str:
        """The app's next message, which must be text."""
        return self._portal.call(self._session.receive_text())

    def receive_bytes(self) -> bytes:
        """The app's next message, which must be binary."""
        return self._portal.call(self._session.receive_bytes())

    def receive_json(self) -> Any:
        """The app's next message, parsed as JSON."""
        return self._portal.call(self._session.receive_json())

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the session as the client; wait for the app to end."""
        self._portal.call(self._session.close(code, reason))


def _websocket_session(
    client: httpx.Client | httpx.AsyncClient,
    transport: AppTransport,
    url: str,
    subprotocols: Sequence[str],
    headers: dict[str, str] | None,
) -> AsyncWebSocketSession:
    """A session for ``url``: the handshake a browser sends, with the client's cookies."""
    request = client.build_request("GET", url, headers=headers)  # merges base_url, cookies
    handshake = {
        "connection": "upgrade",
        "upgrade": "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": base64.b64encode(os.urandom(16)).decode(),
    }
    if subprotocols:
        handshake["sec-websocket-protocol"] = ", ".join(subprotocols)
    for name, value in handshake.items():
        request.headers.setdefault(name, value)
    scope: Scope = request_scope(
        request,
        kind="websocket",
        root_path=transport.root_path,
        client=transport.client,
        state=transport.state,
    )
    scope["subprotocols"] = list(subprotocols)
    scope["extensions"] = {"websocket.http.response": {}}
    return AsyncWebSocketSession(
        transport.app,
        scope,
        timeout=client.timeout.read,
        raise_app_exceptions=transport.raise_app_exceptions,
    )


def _wire(
    app: ASGIApp,
    state: dict[str, Any] | None,
    root_path: str,
    client: tuple[str, int],
    raise_app_exceptions: bool,
    lifespan: LifespanMode,
    lifespan_timeout: float,
) -> tuple[dict[str, Any], AppTransport, _Lifespan]:
    """What both clients hold: the lifespan state, the app's transport and its lifespan."""
    state = {} if state is None else state
    transport = AppTransport(
        app,
        state=state,
        root_path=root_path,
        client=client,
        raise_app_exceptions=raise_app_exceptions,
    )
    return state, transport, _Lifespan(app, state, lifespan, lifespan_timeout)


class _Lifespan:
    """The app's lifespan around a client's ``with`` block."""

    def __init__(self, app: ASGIApp, state: dict[str, Any], mode: str, timeout: float) -> None:
        self.app, self.state, self.mode, self.timeout = app, state, mode, timeout
        self.driver: LifespanDriver | None = None

    async def startup(self) -> None:
        if self.mode == "off":
            return
        driver = LifespanDriver(self.app, state=self.state, required=self.mode == "on")
        try:
            await asyncio.wait_for(driver.startup(), self.timeout)
        except TimeoutError:
            await driver.aclose()
            raise LifespanFailed("app", f"startup took more than {self.timeout} s") from None
        except BaseException:
            await driver.aclose()
            raise
        self.driver = driver

    async def shutdown(self) -> None:
        driver, self.driver = self.driver, None
        if driver is None:
            return
        try:
            await asyncio.wait_for(driver.shutdown(), self.timeout)
        except TimeoutError:
            await driver.aclose()
            raise LifespanFailed("app", f"shutdown took more than {self.timeout} s") from None


class _Portal:
    """Run coroutines on a runner thread's loop from the calling thread, and wait for them."""

    def __init__(self) -> None:
        self._runner: Runner | None = None
        self._closed = False
        self._lock = threading.Lock()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        runner = self._start()
        if runner is None or runner.is_current():
            coroutine.close()  # never run: no "coroutine was never awaited" warning
            if runner is None:
                raise RuntimeError("the TestClient is closed")
            raise RuntimeError("a TestClient cannot be called from the app it is testing")
        # No timeout here: every wait for the app inside the coroutine is bounded already.
        return asyncio.run_coroutine_threadsafe(coroutine, runner.loop).result()

    def _start(self) -> Runner | None:
        with self._lock:
            if self._runner is None and not self._closed:
                self._runner = Runner("wsgi2asgi-testclient", stop_timeout=CLOSE_GRACE)
            return self._runner

    def close(self) -> None:
        with self._lock:
            runner, self._runner, self._closed = self._runner, None, True
        if runner is not None:
            runner.close()


class _SyncTransport(httpx.BaseTransport):
    """The synchronous face of :class:`AppTransport`: each step runs on the portal's loop."""

    def __init__(self, transport: AppTransport, portal: _Portal) -> None:
        self._transport = transport
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        status, headers, stream = self._portal.call(self._transport.start(request, body))
        return httpx.Response(
            status, headers=headers, stream=_SyncStream(stream, self._portal), request=request
        )

    def close(self) -> None:
        self._portal.close()


class _SyncStream(httpx.SyncByteStream):
    def __init__(self, stream: ResponseStream, portal: _Portal) -> None:
        self._stream = stream
        self._portal = portal

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := self._portal.call(self._stream.next_chunk())) is not None:
            yield chunk

    def close(self) -> None:
        self._portal.call(self._stream.aclose())
