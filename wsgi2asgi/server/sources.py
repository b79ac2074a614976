"""Where settings come from besides flags: the environment, a dotenv file and a TOML file.

Rules this module keeps:

* Every setting can come from the environment as ``WSGI2ASGI_`` plus its flag in capitals
  (``--max-body-size`` → ``WSGI2ASGI_MAX_BODY_SIZE``), the way uvicorn reads ``UVICORN_*``. A
  repeatable one holds its values split as a shell would (``WSGI2ASGI_MOUNT='/a=m:a /b=m:b'``).
* A dotenv file (``--env-file``: ``NAME=value`` lines, ``#`` comments, optional ``export`` and
  quotes) is loaded into the environment, so the app sees it too; variables already set win.
* A config file is TOML: the top level of ``wsgi2asgi.toml`` (or the ``[tool.wsgi2asgi]``
  table of a ``pyproject.toml``); its keys are the ``Config`` field names (``-`` or ``_``).
  Repeatable settings take a list of the flag's texts, or a table: ``[mounts]`` maps a prefix
  to an app, ``[host_mounts."api.example.com"]`` a prefix to an app for that host,
  ``[headers]`` a name to a value.
* Every mistake is one :class:`~wsgi2asgi.exceptions.ConfigError` line that names where it is
  and the key: an unknown key, a value of the wrong type, a file that is not TOML.

Example::

    load_env_file(".env", os.environ)
    options = {**from_config_file("wsgi2asgi.toml", settings()), **from_environment(os.environ,
               settings())}
"""

from __future__ import annotations

import difflib
import os
import shlex
import tomllib
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from wsgi2asgi.exceptions import ConfigError
from wsgi2asgi.server.settings import Setting, comma_list

__all__ = [
    "from_config_file",
    "from_environment",
    "from_table",
    "load_env_file",
    "read_env_file",
]


# -- the environment -------------------------------------------------------------------------


def from_environment(environ: Mapping[str, str], settings: Iterable[Setting]) -> dict[str, Any]:
    """The settings given as ``WSGI2ASGI_*`` variables in ``environ``, parsed.

    Raises:
        ConfigError: a variable whose value its setting refuses (the message names it).
    """
    options: dict[str, Any] = {}
    for setting in settings:
        text = environ.get(setting.env)
        if text is None:
            continue
        try:
            if setting.repeat:
                options[setting.name] = tuple(setting.value(t) for t in shlex.split(text))
            else:
                options[setting.name] = setting.value(text)
        except (ValueError, ConfigError) as exc:
            raise ConfigError(f"{setting.env}: {exc}") from None
    return options


def read_env_file(path: str) -> dict[str, str]:
    """Read a dotenv file: ``NAME=value`` lines, ``#`` comments, ``export``, quotes.

    Double-quoted values understand ``\\n``, ``\\t``, ``\\"`` and ``\\\\``; single-quoted ones
    are taken as they are; an unquoted value ends at `` #``.

    Raises:
        ConfigError: the file cannot be read, or a line is not ``NAME=value``.
    """
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError as exc:
        raise ConfigError(f"--env-file {path}: {exc.strerror or exc}") from None
    found: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, value = stripped.removeprefix("export ").partition("=")
        name = name.strip()
        if not sep or not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise ConfigError(f"--env-file {path}, line {number}: not NAME=value: {line!r}")
        try:
            found[name] = _dotenv_value(value.strip())
        except ValueError as exc:
            raise ConfigError(f"--env-file {path}, line {number}: {exc}") from None
    return found


def _dotenv_value(text: str) -> str:
    """A value as written after ``=``; ``ValueError`` for an unclosed quote or trailing text."""
    quote = text[:1]
    if quote not in ("'", '"'):
        return text.split(" #", 1)[0].strip()
    out: list[str] = []
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
    position = 1
    while position < len(text) and text[position] != quote:
        char = text[position]
        if char == "\\" and quote == '"' and position + 1 < len(text):
            position += 1
            char = escapes.get(text[position], "\\" + text[position])
        out.append(char)
        position += 1
    rest = text[position + 1 :].strip()
    if position >= len(text) or (rest and not rest.startswith("#")):
        raise ValueError(f"a quoted value must end with its quote: {text}")
    return "".join(out)


def load_env_file(path: str, environ: MutableMapping[str, str]) -> None:
    """Add the variables of the dotenv file at ``path`` to ``environ``; those set already win.

    Raises:
        ConfigError: see :func:`read_env_file`.
    """
    for name, value in read_env_file(path).items():
        environ.setdefault(name, value)


# -- the config file -------------------------------------------------------------------------


def from_config_file(path: str | None, settings: Iterable[Setting]) -> dict[str, Any]:
    """The settings in the TOML file at ``path``; with ``None``, ``[tool.wsgi2asgi]`` of
    ``pyproject.toml`` in the current directory (no file, or no such table: no settings).

    Raises:
        ConfigError: no such file, not TOML, an unknown key or a value of the wrong type.
    """
    if path is None:
        if not os.path.isfile("pyproject.toml"):
            return {}
        path = "pyproject.toml"
        table = _read_toml(path).get("tool", {}).get("wsgi2asgi", {})
        return from_table(table, settings, f"{path} [tool.wsgi2asgi]")
    table = _read_toml(path)
    if os.path.basename(path) == "pyproject.toml":
        table = table.get("tool", {}).get("wsgi2asgi", {})
    return from_table(table, settings, path)


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"--config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def from_table(table: Mapping[str, Any], settings: Iterable[Setting], where: str) -> dict[str, Any]:
    """The settings in a parsed TOML ``table``; ``where`` names it in errors.

    Raises:
        ConfigError: an unknown key or a value of the wrong type, naming the key.
    """
    known = {setting.name: setting for setting in settings}
    options: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        setting = known.get(name)
        if setting is None:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")
        try:
            options[name] = _from_toml(setting, value)
        except (ValueError, ConfigError) as exc:
            raise ConfigError(f"{where}: {key}: {exc}") from None
    return options


def _from_toml(setting: Setting, value: Any) -> Any:
    """The value a TOML value means for ``setting``; ``ValueError`` says why it cannot."""
    if setting.repeat:
        return tuple(setting.value(text) for text in _texts(value, setting.joiner))
    if setting.switch:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, not {_kind(value)}")
        return value
    if setting.numeric:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, not {_kind(value)}")
        return setting.value(str(value))
    if setting.parse is comma_list and isinstance(value, list):
        value = ",".join(_strings(value))
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_kind(value)}")
    return setting.value(value)


def _texts(value: Any, joiner: str) -> list[str]:
    """A repeatable setting's texts: a list of them, or a table whose keys and values join."""
    if isinstance(value, dict):
        return list(_joined(value, joiner))
    if isinstance(value, list):
        return _strings(value)
    raise ValueError(f"must be a list or a table, not {_kind(value)}")


def _joined(table: Mapping[str, Any], joiner: str) -> Iterator[str]:
    for key, value in table.items():
        if isinstance(value, dict):
            yield from (f"{key}{joiner}{text}" for text in _joined(value, joiner))
        elif isinstance(value, str):
            yield f"{key}{joiner}{value}"
        else:
            raise ValueError(f"{key}: must be a string, not {_kind(value)}")


def _strings(items: list[Any]) -> list[str]:
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"must list strings, not {_kind(item)}")
    return items


def _kind(value: Any) -> str:
    kinds = {bool: "true/false", str: "a string", list: "a list", dict: "a table"}
    return kinds.get(type(value), "a number" if isinstance(value, int | float) else "a date")
