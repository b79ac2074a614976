"""``wsgi2asgi.headers``: header field rules and reading the ``Host`` of a request."""

from __future__ import annotations

from typing import Any

import pytest

from wsgi2asgi.headers import DEFAULT_PORTS, content_length, request_host, split_host_port


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", ("example.com", "")),
        ("example.com:8080", ("example.com", "8080")),
        ("[::1]", ("[::1]", "")),
        ("[::1]:8000", ("[::1]", "8000")),
        ("", ("", "")),
    ],
)
def test_split_host_port(text: str, expected: tuple[str, str]) -> None:
    assert split_host_port(text) == expected


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"headers": [(b"Host", b"Example.COM.:8080")]}, ("example.com", "8080")),
        ({"headers": [(b"host", b"[::1]")], "server": ("x", 1)}, ("[::1]", "")),
        ({"headers": [], "server": ("Srv.example", 8000)}, ("srv.example", "8000")),
        ({"headers": [], "server": ("/tmp/sock", None)}, ("/tmp/sock", "")),
        ({"headers": []}, ("", "")),
    ],
)
def test_request_host_reads_host_then_server(scope: dict[str, Any], expected: Any) -> None:
    assert request_host(scope) == expected


def test_default_ports_of_http_and_websocket_schemes() -> None:
    assert DEFAULT_PORTS == {"http": 80, "https": 443, "ws": 80, "wss": 443}


def test_host_parsing_is_still_importable_from_routing() -> None:
    from wsgi2asgi import headers, routing

    assert routing.split_host_port is headers.split_host_port
    assert routing.request_host is headers.request_host


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"Content-Length", b"12")], 12),
        ([(b"content-length", b"0")], 0),
        ([(b"content-length", b" 7 ")], 7),
        ([(b"content-length", b"-1")], None),
        ([(b"content-length", b"1_0")], None),
        ([(b"content-length", b"x")], None),
        ([(b"host", b"a")], None),
        ([], None),
    ],
)
def test_content_length_is_a_number_or_none(
    headers: list[tuple[bytes, bytes]], expected: int | None
) -> None:
    assert content_length(headers) == expected
