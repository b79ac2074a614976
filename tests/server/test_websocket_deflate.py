"""WebSocket permessage-deflate (RFC 7692): negotiated by default, ``--no-ws-per-message-deflate``
turns it off; real clients (``websockets`` offers it by default)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.sync.client import connect

Serve = Callable[..., Any]


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text"), "bytes": None})


def test_permessage_deflate_is_negotiated_by_default(serve: Serve) -> None:
    running = serve(echo)
    text = "compress me " * 2000
    with connect(f"ws://127.0.0.1:{running.port}/", open_timeout=10) as ws:
        header = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert header.startswith("permessage-deflate")
        assert any(isinstance(e, PerMessageDeflate) for e in ws.protocol.extensions)
        for _ in range(3):  # the compression context carries across messages
            ws.send(text)
            assert ws.recv(timeout=10) == text


def test_permessage_deflate_can_be_turned_off(serve: Serve) -> None:
    running = serve(echo, ws_per_message_deflate=False)
    with connect(f"ws://127.0.0.1:{running.port}/", open_timeout=10) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert ws.protocol.extensions == []
        ws.send("plain")
        assert ws.recv(timeout=10) == "plain"


def test_a_client_that_offers_nothing_gets_nothing(serve: Serve) -> None:
    running = serve(echo)
    with connect(f"ws://127.0.0.1:{running.port}/", compression=None, open_timeout=10) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send("plain")
        assert ws.recv(timeout=10) == "plain"
