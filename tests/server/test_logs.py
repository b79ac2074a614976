"""The server's logs: access lines for requests and WebSocket handshakes, gunicorn's atoms,
and the configuration the command line applies (#14.3)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.servers import Running
from wsgi2asgi.exceptions import ConfigError
from wsgi2asgi.server.config import Config
from wsgi2asgi.server.http11 import Request
from wsgi2asgi.server.logs import AccessFormatter, Atoms, configure_logging


class Lines(logging.Handler):
    """The access lines, as a handler on ``wsgi2asgi.access`` itself sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]


@pytest.fixture
def access() -> Iterator[Lines]:
    logger = logging.getLogger("wsgi2asgi.access")
    lines = Lines()
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)


async def websocket_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/ok`` is accepted (then echoes once), ``/no`` closed before the accept."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    if scope["path"] == "/no":
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "websocket.accept"})
    message = await receive()
    await send({"type": "websocket.send", "text": message.get("text", "")})
    await receive()


def test_websocket_handshakes_are_access_lines(
    serve: Callable[..., Running], access: Lines
) -> None:
    running = serve(websocket_app, lifespan="off", access_log=True)
    url = f"ws://127.0.0.1:{running.port}"
    with connect(f"{url}/ok?x=1") as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"
        port = ws.socket.getsockname()[1]
    with pytest.raises(InvalidStatus, match="403"):
        connect(f"{url}/no").close()
    assert running.stop() == 0
    accepted, refused = access.messages
    assert accepted == f'127.0.0.1:{port} - "WebSocket /ok?x=1" [accepted]'
    assert refused.endswith(' - "WebSocket /no" 403')


def test_no_access_log_means_no_websocket_lines(
    serve: Callable[..., Running], access: Lines
) -> None:
    running = serve(websocket_app, lifespan="off", access_log=False)
    with pytest.raises(InvalidStatus, match="403"):
        connect(f"ws://127.0.0.1:{running.port}/no").close()
    assert running.stop() == 0
    assert access.messages == []


async def plain_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"text/plain"), (b"x-served-by", b"plain")]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello", "more_body": True})
    await send({"type": "http.response.body", "body": b" world"})


def test_request_lines_carry_gunicorns_atoms(
    serve_one_loop: Callable[..., Running], access: Lines
) -> None:
    running = serve_one_loop(plain_app, lifespan="off", access_log=True)
    headers = {"User-Agent": "probe/1", "Referer": "http://r/", "Authorization": "Basic YWRhOnB3"}
    assert httpx.get(f"{running.url}/a/b?c=1", headers=headers).status_code == 201
    assert running.stop() == 0
    (record,) = access.records
    assert record.getMessage().endswith(' - "GET /a/b?c=1 HTTP/1.1" 201')
    formatter = AccessFormatter(
        "%(message)s",
        use_colors=False,
        access_format='%(h)s %(l)s %(u)s "%(r)s" %(m)s %(U)s %(q)s %(H)s %(s)s %(B)s %(b)s '
        '"%(f)s" "%(a)s" %({x-served-by}o)s %({user-agent}i)s %({missing}i)s',
    )
    assert formatter.format(record) == (
        '127.0.0.1 - ada "GET /a/b?c=1 HTTP/1.1" GET /a/b c=1 HTTP/1.1 201 11 11 '
        '"http://r/" "probe/1" plain probe/1 -'
    )


def request(target: bytes = b"/") -> Request:
    return Request(
        method="GET",
        target=target,
        path=target,
        query=b"",
        http_version="1.1",
        headers=[],
        keep_alive=True,
        upgrade=False,
        expect_continue=False,
        content_length=None,
        chunked=False,
    )


def test_timing_and_empty_atoms() -> None:
    atoms = Atoms({"type": "http"}, request(), 204, [], 0, began=0.0)
    assert (atoms["h"], atoms["b"], atoms["B"], atoms["u"], atoms["f"]) == ("-", "-", "0", "-", "-")
    assert int(atoms["D"]) >= int(atoms["M"]) * 1000 >= int(atoms["T"]) * 1_000_000
    assert atoms["p"].startswith("<") and atoms["t"].startswith("[")
    assert set(atoms) >= {"h", "r", "s", "T", "D"}
    assert atoms["nonsense"] == "-"


def configured(tmp_path: Path, **options: Any) -> None:
    configure_logging(Config(app="m:app", **options))


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes the process's wsgi2asgi loggers: put them back."""
    names = ("wsgi2asgi", "wsgi2asgi.error", "wsgi2asgi.access")
    saved = {
        name: (lg.handlers[:], lg.level, lg.propagate)
        for name in names
        for lg in [logging.getLogger(name)]
    }
    root = logging.getLogger().handlers[:]
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
    assert logging.getLogger().handlers == root, "the root logger was configured"


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_leaves_the_root_logger_alone(tmp_path: Path) -> None:
    configured(tmp_path, log_level="warning")
    assert logging.getLogger("wsgi2asgi.error").getEffectiveLevel() == logging.WARNING
    assert not logging.getLogger("wsgi2asgi.access").propagate


@pytest.mark.usefixtures("restore_logging")
def test_yaml_log_config_without_pyyaml_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "logging.yaml"
    path.write_text("version: 1\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml raises ImportError
    with pytest.raises(ConfigError, match=r"needs PyYAML \(pip install pyyaml\)$"):
        configured(tmp_path, log_config=str(path))


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("missing.json", None, "no such file"),
        ("bad.json", "{", "JSONDecodeError: Expecting property name"),
        ("bad.yaml", "version: 1\nhandlers: {h: {class: no.such.Handler}}\n", "ValueError"),
        ("bad.ini", "[loggers]\nkeys=root\n", "KeyError"),
    ],
)
def test_a_bad_log_config_is_one_line(
    tmp_path: Path, name: str, text: str | None, message: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=f"--log-config {path}: .*{message}") as caught:
        configured(tmp_path, log_config=str(path))
    assert "\n" not in str(caught.value)
