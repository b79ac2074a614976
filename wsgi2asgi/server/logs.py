"""The server's logs: uvicorn's loggers and lines, gunicorn's access-log atoms.

Rules this module keeps:

* Two loggers, as uvicorn has: ``wsgi2asgi.error`` (the life cycle, errors) and
  ``wsgi2asgi.access`` (one line per request and per WebSocket handshake, accepted or not).
  Every module's ``logging.getLogger(__name__)`` is under ``wsgi2asgi`` too.
* :func:`configure_logging` (the command line's, and ``serve()``'s) configures those loggers
  and never the root logger: an app's own logging prints each of its lines once. (It used to
  call ``logging.basicConfig``: Django's ``django`` logger then printed through its own
  console handler and again through the root's handler.) Both loggers stop there
  (``propagate`` off), as uvicorn's do.
* ``--log-config FILE`` is read as uvicorn reads it: ``.json``, ``.yaml``/``.yml`` (PyYAML,
  when installed) for :func:`logging.config.dictConfig`, anything else as the ini form of
  :func:`logging.config.fileConfig`. It is applied over the defaults, so it can replace them;
  ``--log-level`` then sets the wsgi2asgi loggers' level only when given.
* An access line's message is uvicorn's (``127.0.0.1:51000 - "GET / HTTP/1.1" 200``); the
  record carries gunicorn's atoms (``record.atoms``), which :class:`AccessFormatter` uses for
  ``--access-log-format`` (gunicorn's ``--access-logformat``: ``%(h)s``, ``%(r)s``,
  ``%({user-agent}i)s``, ... see :class:`Atoms`). They are computed only when a format asks.
* Colours (``--use-colors``/``--no-use-colors``; by default when the stream is a terminal)
  mark the level and, on the default access line, the status.

Example::

    configure_logging(Config(app="m:app", access_log_format='%(h)s "%(r)s" %(s)s %(b)s'))
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import logging.config
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wsgi2asgi.exceptions import ConfigError

if TYPE_CHECKING:
    from wsgi2asgi.server.config import Config
    from wsgi2asgi.server.http11 import Request
    from wsgi2asgi.typing import Scope

__all__ = [
    "DEFAULT_FORMAT",
    "AccessFormatter",
    "Atoms",
    "DefaultFormatter",
    "ForwardHandler",
    "configure_logging",
    "log_request",
    "log_websocket",
    "logging_config",
]

#: Every line: the time, the level (``INFO:    ``, padded as uvicorn's), the message.
DEFAULT_FORMAT = "%(asctime)s %(levelprefix)s %(message)s"

access_logger = logging.getLogger("wsgi2asgi.access")

_LEVEL_COLOURS = {
    logging.DEBUG: "36",  # cyan
    logging.INFO: "32",  # green
    logging.WARNING: "33",  # yellow
    logging.ERROR: "31",  # red
    logging.CRITICAL: "91",  # bright red
}


def _paint(text: str, colour: str) -> str:
    return f"\x1b[{colour}m{text}\x1b[0m"


class DefaultFormatter(logging.Formatter):
    """uvicorn's formatter: ``%(levelprefix)s`` is ``INFO:`` padded to 9 columns, coloured.

    Args:
        use_colors: colour the level; ``None``: when the stream it writes to (standard error;
            standard output for access lines) is a terminal.
    """

    _stream = "stderr"

    def __init__(
        self,
        fmt: str | None = DEFAULT_FORMAT,
        datefmt: str | None = None,
        style: Any = "%",
        use_colors: bool | None = None,
    ) -> None:
        super().__init__(fmt, datefmt, style)
        if use_colors is None:
            use_colors = getattr(sys, self._stream).isatty()
        self.use_colors = use_colors

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        name = record.levelname
        padding = " " * max(0, 8 - len(name))
        if self.use_colors:
            name = _paint(name, _LEVEL_COLOURS.get(record.levelno, "0"))
        record.__dict__["levelprefix"] = f"{name}:{padding}"
        return super().formatMessage(record)


class AccessFormatter(DefaultFormatter):
    """The access lines: uvicorn's message, or ``access_format`` filled with gunicorn's atoms.

    Example (a ``--log-config`` file's formatter)::

        "access": {"()": "wsgi2asgi.server.logs.AccessFormatter",
                   "fmt": "%(message)s", "access_format": "%(h)s %(r)s %(s)s %(B)s"}
    """

    _stream = "stdout"

    def __init__(
        self,
        fmt: str | None = DEFAULT_FORMAT,
        datefmt: str | None = None,
        style: Any = "%",
        use_colors: bool | None = None,
        access_format: str | None = None,
    ) -> None:
        super().__init__(fmt, datefmt, style, use_colors)
        self.access_format = access_format

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        atoms = getattr(record, "atoms", None)
        if isinstance(atoms, Atoms):
            if self.access_format is not None:
                record.message = self.access_format % atoms
            elif self.use_colors:
                status = atoms["s"]
                colour = {"2": "32", "3": "36", "4": "33", "5": "31"}.get(status[:1], "0")
                record.message = f'{atoms.client} - "{_paint(atoms["r"], "1")}" ' + _paint(
                    atoms.outcome, colour
                )
        return super().formatMessage(record)


class ForwardHandler(logging.Handler):
    """Hand each record to another logger (and so to its handlers): how the gunicorn worker
    writes our lines to gunicorn's ``--error-logfile`` and ``--access-logfile``.

    Args:
        target: the logger whose handlers write the lines (``gunicorn.access``).
        access_format: an access record is written as this, filled with its atoms
            (gunicorn's ``--access-logformat``); other records are handed on as they are.
    """

    def __init__(self, target: logging.Logger, access_format: str | None = None) -> None:
        super().__init__()
        self.target = target
        self.access_format = access_format

    def emit(self, record: logging.LogRecord) -> None:
        atoms = getattr(record, "atoms", None)
        if self.access_format is not None and isinstance(atoms, Atoms):
            # gunicorn's own call: access_log.info(cfg.access_log_format, safe_atoms)
            self.target.log(record.levelno, self.access_format, atoms)
        elif self.target.isEnabledFor(record.levelno):
            self.target.handle(record)


def logging_config(
    use_colors: bool | None = None, access_format: str | None = None
) -> dict[str, Any]:
    """The default configuration, for :func:`logging.config.dictConfig` (as uvicorn's
    ``LOGGING_CONFIG``): errors to standard error, access lines to standard output."""
    formatter = {"fmt": DEFAULT_FORMAT, "use_colors": use_colors}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": DefaultFormatter, **formatter},
            "access": {"()": AccessFormatter, **formatter, "access_format": access_format},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "wsgi2asgi": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "wsgi2asgi.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def configure_logging(config: Config) -> None:
    """Configure the wsgi2asgi loggers for ``config`` (never the root logger).

    Raises:
        ConfigError: ``--log-config`` cannot be read or applied, or an unknown level.
    """
    logging.config.dictConfig(logging_config(config.use_colors, config.access_log_format))
    if config.log_config is not None:
        _apply_file(config.log_config)
    level = config.log_level
    if level is None and config.log_config is None:
        level = "info"
    if level is not None:
        numeric = logging.getLevelName(level.upper())
        if not isinstance(numeric, int):
            raise ConfigError(f"unknown log level {level!r}")
        for name in ("wsgi2asgi", "wsgi2asgi.error", "wsgi2asgi.access"):
            logging.getLogger(name).setLevel(numeric)


def _apply_file(path: str) -> None:
    """Apply a ``--log-config`` file: JSON or YAML for ``dictConfig``, else ini."""
    where = f"--log-config {path}"
    if not os.path.isfile(path):
        raise ConfigError(f"{where}: no such file")
    try:
        if path.endswith(".json"):
            with open(path, encoding="utf-8") as file:
                logging.config.dictConfig(json.load(file))
        elif path.endswith((".yaml", ".yml")):
            logging.config.dictConfig(_read_yaml(path, where))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except ConfigError:
        raise
    except Exception as exc:  # json, yaml, configparser and dictConfig all have their own
        raise ConfigError(f"{where}: {type(exc).__name__}: {_one_line(exc)}") from exc


def _read_yaml(path: str, where: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigError(f"{where}: reading YAML needs PyYAML (pip install pyyaml)") from None
    with open(path, encoding="utf-8") as file:
        return yaml.safe_load(file)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# -- the lines -----------------------------------------------------------------------------


def log_request(
    scope: Scope,
    request: Request,
    status: int,
    headers: Sequence[tuple[bytes, bytes]],
    sent: int,
    began: float,
) -> None:
    """Log one HTTP request's access line (uvicorn's message, gunicorn's atoms attached).

    Args:
        headers: the response's headers; ``sent``: its body bytes; ``began``: when the
            request came (:func:`time.perf_counter`).
    """
    if not access_logger.isEnabledFor(logging.INFO):
        return
    atoms = Atoms(scope, request, status, headers, sent, began)
    access_logger.info(
        '%s - "%s" %d', atoms.client, atoms.request_line, status, extra={"atoms": atoms}
    )


def log_websocket(scope: Scope, request: Request, status: int) -> None:
    """Log a WebSocket handshake as uvicorn does: ``"WebSocket /ws" [accepted]`` (101), or
    the status it was answered with (``403`` for a close before the accept)."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    atoms = Atoms(scope, request, status, (), 0, time.perf_counter())
    access_logger.info(
        '%s - "WebSocket %s" %s', atoms.client, atoms.target, atoms.outcome, extra={"atoms": atoms}
    )


class Atoms(Mapping[str, str]):
    """gunicorn's access-log atoms for one request, each computed when a format reads it.

    ======================  =========================================================
    ``h``                   the client's address (``-`` on a Unix socket)
    ``l``, ``u``            ``-``, and the user of a Basic ``Authorization`` (else ``-``)
    ``t``                   the time, ``[01/Dec/2026:15:30:26 +0000]``
    ``r``                   the request line, ``GET /a?b=1 HTTP/1.1``
    ``m``, ``U``, ``q``     the method, the path, the query string
    ``H``, ``s``            the protocol (``HTTP/1.1``), the status
    ``B``, ``b``            the response body's bytes (``b``: ``-`` for none)
    ``f``, ``a``            the ``Referer`` and the ``User-Agent``
    ``T``, ``M``, ``D``     the time taken in seconds, milliseconds, microseconds
    ``L``                   the time taken in seconds with decimals, ``0.001234``
    ``p``                   the server process, ``<1234>``
    ``{name}i``, ``{name}o``  a request header, a response header; ``{name}e`` a variable
    ======================  =========================================================

    A missing one is ``-``, as in gunicorn. Example::

        '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"' % atoms   # gunicorn's
    """

    _NAMES = "h l u t r m U q H s B b f a T M D L p".split()

    def __init__(
        self,
        scope: Scope,
        request: Request,
        status: int,
        headers: Sequence[tuple[bytes, bytes]],
        sent: int,
        began: float,
    ) -> None:
        self.scope = scope
        self.request = request
        self.status = status
        self.response_headers = headers
        self.sent = sent
        self.took = time.perf_counter() - began

    @property
    def client(self) -> str:
        """``127.0.0.1:51000`` (uvicorn's ``client_addr``), ``-`` when unknown."""
        client: Any = self.scope.get("client")
        return f"{client[0]}:{client[1]}" if client else "-"

    @property
    def target(self) -> str:
        return self.request.target.decode("latin-1")

    @property
    def request_line(self) -> str:
        return f"{self.request.method} {self.target} HTTP/{self.request.http_version}"

    @property
    def outcome(self) -> str:
        """The status, or ``[accepted]`` for a WebSocket's 101 (uvicorn's words)."""
        return "[accepted]" if self.status == 101 else str(self.status)

    def __getitem__(self, key: str) -> str:
        if key.startswith("{") and key[-2:] in ("}i", "}o", "}e"):
            return self._lookup(key[1:-2], key[-1])
        value = self._atom(key)
        return "-" if value is None or value == "" else str(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._NAMES)

    def __len__(self) -> int:
        return len(self._NAMES)

    def _atom(self, key: str) -> object:  # noqa: C901 - one branch per gunicorn atom
        micros = int(self.took * 1_000_000)
        simple: dict[str, object] = {
            "l": "-",
            "m": self.request.method,
            "s": self.status,
            "H": f"HTTP/{self.request.http_version}",
            "B": self.sent,
            "b": self.sent or "-",
            "T": micros // 1_000_000,
            "M": micros // 1000,
            "D": micros,
            "L": f"{micros / 1_000_000:.6f}",
            "p": f"<{os.getpid()}>",
        }
        if key in simple:
            return simple[key]
        if key == "h":
            client: Any = self.scope.get("client")
            return client[0] if client else None
        if key == "u":
            return _basic_user(self._request_header("authorization"))
        if key == "t":
            return time.strftime("[%d/%b/%Y:%H:%M:%S %z]")
        if key == "r":
            return self.request_line
        if key == "U":
            return self.target.partition("?")[0]
        if key == "q":
            return self.target.partition("?")[2]
        if key == "f":
            return self._request_header("referer")
        if key == "a":
            return self._request_header("user-agent")
        return None

    def _lookup(self, name: str, where: str) -> str:
        if where == "e":
            value = os.environ.get(name)
        elif where == "i":
            value = self._request_header(name.lower())
        else:
            wanted = name.lower().encode("latin-1")
            value = next(
                (v.decode("latin-1") for k, v in self.response_headers if k.lower() == wanted),
                None,
            )
        return value or "-"

    def _request_header(self, name: str) -> str | None:
        wanted = name.encode("latin-1")
        for key, value in self.request.headers:
            if key == wanted:  # the parser gives names in lower case
                return value.decode("latin-1")
        return None


def _basic_user(authorization: str | None) -> str | None:
    """The user name of ``Authorization: Basic ...`` (RFC 7617), as gunicorn's ``%(u)s``."""
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None
