"""WebSocket sessions of the in-process clients (``wsgi2asgi.testing.websocket`` and the
sync session of ``wsgi2asgi.testing.client``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.apps.testing_site import site
from wsgi2asgi.exceptions import ClientDisconnected, WebSocketClosed, WebSocketRejected
from wsgi2asgi.testing import AsyncTestClient, TestClient
from wsgi2asgi.typing import Receive, Scope, Send

ROOT = Path(__file__).resolve().parents[2]


def test_client_websocket_session_with_cookies_and_subprotocol() -> None:
    log: list[str] = []
    with TestClient(site(log)) as client:
        client.get("/api/login")  # sets user=ada for /api
        with client.websocket_connect("/api/ws", subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            ws.send_text("hello")
            assert ws.receive_text() == "API ADA HELLO"
        with client.websocket_connect("/ws") as ws:  # the root app: no cookie for it
            ws.send_text("hi")
            assert ws.receive_text() == "ROOT ANONYMOUS HI"
    # Leaving the block disconnected each session: the app saw websocket.disconnect.
    assert log.count("ws disconnected") == 2


def test_client_websocket_closed_by_the_app_or_refused() -> None:
    log: list[str] = []
    with TestClient(site(log)) as client:
        with client.websocket_connect("/api/ws") as ws:
            ws.send_text("bye")
            with pytest.raises(WebSocketClosed) as closed:
                ws.receive_text()
        assert (closed.value.code, closed.value.reason) == (4001, "bye to you")
        with pytest.raises(WebSocketRejected) as refused:
            with client.websocket_connect("/api/refuse"):
                pass
        assert refused.value.status == 403


async def test_async_client_websocket_session() -> None:
    log: list[str] = []
    async with AsyncTestClient(site(log)) as client:
        async with client.websocket_connect("/api/ws") as ws:
            await ws.send_text("one")
            assert await ws.receive_text() == "API ANONYMOUS ONE"
            await ws.send_json({"n": 2})
            assert await ws.receive_text() == 'API ANONYMOUS {"N": 2}'
            await ws.close(1001)
    assert log.count("ws disconnected") == 1


async def test_websocket_send_after_the_app_closed_raises_client_disconnected() -> None:
    errors: list[BaseException] = []

    async def closes_then_sends(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4000})
        try:  # as on our server: nothing can be sent after a close
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:
            errors.append(exc)

    async with AsyncTestClient(closes_then_sends, lifespan="off") as client:
        async with client.websocket_connect("/ws") as ws:
            with pytest.raises(WebSocketClosed):
                await ws.receive_text()
    assert [type(e) for e in errors] == [ClientDisconnected]


async def test_websocket_denial_response_is_a_rejection_with_status_and_body() -> None:
    async def deny(scope: Scope, receive: Receive, send: Send) -> None:
        assert "websocket.http.response" in scope["extensions"]
        await receive()
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": b"log in first"})

    async with AsyncTestClient(deny, lifespan="off") as client:
        with pytest.raises(WebSocketRejected) as refused:
            async with client.websocket_connect("/ws"):
                pass
    assert (refused.value.status, refused.value.body) == (401, b"log in first")
