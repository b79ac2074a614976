"""Fuzz target: the sans-I/O HTTP/1.1 core fed arbitrary bytes, split arbitrarily.

Invariants: only :class:`ProtocolError` (a 4xx, or 505 for an HTTP version other than 1.x)
escapes the parser; a parsed request has a token method, an origin-form path (or ``*`` for
OPTIONS), and header names and values that ``wsgi2asgi.headers`` accepts (tokens; no control
character but tab: llhttp's strict mode enforces it, the parser relies on that); body bytes
never exceed a declared Content-Length; the same bytes fed in one piece or in several, with or
without a ``max_requests`` budget (held bytes fed on), give the same events. Response framing
either refuses a head (``ASGIContractError``: the app's mistake) or writes one whose every
line is free of bare CR and LF.
"""

from __future__ import annotations

import atheris

from wsgi2asgi.exceptions import ASGIContractError, ProtocolError
from wsgi2asgi.headers import valid_name, valid_value
from wsgi2asgi.server.framing import ResponseFraming
from wsgi2asgi.server.http11 import Body, EndOfMessage, Limits, Request, RequestParser

LIMITS = Limits(max_target=512, max_header_bytes=2048, max_headers=20, max_body=4096)


def parse(pieces: list[bytes], budget: int | None = None) -> tuple[list[object], int | None]:
    parser = RequestParser(LIMITS)
    events: list[object] = []
    try:
        for piece in pieces:
            events.extend(parser.feed(piece, budget))
        while parser.held:
            events.extend(parser.feed(b"", budget))
        if parser.failed is not None:
            raise parser.failed
    except ProtocolError as error:
        assert 400 <= error.status < 500 or error.status == 505, error.status
        return events, error.status
    return events, None


def check_request(events: list[object]) -> None:
    declared: int | None = None
    received = 0
    for event in events:
        if isinstance(event, Request):
            assert valid_name(event.method.encode()), event.method
            assert event.path.startswith(b"/") or (event.path == b"*" and event.method == "OPTIONS")
            for name, value in event.headers:
                assert valid_name(name), name
                assert valid_value(value), value  # no control character but tab
                if name == b"content-length":
                    declared = int(value)
            received = 0
        elif isinstance(event, Body):
            received += len(event.data)
            assert declared is None or received <= declared
        elif isinstance(event, EndOfMessage):
            assert declared is None or received == declared
            declared = None


def one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    cuts = sorted(provider.ConsumeIntListInRange(3, 0, 1 << 16))
    budget = provider.ConsumeIntInRange(1, 4)
    payload = provider.ConsumeBytes(provider.remaining_bytes())
    bounds = [0, *(cut % (len(payload) + 1) for cut in cuts), len(payload)]
    pieces = [payload[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    whole, whole_error = parse([payload])
    split, split_error = parse(pieces, budget)
    check_request(whole)
    check_request(split)
    if whole_error is None and split_error is None:
        assert _merged(whole) == _merged(split)
    _fuzz_framing(payload)


def _merged(events: list[object]) -> list[object]:
    """Events with adjacent Body pieces joined (splitting may cut a body differently)."""
    out: list[object] = []
    for event in events:
        if isinstance(event, Body) and out and isinstance(out[-1], Body):
            out[-1] = Body(out[-1].data + event.data)
        else:
            out.append(event)
    return out


def _fuzz_framing(data: bytes) -> None:
    fields = data.split(b"\x00")
    headers = [(fields[i], fields[i + 1]) for i in range(0, len(fields) - 1, 2)][:8]
    status = int.from_bytes(data[:2] or b"\x00", "big") % 1100
    framing = ResponseFraming("GET", "1.1", True, b"wsgi2asgi")
    try:
        head = framing.head(status, headers)
    except ASGIContractError:
        return
    assert head.endswith(b"\r\n\r\n")
    for line in head[:-4].split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line, line
