"""The WSGI side of a request, built from an ASGI scope: environ in, response start out.

Pure functions, no I/O. Rules this module keeps (PEP 3333 and the ASGI spec, ``www.rst``):

* Every CGI value is a *native string* holding bytes: "strings that are decoded from bytes
  using the ISO-8859-1 (latin-1) encoding" — PEP 3333, "Unicode Issues".
* ``SCRIPT_NAME`` is the mount point: the scope's ``root_path``. ``PATH_INFO`` is the rest of
  the path, percent-decoded *as bytes* (from ``raw_path`` when it agrees with ``path``), so
  ``%2F`` becomes ``/`` and UTF-8 becomes latin-1 mojibake exactly as gunicorn and wsgiref
  produce. ASGI ``path`` includes ``root_path`` (``www.rst``, "WSGI Compatibility":
  "PATH_INFO can be derived by stripping root_path from path"; uvicorn's ``--root-path``
  and Starlette's ``Mount`` both send it so, checked with uvicorn 0.54 and Starlette 1.10).
  It is stripped only at a segment boundary; a path that does not start with it is taken
  as already relative (the older convention).
* Request headers become ``HTTP_*`` keys; ``Content-Type``/``Content-Length`` become
  ``CONTENT_TYPE``/``CONTENT_LENGTH``. Repeated headers are joined with ``,`` (RFC 9110
  §5.3), cookies with ``; `` (RFC 9113 §8.2.3). Header names containing ``_`` are dropped:
  ``X_Foo`` and ``X-Foo`` both map to ``HTTP_X_FOO``, so letting one through would let a client
  forge the other (gunicorn and nginx drop them too).
* The response: status ``"200 OK"`` — "a status code and a reason phrase, separated by a single
  space"; header names are tokens, values contain no CR, LF or NUL (a CR/LF would split the
  response: header injection). Hop-by-hop headers are the server's business: PEP 3333 says
  applications "must not" send them, and they are dropped here.

Example::

    environ = build_environ(scope, wsgi_input, errors)
    status, headers = response_start("200 OK", [("Content-Type", "text/plain")])
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any
from urllib.parse import unquote, unquote_to_bytes

from wsgi2asgi.exceptions import TooManyHeaders, WSGIContractError
from wsgi2asgi.headers import DEFAULT_PORTS, HOP_BY_HOP, split_host_port, valid_name, valid_value
from wsgi2asgi.typing import Environ, Scope

__all__ = [
    "DUPLICATE_HEADERS",
    "SCOPE_KEY",
    "FileWrapper",
    "WSGIErrors",
    "build_environ",
    "path_info",
    "response_start",
]

#: The environ key under which the ASGI scope itself is available to the WSGI app.
SCOPE_KEY = "asgi.scope"
#: The reason given when one header name repeats too often (asgiref's wording).
DUPLICATE_HEADERS = "Too many duplicate headers"

_STATUS = re.compile(r"([1-9][0-9]{2}) ([^\x00-\x08\x0a-\x1f\x7f]*)")
logger = logging.getLogger(__name__)
_ERRORS_LOGGER = "wsgi2asgi.wsgi.errors"
_errors_logger = logging.getLogger(_ERRORS_LOGGER)

#: Names seen most often, looked up rather than worked out per request (a request's hot path):
#: a request header name → its environ key (``None``: dropped, it holds ``_``), a response
#: header name → its validated lower-case bytes (``None``: hop-by-hop), a status line → its
#: code. Bounded, so names made up by clients (or apps) cannot grow them without end; past the
#: bound, they are worked out each time.
_CACHE_SIZE = 512
_environ_keys: dict[bytes, str | None] = {}
_response_names: dict[str, bytes | None] = {}
_status_codes: dict[str, int] = {}  # a WSGI status line → its code
_PROTOCOLS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0", "2": "HTTP/2", "3": "HTTP/3"}


class WSGIErrors:
    """``wsgi.errors``: a text stream that writes to the ``logging`` system.

    Each complete line becomes one ERROR record on the logger ``wsgi2asgi.wsgi.errors``.
    """

    def __init__(self, logger_name: str = _ERRORS_LOGGER) -> None:
        # One per request: the default logger is looked up once, not per request.
        if logger_name == _ERRORS_LOGGER:
            self._logger = _errors_logger
        else:
            self._logger = logging.getLogger(logger_name)
        self._partial = ""

    def write(self, text: str) -> int:
        """Log every complete line of ``text``; keep a trailing partial line for later."""
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._logger.error("%s", line)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        """Write each string of ``lines``."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Log a pending partial line."""
        if self._partial:
            self._logger.error("%s", self._partial)
            self._partial = ""


class FileWrapper:
    """``wsgi.file_wrapper``: iterate a file-like object in blocks, closing it at the end.

    PEP 3333: "the wrapper's close() method must call the file-like object's close() method".

    Example::

        return environ["wsgi.file_wrapper"](open(path, "rb"), 65536)
    """

    def __init__(self, filelike: IO[bytes], block_size: int = 65536) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while block := read(self.block_size):
            yield block

    def close(self) -> None:
        """Close the wrapped file."""
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


def path_info(scope: Scope) -> tuple[str, str]:
    """Return ``(SCRIPT_NAME, PATH_INFO)`` for a scope, as native latin-1 strings.

    >>> path_info({"path": "/app/a%2Fb", "raw_path": b"/app/a%252Fb", "root_path": "/app"})
    ('/app', '/a%2Fb')
    >>> path_info({"path": "/app/caf\\u00e9", "root_path": "/app"})
    ('/app', '/caf\\xc3\\xa9')
    """
    path: str = scope["path"]
    raw_path: bytes | None = scope.get("raw_path")
    if not raw_path:
        full = path.encode("utf-8", "surrogateescape")
    elif b"%" not in raw_path:
        # Nothing to decode (the common case, without urllib's two calls): the bytes the
        # client sent, when they are the path.
        raw = raw_path.decode("latin-1")
        full = raw_path if raw == path else path.encode("utf-8", "surrogateescape")
    elif unquote(raw_path.decode("latin-1")) == path:
        # The bytes the client sent, percent-decoded the way WSGI servers do.
        full = unquote_to_bytes(raw_path)
    else:
        full = path.encode("utf-8", "surrogateescape")
    root_path: str = scope.get("root_path", "")
    if not root_path:
        return "", full.decode("latin-1")
    # A trailing "/" on root_path (a misconfigured --root-path "/app/") would leave the
    # PATH_INFO without its leading slash; CGI's SCRIPT_NAME never ends with one.
    root = root_path.encode("utf-8", "surrogateescape").rstrip(b"/")
    # ASGI www.rst: "PATH_INFO can be derived by stripping root_path from path" -- at a "/"
    # only: root_path "/app" must not turn "/application" into "lication".
    if root and full.startswith(root) and (len(full) == len(root) or full[len(root)] == 0x2F):
        rest = full[len(root) :]
    else:
        rest = full  # an older-convention server: path is already relative to root_path
    return root.decode("latin-1"), rest.decode("latin-1")


def build_environ(
    scope: Scope,
    wsgi_input: Any,
    errors: Any,
    *,
    multiprocess: bool = False,
    max_headers: int = 1000,
    duplicate_header_limit: int | None = 100,
) -> Environ:
    """Build the PEP 3333 environ for an ASGI ``http`` scope.

    Example::

        environ = build_environ(scope, io.BytesIO(b""), sys.stderr)
        environ["PATH_INFO"], environ["SERVER_PORT"]    # ('/login', '8000')

    Args:
        scope: the ASGI http scope.
        wsgi_input: the ``wsgi.input`` stream.
        errors: the ``wsgi.errors`` stream.
        multiprocess: the value of ``wsgi.multiprocess`` (true under ``--workers``).
        max_headers: the most header lines accepted.
        duplicate_header_limit: the most lines accepted for one header name (``None``: no
            limit). Joining thousands of repeats is quadratic work for the app (the DoS of
            asgiref's CVE-2025-14550).

    Returns:
        The environ dict; the scope is under ``"asgi.scope"``.

    Raises:
        TooManyHeaders: more than ``max_headers`` header lines, or more than
            ``duplicate_header_limit`` of one name.
    """
    script_name, path = path_info(scope)
    version: str = scope.get("http_version", "1.1")
    scheme: str = scope.get("scheme", "http")
    query: bytes = scope.get("query_string", b"")
    raw_uri = (scope.get("raw_path") or scope["path"].encode("utf-8")).decode("latin-1")
    if query:
        raw_uri += "?" + query.decode("latin-1")
    environ: Environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_PROTOCOL": _PROTOCOLS.get(version) or f"HTTP/{version}",
        "REQUEST_URI": raw_uri,
        "RAW_URI": raw_uri,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": wsgi_input,
        "wsgi.errors": errors,
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
        SCOPE_KEY: scope,
    }
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    if len(headers) > max_headers:
        raise TooManyHeaders(f"{len(headers)} header lines (at most {max_headers})")
    repeated: dict[str, list[str]] | None = None  # the names given more than once
    for raw_name, raw_value in headers:
        key = _environ_keys.get(raw_name, "")
        if key == "":
            key = _environ_key(raw_name)
        if key is None:
            continue
        value = raw_value.decode("latin-1")
        if key not in environ:
            environ[key] = value
            continue
        if repeated is None:
            repeated = {}
        values = repeated.get(key)
        if values is None:
            values = repeated[key] = [environ[key]]
        if duplicate_header_limit is not None and len(values) >= duplicate_header_limit:
            raise TooManyHeaders(DUPLICATE_HEADERS)
        values.append(value)
    if repeated:
        for key, values in repeated.items():
            environ[key] = ("; " if key == "HTTP_COOKIE" else ",").join(values)
    server = scope.get("server")
    if server and server[1] is not None:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = server[0], str(server[1])
    else:
        name, port = split_host_port(environ.get("HTTP_HOST", ""))
        environ["SERVER_NAME"] = name or (server[0] if server else "") or "localhost"
        environ["SERVER_PORT"] = port if port.isdigit() else str(DEFAULT_PORTS.get(scheme, 80))
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        if client[1] is not None:
            environ["REMOTE_PORT"] = str(client[1])
    return environ


def _environ_key(raw_name: bytes) -> str | None:
    """The environ key of a request header (``None``: its name holds ``_``, dropped)."""
    name = raw_name.decode("latin-1").lower()
    if "_" in name:
        key = None
    elif name == "content-type":
        key = "CONTENT_TYPE"
    elif name == "content-length":
        key = "CONTENT_LENGTH"
    else:
        key = "HTTP_" + name.upper().replace("-", "_")
    if len(_environ_keys) < _CACHE_SIZE:
        _environ_keys[raw_name] = key
    return key


def _status_code(status: str) -> int:
    """The code of a WSGI status line (validated; cached while the cache has room).

    Raises:
        WSGIContractError: not like ``"200 OK"``.
    """
    match = _STATUS.fullmatch(status)
    if match is None:
        raise WSGIContractError(f"malformed status line {status!r}: expected like '200 OK'")
    code = int(match[1])
    if len(_status_codes) < _CACHE_SIZE:
        _status_codes[status] = code
    return code


def _response_name(name: str, header: object) -> bytes | None:
    """A response header name, validated and lower-cased (``None``: hop-by-hop, dropped).

    Raises:
        WSGIContractError: not latin-1, or not a token.
    """
    try:
        raw_name = name.encode("latin-1")
    except UnicodeEncodeError:
        raise WSGIContractError(f"header not encodable as latin-1: {header!r}") from None
    if not valid_name(raw_name):
        raise WSGIContractError(f"invalid header name {name!r}")
    lower = raw_name.lower()
    result = None if lower in HOP_BY_HOP else lower
    if len(_response_names) < _CACHE_SIZE:
        _response_names[name] = result
    return result


def response_start(status: object, headers: object) -> tuple[int, list[tuple[bytes, bytes]]]:
    """Validate a WSGI status and header list and turn them into ASGI form.

    >>> response_start("404 Not Found", [("Content-Type", "text/plain")])
    (404, [(b'content-type', b'text/plain')])

    Raises:
        WSGIContractError: a malformed status, a header that is not a pair (a tuple, or a
            two-item list) of native strings, an invalid header name, or a value with CR, LF
            or NUL.
    """
    if not isinstance(status, str):
        raise WSGIContractError(f"status must be a str, not {type(status).__name__}")
    code = _status_codes.get(status)
    if code is None:
        code = _status_code(status)
    if not isinstance(headers, list):
        raise WSGIContractError(f"response headers must be a list, not {type(headers).__name__}")
    result: list[tuple[bytes, bytes]] = []
    for header in headers:
        # PEP 3333 asks for tuples; gunicorn, wsgiref's handler, asgiref and a2wsgi also take a
        # two-item list (["X-Colour", "Blue"]), which some apps send: so do we.
        if not (isinstance(header, tuple | list) and len(header) == 2):
            raise WSGIContractError(f"a response header must be a (name, value) pair: {header!r}")
        name, value = header
        if not isinstance(name, str) or not isinstance(value, str):
            raise WSGIContractError(f"header name and value must be str: {header!r}")
        lower = _response_names.get(name, b"")
        if lower == b"":
            lower = _response_name(name, header)
        try:
            raw_value = value.encode("latin-1")
        except UnicodeEncodeError:
            raise WSGIContractError(f"header not encodable as latin-1: {header!r}") from None
        if not valid_value(raw_value):
            # PEP 3333: "must not include any control characters, including carriage
            # returns or linefeeds, either embedded or at the end".
            raise WSGIContractError(f"control character (CR, LF, NUL, ...) in header {name!r}")
        if lower is None:
            logger.warning("dropping hop-by-hop response header %s (PEP 3333)", name)
            continue
        result.append((lower, raw_value.strip(b" \t")))
    return code, result
