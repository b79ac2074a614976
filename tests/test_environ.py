"""``wsgi2asgi.environ``: the PEP 3333 environ from an ASGI scope, and response validation."""

from __future__ import annotations

import io
import logging
from typing import Any
from wsgiref.validate import validator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsgi2asgi.environ import (
    SCOPE_KEY,
    FileWrapper,
    WSGIErrors,
    build_environ,
    path_info,
    response_start,
)
from wsgi2asgi.exceptions import TooManyHeaders, WSGIContractError
from wsgi2asgi.wsgi import wsgi_to_asgi


def make_scope(**overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/app/hello",
        "raw_path": b"/app/hello",
        "root_path": "/app",
        "query_string": b"a=1&b=%20",
        "headers": [(b"host", b"example.com:8080"), (b"user-agent", b"test")],
        "server": ("10.0.0.1", 8000),
        "client": ("127.0.0.1", 54321),
    }
    scope.update(overrides)
    return scope


def environ_for(**overrides: Any) -> dict[str, Any]:
    return build_environ(make_scope(**overrides), io.BytesIO(b""), WSGIErrors())


def test_cgi_variables() -> None:
    environ = environ_for()
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["SCRIPT_NAME"] == "/app"
    assert environ["PATH_INFO"] == "/hello"
    assert environ["QUERY_STRING"] == "a=1&b=%20"
    assert environ["SERVER_NAME"] == "10.0.0.1"
    assert environ["SERVER_PORT"] == "8000"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["REMOTE_PORT"] == "54321"
    assert environ["HTTP_HOST"] == "example.com:8080"
    assert environ["HTTP_USER_AGENT"] == "test"
    assert environ["REQUEST_URI"] == environ["RAW_URI"] == "/app/hello?a=1&b=%20"
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.multiprocess"] is False
    assert environ["wsgi.run_once"] is False
    assert environ["wsgi.input_terminated"] is True
    assert environ["wsgi.file_wrapper"] is FileWrapper
    assert environ[SCOPE_KEY]["path"] == "/app/hello"


def test_every_value_is_a_native_string_and_port_is_a_string() -> None:
    environ = environ_for()
    for key, value in environ.items():
        if key.isupper():
            assert type(value) is str, key


@pytest.mark.parametrize(
    ("raw_path", "path", "expected"),
    [
        (b"/app/a%2Fb", "/app/a/b", "/a/b"),  # %2F decoded as WSGI servers do
        (b"/app/caf%C3%A9", "/app/caf\u00e9", "/caf\u00c3\u00a9"),  # UTF-8 bytes as latin-1
        (b"/app/%E9", "/app/\ufffd", "/\u00e9"),  # invalid UTF-8 survives from raw_path
        (b"/app", "/app", ""),
        (b"/app/", "/app/", "/"),
    ],
)
def test_path_info_from_raw_path(raw_path: bytes, path: str, expected: str) -> None:
    assert path_info({"path": path, "raw_path": raw_path, "root_path": "/app"}) == (
        "/app",
        expected,
    )


def test_path_info_from_path_when_raw_path_disagrees_or_is_missing() -> None:
    rewritten = {"path": "/app/new", "raw_path": b"/app/old", "root_path": "/app"}
    assert path_info(rewritten) == ("/app", "/new")
    assert path_info({"path": "/app/x", "root_path": "/app"}) == ("/app", "/x")


def test_path_without_root_path_older_convention() -> None:
    assert path_info({"path": "/x", "raw_path": b"/x", "root_path": "/app"}) == ("/app", "/x")


def test_root_path_prefix_is_segment_aware() -> None:
    scope = {"path": "/application/x", "root_path": "/app"}
    assert path_info(scope) == ("/app", "/application/x")


def test_non_ascii_root_path_is_latin1_native_string() -> None:
    scope = {"path": "/caf\u00e9/x", "root_path": "/caf\u00e9"}
    assert path_info(scope) == ("/caf\u00c3\u00a9", "/x")


def test_headers_joined_cookies_with_semicolon_and_underscores_dropped() -> None:
    environ = environ_for(
        headers=[
            (b"accept", b"text/html"),
            (b"accept", b"application/json"),
            (b"cookie", b"a=1"),
            (b"cookie", b"b=2"),
            (b"x-forwarded-for", b"1.1.1.1"),
            (b"x_forwarded_for", b"6.6.6.6"),
            (b"content-type", b"application/json"),
            (b"content-length", b"12"),
        ]
    )
    assert environ["HTTP_ACCEPT"] == "text/html,application/json"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert environ["HTTP_X_FORWARDED_FOR"] == "1.1.1.1"
    assert environ["CONTENT_TYPE"] == "application/json"
    assert environ["CONTENT_LENGTH"] == "12"
    assert "HTTP_CONTENT_TYPE" not in environ
    assert "HTTP_CONTENT_LENGTH" not in environ


def test_latin1_header_values_survive() -> None:
    environ = environ_for(headers=[(b"x-name", "Jos\u00e9".encode("latin-1"))])
    assert environ["HTTP_X_NAME"] == "Jos\u00e9"


@pytest.mark.parametrize(
    ("server", "host", "scheme", "expected"),
    [
        (None, b"example.com:8443", "https", ("example.com", "8443")),
        (None, b"example.com", "https", ("example.com", "443")),
        (None, b"[::1]:9000", "http", ("[::1]", "9000")),
        (None, None, "http", ("localhost", "80")),
        (("/tmp/sock", None), b"site.test", "http", ("site.test", "80")),
    ],
)
def test_server_name_and_port_fallbacks(
    server: Any, host: bytes | None, scheme: str, expected: tuple[str, str]
) -> None:
    headers = [(b"host", host)] if host else []
    environ = environ_for(server=server, headers=headers, scheme=scheme)
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == expected


def test_client_missing_means_no_remote_addr() -> None:
    environ = environ_for(client=None)
    assert "REMOTE_ADDR" not in environ


def test_too_many_headers_is_refused() -> None:
    scope = make_scope(headers=[(b"x-a", b"1")] * 11)
    with pytest.raises(TooManyHeaders):
        build_environ(scope, io.BytesIO(), WSGIErrors(), max_headers=10)


def test_environ_passes_wsgiref_validator() -> None:
    environ = build_environ(
        make_scope(method="POST", headers=[(b"content-length", b"3"), (b"host", b"h")]),
        io.BytesIO(b"abc"),
        WSGIErrors(),
    )
    seen: list[bytes] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["wsgi.input"].read(3))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return lambda data: None

    result = validator(app)(environ, start_response)
    assert list(result) == [b"ok"]
    result.close()  # type: ignore[attr-defined]
    assert seen == [b"abc"]


@given(
    st.lists(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=6)),
    st.sampled_from(["", "/app", "/a/b"]),
)
def test_path_info_round_trips_to_the_request_bytes(segments: list[str], root: str) -> None:
    from urllib.parse import quote, unquote

    full = root + "/" + "/".join(segments)
    raw = quote(full.encode("utf-8"), safe="/").encode("ascii")
    script, path = path_info({"path": unquote(raw.decode()), "raw_path": raw, "root_path": root})
    assert (script + path).encode("latin-1") == full.encode("utf-8")


# -- response_start -----------------------------------------------------------------------------


def test_response_start_lowercases_and_encodes() -> None:
    assert response_start("201 Created", [("X-Thing", "caf\u00e9")]) == (
        201,
        [(b"x-thing", b"caf\xe9")],
    )


@pytest.mark.parametrize(
    "status", ["200", "20x OK", "200OK", "099 Low", b"200 OK", "200 OK\r\nX: y", " 200 OK"]
)
def test_bad_status_lines_are_refused(status: Any) -> None:
    with pytest.raises(WSGIContractError):
        response_start(status, [])


@pytest.mark.parametrize(
    "header",
    [
        ("X-Bad", "a\r\nSet-Cookie: evil=1"),
        ("X-Bad", "a\nb"),
        ("X-Bad", "a\x00b"),
        ("X Bad", "v"),
        ("X-Bad:", "v"),
        ("", "v"),
        ("X-Emoji", "\U0001f600"),
        (b"X-Bytes", "v"),
        ("X-Int", 1),
        ["X-List", "v", "extra"],
        ["X-List"],
        "X-Str: v",
        {"X-Dict": "v"},
    ],
)
def test_header_injection_and_bad_headers_are_refused(header: Any) -> None:
    with pytest.raises(WSGIContractError):
        response_start("200 OK", [header])


def test_response_start_takes_a_header_as_a_two_item_list() -> None:
    # gunicorn, wsgiref's handler, asgiref and a2wsgi all take it (#12.5).
    assert response_start("200 OK", [["X-Colour", "Blue"]]) == (200, [(b"x-colour", b"Blue")])


async def test_a_header_as_a_list_reaches_the_client_through_wsgi_to_asgi() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        # Not under wsgiref's validator: it asserts tuples, where servers take any pair.
        start_response("200 OK", [["Content-Type", "text/plain"], ["X-Colour", "Blue"]])
        return [b"blue"]

    transport = httpx.ASGITransport(app=wsgi_to_asgi(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/")
    assert (response.status_code, response.text) == (200, "blue")
    assert response.headers["x-colour"] == "Blue"


def test_hop_by_hop_headers_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        status, headers = response_start(
            "200 OK", [("Connection", "close"), ("Transfer-Encoding", "chunked"), ("A", "b")]
        )
    assert headers == [(b"a", b"b")]
    assert "hop-by-hop" in caplog.text


def test_wsgi_errors_logs_each_line(caplog: pytest.LogCaptureFixture) -> None:
    errors = WSGIErrors()
    with caplog.at_level(logging.ERROR, logger="wsgi2asgi.wsgi.errors"):
        errors.write("first line\nsecond ")
        errors.writelines(["part\n"])
        errors.write("tail")
        errors.flush()
    assert [r.getMessage() for r in caplog.records] == ["first line", "second part", "tail"]


def test_file_wrapper_iterates_and_closes() -> None:
    stream = io.BytesIO(b"abcdefg")
    wrapper = FileWrapper(stream, 3)
    assert list(wrapper) == [b"abc", b"def", b"g"]
    wrapper.close()
    assert stream.closed


@given(
    st.text(max_size=20),
    st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=40),
)
def test_response_headers_that_pass_never_carry_cr_lf_or_nul(name: str, value: str) -> None:
    try:
        _, headers = response_start("200 OK", [(name, value)])
    except WSGIContractError:
        return
    for raw_name, raw_value in headers:
        assert not set(raw_name + raw_value) & {0x0D, 0x0A, 0x00}
        assert raw_name and b" " not in raw_name and b":" not in raw_name


# -- the asgiref defects (research/asgiref.md §3.3), one test each ------------------------------


def test_header_names_are_case_insensitive() -> None:
    # The spec says names "must be lowercased", but a server that sends "Content-Type" must
    # still give CONTENT_TYPE (asgiref makes it HTTP_CONTENT_TYPE).
    environ = environ_for(
        headers=[(b"Content-Type", b"text/plain"), (b"Content-Length", b"4"), (b"X-Id", b"7")]
    )
    assert (environ["CONTENT_TYPE"], environ["CONTENT_LENGTH"]) == ("text/plain", "4")
    assert environ["HTTP_X_ID"] == "7"
    assert "HTTP_CONTENT_TYPE" not in environ


def test_underscore_header_cannot_forge_its_dashed_twin() -> None:
    environ = environ_for(headers=[(b"x_remote_user", b"admin")])
    assert "HTTP_X_REMOTE_USER" not in environ


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        # uvicorn --root-path /app: path and raw_path both carry the prefix.
        ({"path": "/app/x", "raw_path": b"/app/x", "root_path": "/app"}, ("/app", "/x")),
        # a server that prefixes path but not raw_path: they disagree, path wins.
        ({"path": "/app/a/b", "raw_path": b"/a%2Fb", "root_path": "/app"}, ("/app", "/a/b")),
        # a trailing slash on the root path (a misconfigured --root-path "/app/").
        ({"path": "/app/x", "root_path": "/app/"}, ("/app", "/x")),
        ({"path": "/x", "root_path": "/"}, ("", "/x")),
    ],
)
def test_root_path_conventions(scope: dict[str, Any], expected: tuple[str, str]) -> None:
    assert path_info(scope) == expected


def test_multiprocess_is_an_option() -> None:
    environ = build_environ(make_scope(), io.BytesIO(), WSGIErrors(), multiprocess=True)
    assert environ["wsgi.multiprocess"] is True


@pytest.mark.parametrize(("limit", "copies", "refused"), [(100, 100, False), (100, 101, True)])
def test_duplicate_header_limit(limit: int, copies: int, refused: bool) -> None:
    scope = make_scope(headers=[(b"x-dup", b"v")] * copies)
    if refused:
        with pytest.raises(TooManyHeaders, match="Too many duplicate headers"):
            build_environ(scope, io.BytesIO(), WSGIErrors(), duplicate_header_limit=limit)
    else:
        environ = build_environ(scope, io.BytesIO(), WSGIErrors(), duplicate_header_limit=limit)
        assert environ["HTTP_X_DUP"] == ",".join(["v"] * copies)


def test_duplicate_header_limit_none_disables_it() -> None:
    scope = make_scope(headers=[(b"cookie", b"a=1")] * 500)
    environ = build_environ(scope, io.BytesIO(), WSGIErrors(), duplicate_header_limit=None)
    assert environ["HTTP_COOKIE"].count("; ") == 499
