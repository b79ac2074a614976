"""The server on loopback: HTTP/1.1 behaviour, limits and hostile input, with raw sockets."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.loopback import wait_until
from tests.servers import Running, on_loop, raw

Serve = Callable[..., Running]
seen_by_app: list[dict[str, Any]] = []


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echo the request: method, path, body; special paths for streaming and failures."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    seen_by_app.append(scope)
    path = scope["path"]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(3):
            await send({"type": "http.response.body", "body": b"part%d;" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/fail-before":
        raise RuntimeError("before start")
    if path == "/fail-after":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("after start")
    if path == "/nothing":
        return
    if path == "/bad-header":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\r\nevil: 1")]}
        )
        return
    if path == "/bad-name":
        headers = [(b"x\r\nevil", b"1")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        return
    if path == "/bad-status":
        await send({"type": "http.response.start", "status": 2000, "headers": []})
        return
    if path == "/slow":
        await asyncio.sleep(0.5)  # slow on purpose: pipelined requests queue behind it
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    text = f"{scope['method']} {scope['path']} {scope['query_string'].decode()} {len(body)}:"
    payload = text.encode() + body
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", b"%d" % len(payload)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


@pytest.fixture
def server(serve_one_loop: Serve) -> Running:
    """The echo app on one event loop: for parsing, the scope and the response's format."""
    seen_by_app.clear()
    return serve_one_loop(echo_app, timeout_keep_alive=1.0, timeout_request_header=1.0)


@pytest.fixture
def server_each_loop(serve: Serve) -> Running:
    """The echo app on each event loop: for timers, transports and flow control."""
    seen_by_app.clear()
    return serve(echo_app, timeout_keep_alive=1.0, timeout_request_header=1.0)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_get_post_and_query_with_httpx(server: Running) -> None:
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/a?x=1").text == "GET /a x=1 0:"
        assert client.post("/b", content=b"hello").text == "POST /b  5:hello"
        response = client.get("/a")
        assert response.headers["server"] == "wsgi2asgi"
        assert "date" in response.headers


def test_keep_alive_reuses_one_connection(server: Running) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        for i in range(5):
            sock.sendall(b"GET /k%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
            data = b""
            while not data.endswith(b" 0:"):
                data += sock.recv(4096)
            assert b"GET /k%d" % i in data


def test_pipelined_requests_answer_in_order(server: Running) -> None:
    requests = b"".join(b"GET /p%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(5))
    data = raw(
        server.port, requests + b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    positions = [data.index(b"GET /p%d " % i) for i in range(5)]
    assert positions == sorted(positions)
    assert data.count(b"HTTP/1.1 200 OK") == 6


def test_chunked_request_and_response(server: Running) -> None:
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    data = raw(
        server.port,
        b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + body,
    )
    assert data.endswith(b"POST /c  11:hello world")
    streamed = raw(server.port, b"GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert b"transfer-encoding: chunked" in streamed
    assert streamed.endswith(b"6\r\npart0;\r\n6\r\npart1;\r\n6\r\npart2;\r\n0\r\n\r\n")


def test_expect_100_continue_is_sent_when_the_app_reads(server: Running) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"abc")
        data = b""
        while b"abc" not in data:
            data += sock.recv(4096)
    assert b"POST /e  3:abc" in data


def test_head_has_headers_but_no_body(server: Running) -> None:
    data = raw(server.port, b"HEAD /h HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"content-length: 11" in head
    assert body == b""


def test_http10_closes_after_the_response(server: Running) -> None:
    data = raw(server.port, b"GET /old HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"connection: close" in data
    assert data.endswith(b"GET /old  0:")


def test_app_errors_give_500_or_a_closed_connection(server: Running) -> None:
    before = raw(server.port, b"GET /fail-before HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(before) == 500 and b"connection: close" in before
    nothing = raw(server.port, b"GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(nothing) == 500
    after = raw(server.port, b"GET /fail-after HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(after) == 200
    assert b"partial" in after and not after.endswith(b"0\r\n\r\n")  # no terminating chunk
    for path in (b"/bad-header", b"/bad-name", b"/bad-status"):
        injected = raw(server.port, b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path)
        assert status_of(injected) == 500 and b"evil" not in injected
        assert injected.count(b"HTTP/1.1 ") == 1


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\n",
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\nabc\r\n0\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 400),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ],
    ids=["cl-then-te", "bad-chunk-size", "no-host", "long-target", "big-header", "http2-505"],
)
def test_malformed_requests_get_4xx_close_and_never_reach_the_app(
    server_each_loop: Running, request_bytes: bytes, status: int
) -> None:
    # What the parser refuses, and with which status, is tested without sockets, case by case
    # (tests/server/test_http11.py); these few check the server answers, closes and stays well.
    data = raw(server_each_loop.port, request_bytes)
    assert status_of(data) == status
    assert b"connection: close" in data
    assert seen_by_app == []
    # The server stays healthy.
    with httpx.Client(base_url=server_each_loop.url) as client:
        assert client.get("/still-ok").status_code == 200


def test_absolute_form_and_asterisk_options_are_accepted(server: Running) -> None:
    data = raw(
        server.port, b"GET http://a/abs?q=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    assert data.endswith(b"GET /abs q=1 0:")
    options = raw(server.port, b"OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(options) == 200


def test_absolute_form_target_wins_over_the_host_header(server: Running) -> None:
    # RFC 9112 §3.2.2: the app must not see a Host that disagrees with the target.
    data = raw(
        server.port, b"GET http://real/x HTTP/1.1\r\nHost: fake\r\nConnection: close\r\n\r\n"
    )
    assert status_of(data) == 200
    assert dict(seen_by_app[-1]["headers"])[b"host"] == b"real"


def test_h2c_upgrade_is_answered_as_http11_with_nothing_lost(server: Running) -> None:
    # Neither the body of a request asking for h2c nor the request pipelined behind it may
    # be dropped: the upgrade is ignored (RFC 9110 §7.8) and both are answered over HTTP/1.1.
    data = raw(
        server.port,
        b"POST /first HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /second HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    assert data.count(b"HTTP/1.1 200 OK") == 2 and b"101" not in data.split(b"\r\n")[0]
    assert b"POST /first  5:hello" in data and data.endswith(b"GET /second  0:")


def test_http10_expect_continue_gets_no_interim_response(server: Running) -> None:
    data = raw(
        server.port,
        b"POST /e HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    )
    assert data.startswith(b"HTTP/1.1 200") and b"100 Continue" not in data


def test_a_long_pipeline_is_answered_in_order_with_bounded_parsing(serve: Serve) -> None:
    from wsgi2asgi.server.tcp import MAX_PIPELINE

    deepest: list[int] = []
    holder: dict[str, Running] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        state = holder["running"].server.state
        assert state is not None
        deepest.append(max(len(c.waiting) for c in state.connections))
        body = scope["path"].encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    holder["running"] = running = serve(app, lifespan="off")
    one = b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n"
    count = 3000
    pipeline = (
        b"".join(one % i for i in range(count))
        + b"GET /end HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    data = raw(running.port, pipeline, timeout=30)
    bodies = [part.rsplit(b"\r\n\r\n", 1)[-1] for part in data.split(b"HTTP/1.1 200 OK")[1:]]
    assert bodies == [b"/%d" % i for i in range(count)] + [b"/end"]
    # A packet of thousands of requests is parsed a little at a time, not all at once: at most
    # MAX_PIPELINE wait parsed behind the running one (docs/server.md, docs/security.md), and
    # the queue does fill up to that.
    assert max(deepest) == MAX_PIPELINE


def test_the_docs_state_the_pipeline_bound_of_the_code() -> None:
    from wsgi2asgi.server.tcp import MAX_PIPELINE

    docs = Path(__file__).resolve().parents[2] / "docs"
    server = (docs / "server.md").read_text()
    security = (docs / "security.md").read_text()
    assert f"up to {MAX_PIPELINE} later ones parsed and" in server
    assert f"at most {MAX_PIPELINE} requests are parsed ahead of the one running" in security


def test_pipelined_requests_with_bodies_past_the_parse_budget_keep_every_body(
    server_each_loop: Running,
) -> None:
    posts = [
        b"POST /p%d HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s" % (i, len(b), b)
        for i, b in ((i, b"body-%d-" % i * (i % 7 * 300 + 1)) for i in range(40))
    ]
    chunked = (
        b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    )
    last = b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    data = raw(server_each_loop.port, b"".join(posts) + chunked + last, timeout=20)
    bodies = [part.rsplit(b"\r\n\r\n", 1)[-1] for part in data.split(b"HTTP/1.1 200 OK")[1:]]
    expected = [
        b"POST /p%d  %d:%s" % (i, len(b), b)
        for i, b in ((i, p.partition(b"\r\n\r\n")[2]) for i, p in enumerate(posts))
    ]
    assert bodies == [*expected, b"POST /c  2:ok", b"GET /last  0:"]


def test_a_malformed_request_held_behind_a_long_pipeline_gets_400_after_the_others(
    server_each_loop: Running,
) -> None:
    good = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(300))
    data = raw(server_each_loop.port, good + b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n")
    statuses = [status_of(b"HTTP/1.1 " + part) for part in data.split(b"HTTP/1.1 ")[1:]]
    # The ones parsed before it are answered, in order; then the 400, and the connection closes.
    assert statuses[-1] == 400 and set(statuses[:-1]) == {200} and len(statuses) > 16
    assert data.endswith(b"Invalid header token")
    assert statuses.count(200) == 300  # every request before it, none lost


def test_a_queued_request_whose_body_turns_out_malformed_is_dropped_the_others_answered(
    server_each_loop: Running,
) -> None:
    # The chunked body is cut in 2 KiB slices: its end, malformed, is parsed only after the
    # requests ahead of it (held back by the pipelining bound) have been answered.
    gets = b"".join(b"GET /g%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(20))
    chunk = b"x" * 1000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(6)) + b"zz\r\n"
    post = b"POST /bad HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    data = raw(server_each_loop.port, b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n" + gets + post)
    statuses = [status_of(b"HTTP/1.1 " + part) for part in data.split(b"HTTP/1.1 ")[1:]]
    assert statuses == [200] * 21 + [400]
    assert [scope["path"] for scope in seen_by_app][-1] == "/g19"  # /bad: never answered


def test_a_malformed_pipelined_request_does_not_cut_the_running_response(
    server_each_loop: Running,
) -> None:
    data = raw(
        server_each_loop.port,
        b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    )
    first, _, second = data.partition(b"0\r\n\r\n")  # the end of the chunked response
    assert status_of(first) == 200 and b"part0;" in first and b"part2;" in first
    assert status_of(second) == 400 and second.endswith(b"exactly one Host header")


def test_body_over_the_limit_is_413(serve_one_loop: Serve) -> None:
    running = serve_one_loop(echo_app, max_body_size=10)
    declared = raw(running.port, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n")
    assert status_of(declared) == 413
    chunked = raw(
        running.port,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n",
    )
    assert status_of(chunked) == 413


def test_concurrency_limit_answers_503(serve_one_loop: Serve) -> None:
    entered, release = threading.Event(), asyncio.Event()

    async def holds(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        entered.set()
        await asyncio.wait_for(release.wait(), 10)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"held"})

    running = serve_one_loop(holds, lifespan="off", limit_concurrency=1)
    first: dict[str, httpx.Response] = {}
    client = threading.Thread(target=lambda: first.update(r=httpx.get(running.url, timeout=10)))
    client.start()
    assert entered.wait(5)  # the one request allowed is running
    statuses = [httpx.get(running.url, timeout=5).status_code for _ in range(3)]
    running.loop.call_soon_threadsafe(release.set)
    client.join(10)
    assert statuses == [503] * 3
    assert first["r"].status_code == 200 and first["r"].text == "held"


def test_slowloris_header_trickle_is_closed(server_each_loop: Running) -> None:
    # The head trickles in, a line every 0.2 s, for up to four header timeouts (1 s here):
    # every line is progress, yet the head must be whole within the timeout of its first byte.
    answer = b""
    closed_after: float | None = None
    with socket.create_connection(("127.0.0.1", server_each_loop.port), timeout=5) as sock:
        sock.settimeout(0.2)  # the trickle's pace: each read waits that long for the close
        start = time.monotonic()
        pieces = iter([b"GET / HTTP/1.1\r\n", b"Host: a\r\n"] + [b"X: y\r\n"] * 40)
        while closed_after is None and time.monotonic() - start < 4:
            try:
                sock.sendall(next(pieces))
                chunk = sock.recv(4096)
            except TimeoutError:
                continue  # still open: trickle on
            except (BrokenPipeError, ConnectionResetError):
                chunk = b""
            answer += chunk
            if not chunk:
                closed_after = time.monotonic() - start
    assert closed_after is not None, "the trickling head was still open after 4 s"
    assert 0.9 < closed_after < 3
    assert answer == b"" or status_of(answer) == 408, answer  # closed, at most with a 408
    assert seen_by_app == []


def test_idle_keep_alive_connection_is_closed(server_each_loop: Running) -> None:
    with socket.create_connection(("127.0.0.1", server_each_loop.port), timeout=5) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        data = b""
        while not data.endswith(b" 0:"):
            data += sock.recv(4096)
        sock.settimeout(4)
        assert sock.recv(100) == b""  # closed by the keep-alive timeout (1 s here)


def test_client_vanishing_mid_request_leaves_the_server_healthy(server_each_loop: Running) -> None:
    for partial in [b"GET / HT", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc"]:
        with socket.create_connection(("127.0.0.1", server_each_loop.port), timeout=5) as sock:
            sock.sendall(partial)
    with httpx.Client(base_url=server_each_loop.url) as client:
        assert client.get("/alive").status_code == 200


def test_disconnect_is_reported_to_the_app(serve: Serve) -> None:
    events: list[str] = []
    called, disconnected = threading.Event(), threading.Event()

    async def waits(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        called.set()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                events.append("disconnect")
                disconnected.set()
                return

    running = serve(waits, lifespan="off")
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert called.wait(5)  # the app has the request; now the client leaves
    assert disconnected.wait(5)
    assert events == ["disconnect"]


def test_proxy_headers_only_from_trusted_addresses(serve_one_loop: Serve) -> None:
    scopes: list[dict[str, Any]] = []

    async def record(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        scopes.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    headers = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"}
    trusted = serve_one_loop(record, lifespan="off")
    untrusted = serve_one_loop(record, lifespan="off", forwarded_allow_ips=("10.9.9.9",))
    httpx.get(trusted.url, headers=headers)
    httpx.get(untrusted.url, headers=headers)
    assert scopes[0]["client"][0] == "203.0.113.9" and scopes[0]["scheme"] == "https"
    assert scopes[1]["client"][0] == "127.0.0.1" and scopes[1]["scheme"] == "http"


def test_wsgi_app_is_served_through_the_adapter(serve_one_loop: Serve) -> None:
    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode() + b" " + body]

    running = serve_one_loop(wsgi)
    with httpx.Client(base_url=running.url) as client:
        assert client.post("/w", content=b"data").text == "/w data"


def test_root_path_is_prefixed_to_the_path(serve_one_loop: Serve) -> None:
    running = serve_one_loop(echo_app, root_path="/proxy")
    assert httpx.get(running.url + "/x").text == "GET /proxy/x  0:"


def test_tls_with_a_self_signed_certificate(serve: Serve, tmp_path: Any) -> None:
    import ssl

    import trustme

    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    certificate.private_key_pem.write_to_path(str(key))
    certificate.cert_chain_pems[0].write_to_path(str(cert))
    running = serve(
        echo_app, ssl_keyfile=str(key), ssl_certfile=str(cert), timeout_request_header=1.0
    )
    context = ssl.create_default_context()
    authority.configure_trust(context)
    with httpx.Client(verify=context) as client:  # the certificate is verified, not ignored
        response = client.get(f"https://127.0.0.1:{running.port}/secure")
    assert response.text == "GET /secure  0:"
    assert seen_by_app[-1]["scheme"] == "https"
    # Slowloris before TLS: a client silent after connecting, or stopping halfway through its
    # ClientHello, is dropped after the request-head time limit (1 s here), not the loop's 60 s.
    for opening in (b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
        assert raw(running.port, opening, timeout=20) == b""  # closed, not "<timeout>"
    # Plain HTTP sent to the TLS port is closed without reaching the app.
    seen_by_app.clear()
    raw(running.port, b"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n")
    assert seen_by_app == []


def test_malformed_body_after_the_head_reached_the_app_gets_400(serve: Serve) -> None:
    reading = threading.Event()

    async def reads(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def receive_noted() -> Any:
            reading.set()
            return await receive()

        await echo_app(scope, receive_noted, send)

    running = serve(reads, lifespan="off")
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        sock.sendall(b"POST /late HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab")
        assert reading.wait(5)  # the app has started and waits for the body
        sock.sendall(b"c\r\nzz\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert status_of(data) == 400


def test_debug_blocking_reports_the_blocking_line_and_request(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    async def sleepy(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        time.sleep(0.3)  # blocks the event loop: the detector must name this line
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    running = serve(sleepy, lifespan="off", debug_blocking=100)
    with caplog.at_level(logging.WARNING, logger="wsgi2asgi.blocking"):
        assert httpx.get(running.url + "/nap").status_code == 204
        wait_until(lambda: "blocks the event loop" in caplog.text)  # the watchdog's report
    assert "time.sleep(0.3)" in caplog.text
    assert "GET /nap" in caplog.text


def test_request_body_that_stalls_gets_408_and_the_app_a_disconnect(serve: Serve) -> None:
    events: list[str] = []
    disconnected = threading.Event()

    async def reader(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while True:
            message = await receive()
            events.append(message["type"])
            if message["type"] == "http.disconnect":
                disconnected.set()
                return

    running = serve(reader, lifespan="off", timeout_request_body=0.5)
    start = time.monotonic()
    data = raw(running.port, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
    assert status_of(data) == 408
    assert b"connection: close" in data
    assert time.monotonic() - start < 4
    assert disconnected.wait(5)
    assert events == ["http.request", "http.disconnect"]


def test_slow_but_steady_body_is_not_timed_out(serve: Serve) -> None:
    running = serve(echo_app, timeout_request_body=0.5)
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        sock.sendall(
            b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\nConnection: close\r\n\r\n"
        )
        for piece in (b"ab", b"cd", b"ef", b"gh"):  # 1.2 s in all: each gap under 0.5 s
            time.sleep(0.3)
            sock.sendall(piece)
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert status_of(data) == 200
    assert data.endswith(b"POST /up  8:abcdefgh")


def test_body_clock_waits_for_100_continue_and_for_a_paused_reader(serve: Serve) -> None:
    async def late_reader(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await asyncio.sleep(1.0)  # twice the body timeout before asking for the body
        await echo_app(scope, receive, send)

    running = serve(late_reader, lifespan="off", timeout_request_body=0.5)
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        sock.sendall(
            b"POST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n"
            b"Connection: close\r\n\r\n"
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"abc")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert status_of(data) == 200 and data.endswith(b"3:abc")
    # A body the app has not read past the buffer (reading paused): not the client's delay.
    big = b"x" * (256 * 1024)
    request = (
        b"POST /p HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(big)
    )
    response = raw(running.port, request + big)
    assert status_of(response) == 200
    assert response.endswith(b"%d:" % len(big) + big)


def test_response_head_is_not_held_back_by_a_late_first_chunk(serve: Serve) -> None:
    release = asyncio.Event()

    async def late_body(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.wait_for(release.wait(), 10)
        await send({"type": "http.response.body", "body": b"late"})

    running = serve(late_body, lifespan="off")
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        head = sock.recv(4096)  # arrives while the body is still held by the app
        assert head.startswith(b"HTTP/1.1 200 OK") and head.endswith(b"\r\n\r\n")
        running.loop.call_soon_threadsafe(release.set)
        rest = b""
        while chunk := sock.recv(4096):
            rest += chunk
    assert rest == b"4\r\nlate\r\n0\r\n\r\n"


def test_app_failing_right_after_the_start_still_gets_a_clean_500(serve_one_loop: Serve) -> None:
    async def fails(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("after start, before any byte was written")

    running = serve_one_loop(fails, lifespan="off")
    data = raw(running.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(data) == 500
    assert data.count(b"HTTP/1.1") == 1


def test_server_exits_gracefully_after_max_requests(serve: Serve) -> None:
    running = serve(echo_app, limit_max_requests=3)
    with httpx.Client(base_url=running.url) as client:
        responses = [client.get(f"/{i}") for i in range(3)]
    texts = [response.text for response in responses]
    assert texts == ["GET /0  0:", "GET /1  0:", "GET /2  0:"]  # the last one whole too
    assert [r.headers.get("connection") for r in responses] == [None, None, "close"]
    running.thread.join(10)
    assert not running.thread.is_alive()
    assert running.status == [0]


def test_a_response_started_during_shutdown_says_connection_close(serve: Serve) -> None:
    entered, release = threading.Event(), asyncio.Event()

    async def waits(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        entered.set()
        await asyncio.wait_for(release.wait(), 10)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    running = serve(waits, lifespan="off")
    result: dict[str, httpx.Response] = {}
    client = threading.Thread(target=lambda: result.update(r=httpx.get(running.url, timeout=10)))
    client.start()
    assert entered.wait(5)  # the request is in flight
    running.loop.call_soon_threadsafe(running.server.should_exit.set)

    def marked_closing() -> bool:
        state = running.server.state
        return state is not None and any(c.closing for c in state.connections)

    # The shutdown has begun: the connection is marked closing.
    assert wait_until(lambda: on_loop(running, marked_closing))
    running.loop.call_soon_threadsafe(release.set)
    client.join(10)
    assert result["r"].text == "done"
    assert result["r"].headers["connection"] == "close"


def test_stalled_body_frees_the_wsgi_thread_reading_it(serve: Serve) -> None:
    outcome: list[str] = []
    failed = threading.Event()

    def reads_body(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except OSError as exc:  # ClientDisconnected
            outcome.append(type(exc).__name__)
            failed.set()
            raise
        start_response("200 OK", [])
        return [b"never"]

    running = serve(reads_body, timeout_request_body=0.5)
    data = raw(running.port, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
    assert status_of(data) == 408
    assert failed.wait(5)
    assert outcome == ["ClientDisconnected"]


def test_a_started_head_goes_out_before_a_late_first_chunk(serve: Serve) -> None:
    # The head waits for the first body message only until the loop's next turn (#17: one
    # callback a turn writes every head still waiting), so a long poll's client sees it at once.
    release = threading.Event()

    async def late(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)
        await send({"type": "http.response.body", "body": b"late"})

    running = serve(late, lifespan="off")
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)  # times out (fails) if the head waits for the body
        assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
        release.set()
        rest = b""
        while not rest.endswith(b"0\r\n\r\n"):
            rest += sock.recv(4096)
    assert rest == b"4\r\nlate\r\n0\r\n\r\n"
