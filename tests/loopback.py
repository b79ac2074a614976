"""Helpers for tests that run real servers on loopback."""

from __future__ import annotations

import base64
import os
import socket
import struct


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (for a server started in a subprocess)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def websocket_frame(opcode: int, payload: bytes) -> bytes:
    """A final, masked client WebSocket frame; the zero mask leaves the payload as it is.

    Example: ``websocket_frame(0x9, b"ping")`` is a ping, ``websocket_frame(0x1, b"hi")`` text.
    """
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return head + b"\x00\x00\x00\x00" + payload


def websocket_upgrade(path: bytes = b"/echo") -> bytes:
    """A valid WebSocket opening handshake for ``path``, with a fresh key (RFC 6455 §4.1)."""
    key = base64.b64encode(os.urandom(16))
    return (
        b"GET %s HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, key)
    )
