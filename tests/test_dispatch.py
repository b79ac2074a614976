"""``wsgi2asgi.dispatch``: which of two apps serves each request, and how a wrong guess is learnt.

The sync app is a real WSGI app (checked by ``wsgiref.validate``) behind ``wsgi_to_asgi``, the
async app a plain ASGI app; handlers are plain functions, ``find`` reads them from a table.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.validate import validator

import httpx
import pytest

from wsgi2asgi import dispatch
from wsgi2asgi.dispatch import NO_MATCH, Dispatcher, Mode, confirm
from wsgi2asgi.typing import Receive, Scope, Send
from wsgi2asgi.wsgi import wsgi_to_asgi


def sync_handler() -> None: ...


async def async_handler() -> None: ...


def other_sync_handler() -> None: ...


TABLE: dict[str, object] = {
    "/sync": sync_handler,
    "/async": async_handler,
    "/other": other_sync_handler,
}


def find(scope: Scope) -> object:
    if scope["path"] == "/broken":
        raise LookupError("no table for that")
    return TABLE.get(scope["path"], NO_MATCH)


class Apps:
    """Both apps, recording which served each request; the sync one may report a handler."""

    def __init__(self, reached: object | None = None) -> None:
        self.served: list[str] = []
        self.reached = reached

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.served.append("sync")
        if self.reached is not None:
            confirm(self.reached)  # on the worker thread, as the framework's resolver does
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"sync"]

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.served.append("async")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"async"})

    def dispatcher(
        self, is_async: Callable[[object], bool] = inspect.iscoroutinefunction
    ) -> Dispatcher:
        return Dispatcher(
            wsgi_to_asgi(validator(self.wsgi)), self.asgi, find=find, is_async=is_async
        )


async def get(app: Any, url: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(kwargs.pop("method", "GET"), url, **kwargs)


@pytest.mark.parametrize(
    ("url", "served"),
    [("/sync", "sync"), ("/async", "async"), ("/nowhere", "sync"), ("/broken", "async")],
)
async def test_dispatcher_serves_each_request_from_the_app_its_handler_needs(
    url: str, served: str
) -> None:
    apps = Apps()
    response = await get(apps.dispatcher(), url)
    assert response.text == served
    assert apps.served == [served]


async def test_dispatcher_sends_a_body_of_unknown_length_to_the_async_app() -> None:
    apps = Apps()

    async def chunks() -> Any:
        yield b"a"

    await get(apps.dispatcher(), "/sync", method="POST", content=chunks())  # chunked
    await get(apps.dispatcher(), "/sync", method="POST", content=b"a")  # Content-Length
    assert apps.served == ["async", "sync"]


@pytest.mark.parametrize(("method", "served"), [("POST", "async"), ("GET", "sync")])
def test_dispatcher_on_http2_without_content_length(method: str, served: str) -> None:
    # HTTP/2 has no chunked framing: a POST without Content-Length has a body of unknown length.
    scope = {"type": "http", "http_version": "2", "method": method, "path": "/sync"}
    assert dispatch._body_length_unknown(scope) is (served == "async")


async def test_dispatcher_sends_other_scope_types_to_the_async_app() -> None:
    seen: list[str] = []

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None: ...

    app = Dispatcher(Apps().asgi, asgi, find=find, is_async=inspect.iscoroutinefunction)
    await app({"type": "websocket", "path": "/sync"}, receive, send)
    assert seen == ["websocket"]


async def test_a_handler_that_is_async_after_all_is_demoted_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # find names sync_handler, but the sync app reaches async_handler (a middleware chose it).
    apps = Apps(reached=async_handler)
    app = apps.dispatcher()
    with caplog.at_level(logging.INFO, logger="wsgi2asgi.dispatch"):
        for _ in range(3):
            await get(app, "/sync")
    assert apps.served == ["sync", "async", "async"]
    assert app.choose({"path": "/sync"}) == (sync_handler, Mode.ASYNC)
    assert app.choose({"path": "/other"}) == (other_sync_handler, Mode.SYNC)
    assert len(caplog.records) == 1
    assert "async path" in caplog.records[0].getMessage()


async def test_reaching_another_sync_handler_changes_nothing() -> None:
    apps = Apps(reached=other_sync_handler)
    app = apps.dispatcher()
    await get(app, "/sync")
    await get(app, "/sync")
    assert apps.served == ["sync", "sync"]


def test_confirm_outside_a_dispatcher_does_nothing() -> None:
    confirm(async_handler)


def test_an_is_async_that_fails_means_the_async_app() -> None:
    def is_async(handler: object) -> bool:
        raise TypeError("cannot tell")

    app = Apps().dispatcher(is_async)
    assert app.choose({"path": "/sync"})[1] is Mode.ASYNC
    assert app.choose({"path": "/nowhere"})[1] is Mode.SYNC


def test_unhashable_handlers_are_decided_each_time() -> None:
    class Handler:
        __hash__ = None  # type: ignore[assignment]

        async def __call__(self) -> None: ...

    handler = Handler()
    app = Dispatcher(
        Apps().asgi, Apps().asgi, find=lambda scope: handler, is_async=inspect.iscoroutinefunction
    )
    assert app.choose({"path": "/"}) == (handler, Mode.SYNC)  # inspect looks at the function
    app.is_async = lambda handler: True
    assert app.choose({"path": "/"}) == (handler, Mode.ASYNC)


def test_decisions_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "MAX_DECISIONS", 2)
    app = Apps().dispatcher()
    for path in TABLE:
        app.choose({"path": path})
    assert len(app._decisions) == 2
