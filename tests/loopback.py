"""Helpers for tests that run real servers on loopback."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds pass; return the last answer.

    For state that signals nothing when it changes (a server flag, a listener closing); where
    the code under test can set a ``threading.Event``, wait on that instead.

    Example: ``assert wait_until(lambda: running.server.state.active == 0)``.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(0.01)  # the poll interval: nothing to wait on but the condition itself
    return True


async def await_until(condition: Callable[[], object], timeout: float = 5.0) -> bool:
    """:func:`wait_until` for a coroutine: poll without blocking the event loop.

    Example: ``assert await await_until(lambda: "close failed" in caplog.text)``.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            return bool(condition())
        await asyncio.sleep(0.01)  # the poll interval: nothing to wait on but the condition
    return True


class ServerProcess:
    """A server run as a subprocess, its output (stdout and stderr) read line by line on a thread.

    Start it on ``--port 0`` (or ``-b fd://N`` with a socket it inherits): :meth:`port` reads
    back the port from its ``serving on`` line, so no port is ever guessed free and reused.

    Example::

        server = ServerProcess([sys.executable, "-m", "wsgi2asgi", "serve", "app:app",
                                "--port", "0"], cwd=ROOT)
        port = server.port()
        ...
        server.process.terminate()
        status, output = server.finish()
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
        )
        self.lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stdout = self.process.stdout
        if stdout is None:  # pragma: no cover - always a pipe
            return
        with stdout:
            for line in stdout:
                with self._changed:
                    self.lines.append(line.decode(errors="replace").rstrip("\r\n"))
                    self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        """Everything printed so far."""
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, *, after: int = 0, timeout: float = 30.0) -> tuple[int, str]:
        """Wait for the first line from index ``after`` on that matches ``pattern``.

        Returns its index and the match's first group (or the whole match). Fails, with the
        output so far, when the output ends or ``timeout`` passes first.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = after
        with self._changed:
            while True:
                for index in range(seen, len(self.lines)):
                    match = regex.search(self.lines[index])
                    if match is not None:
                        return index, match[1] if regex.groups else match[0]
                seen = max(seen, len(self.lines))
                left = deadline - time.monotonic()
                if self._ended or left <= 0:
                    why = "the output ended" if self._ended else f"not within {timeout} s"
                    output = "\n".join(self.lines)
                    raise AssertionError(f"no line matching {pattern!r} ({why}):\n{output}")
                self._changed.wait(left)

    def port(self, *, after: int = 0, timeout: float = 30.0) -> int:
        """The port of the next ``serving on http://HOST:PORT`` line from index ``after`` on."""
        return int(self.wait_for(r"serving on https?://\S*:(\d+)", after=after, timeout=timeout)[1])

    def finish(self, timeout: float = 30.0) -> tuple[int, str]:
        """Wait for the process to exit (killed after ``timeout``); its status and output."""
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        self._reader.join(10)
        return status, self.output


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
