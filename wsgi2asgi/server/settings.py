"""How a server setting is set from outside: one definition, read by every source.

Rules this module keeps:

* A setting is a field of :class:`~wsgi2asgi.server.config.Config` declared with
  :func:`setting`: its default, its help text, and how text becomes its value (``parse``).
  Everything else is derived from the field's name, never written twice: the flag
  (``threads`` → ``--threads``; a repeatable setting is plural, its flag singular:
  ``mounts`` → ``--mount``), the environment variable (``WSGI2ASGI_THREADS``), the help line
  with its default, and the row of the flags table in ``docs/server.md``.
* A flag, an environment variable and a config file's string go through the same ``parse``,
  so each value means the same wherever it is written.

Example::

    @dataclasses.dataclass(frozen=True)
    class Config:
        port: int = setting(8000, "the TCP port to listen on", parse=integer, metavar="N")

    [(s.flag, s.env, s.help_text) for s in settings_of(Config)]
    # [('--port', 'WSGI2ASGI_PORT', 'the TCP port to listen on (default: 8000)')]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from wsgi2asgi.exceptions import ConfigError
from wsgi2asgi.headers import valid_name, valid_value
from wsgi2asgi.prefixes import mount_prefix

__all__ = [
    "ENV_PREFIX",
    "Setting",
    "boolean",
    "comma_list",
    "flags_table",
    "header",
    "host_mount",
    "integer",
    "mount",
    "number",
    "number_or_off",
    "optional_integer",
    "setting",
    "settings_of",
]

#: Every setting's environment variable is this plus its flag in capitals (``WSGI2ASGI_PORT``).
ENV_PREFIX = "WSGI2ASGI_"


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting as the outside sees it; ``name`` and ``default`` come from its field.

    Args:
        help: one line saying what it does (the default is added by :attr:`help_text`).
        parse: text (a flag's, an environment variable's) to value; raises ``ValueError``.
        metavar: the placeholder in ``--help`` (``N``, ``S``, ``PATH``).
        choices: the only texts accepted.
        unit: shown after the default (``"s"``: ``20 s``).
        shown_default: the default as the docs say it, when the value reads badly.
        doc: more words for the docs table only (links, "see below").
        repeat: the flag may be given many times; the field is a tuple of parsed values.
        joiner: a config file may give a repeatable setting as a table; each key and value
            become one text joined by this (``{"/api" = "m:app"}`` → ``"/api=m:app"``).
        positional: an argument, not a flag (``APP``).
        gunicorn: the gunicorn setting that sets it under the gunicorn worker.
        hidden: used between our own processes, left out of ``--help`` and the docs.
    """

    help: str
    parse: Callable[[str], Any] = str
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    shown_default: str = ""
    doc: str = ""
    repeat: bool = False
    joiner: str = "="
    positional: bool = False
    gunicorn: str = ""
    hidden: bool = False
    name: str = ""
    default: Any = None

    @property
    def _stem(self) -> str:
        return self.name.removesuffix("s") if self.repeat else self.name

    @property
    def flag(self) -> str:
        """``--max-body-size`` for ``max_body_size``; singular when repeated: ``--mount``."""
        return "--" + self._stem.replace("_", "-")

    @property
    def env(self) -> str:
        """``WSGI2ASGI_MAX_BODY_SIZE`` for ``--max-body-size`` (``WSGI2ASGI_APP`` for APP)."""
        return ENV_PREFIX + self._stem.upper()

    @property
    def switch(self) -> bool:
        """An on/off setting: ``--access-log`` / ``--no-access-log`` (a ``boolean`` one may
        default to ``None``, neither: ``--use-colors`` is then decided by the terminal)."""
        return isinstance(self.default, bool) or self.parse is boolean

    @property
    def numeric(self) -> bool:
        """Whether its value is a number (a config file must give a number, not a string)."""
        return self.parse in _NUMERIC

    @property
    def placeholder(self) -> str:
        """What follows the flag in ``--help``: the metavar, or the choices (``{on,off}``)."""
        if self.metavar:
            return self.metavar
        return "{" + ",".join(self.choices) + "}" if self.choices else self.name.upper()

    @property
    def default_text(self) -> str:
        """The default as ``--help`` and the docs show it."""
        if self.shown_default:
            return self.shown_default
        value = self.default
        if isinstance(value, bool):
            return "on" if value else "off"
        if value is None or value == ():
            return "none"
        if isinstance(value, tuple):
            return ", ".join(str(item) for item in value)
        if value == "":
            return '""'
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return f"{value} {self.unit}" if self.unit else str(value)

    def value(self, text: str) -> Any:
        """The value ``text`` means, as a flag, an environment variable or a file gives it.

        Raises:
            ValueError: not one of the ``choices``, or ``parse`` refused it.
            ConfigError: ``parse`` refused it (a malformed mount or header).
        """
        if self.choices and text not in self.choices:
            raise ValueError(f"{text!r} is not one of {', '.join(self.choices)}")
        return boolean(text) if self.switch else self.parse(text)

    @property
    def help_text(self) -> str:
        """The help line with its default: ``worker threads per WSGI app (default: 32)``."""
        return f"{self.help} (default: {self.default_text})"


def setting(default: Any, help: str, **options: Any) -> Any:
    """Declare a dataclass field as a setting; ``options`` are :class:`Setting`'s.

    Returns a ``dataclasses.field`` (typed ``Any`` so the field keeps its own annotation).
    """
    return dataclasses.field(default=default, metadata={"setting": Setting(help, **options)})


def settings_of(cls: type[Any]) -> tuple[Setting, ...]:
    """The settings of a dataclass declared with :func:`setting`, in field order."""
    found = []
    for field in dataclasses.fields(cls):
        described = field.metadata.get("setting")
        if isinstance(described, Setting):
            found.append(dataclasses.replace(described, name=field.name, default=field.default))
    return tuple(found)


# -- parsers: text to value; a ValueError's message is shown to the user -----------------------


def integer(text: str) -> int:
    """A whole number: ``"8000"`` → ``8000``."""
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def optional_integer(text: str) -> int | None:
    """A whole number, or ``none``/empty for no limit."""
    return None if text.strip().lower() in ("", "none") else integer(text)


def number(text: str) -> float:
    """A number: ``"2.5"`` → ``2.5``."""
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def number_or_off(text: str) -> float | None:
    """A number, where ``0`` (or ``none``) turns the feature off: ``"0"`` → ``None``."""
    if text.strip().lower() in ("", "none"):
        return None
    return number(text) or None


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def boolean(text: str) -> bool:
    """``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off`` (any case)."""
    lowered = text.strip().lower()
    if lowered in _TRUE or lowered in _FALSE:
        return lowered in _TRUE
    raise ValueError(f"{text!r} is not one of {'/'.join(_TRUE)} or {'/'.join(_FALSE)}")


def comma_list(text: str) -> tuple[str, ...]:
    """``"10.0.0.1, 10.0.0.2"`` → ``("10.0.0.1", "10.0.0.2")``."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def mount(text: str) -> tuple[str, str]:
    """``PREFIX=APP``; the prefix is checked and normalised as ``Mount`` does.

    >>> mount("/legacy/=legacy.wsgi:app"), mount("/=site:app")
    (('/legacy', 'legacy.wsgi:app'), ('', 'site:app'))

    Raises:
        ConfigError: no ``=`` or no APP, an empty PREFIX (the root is ``/``), or a prefix
            ``Mount`` refuses.
    """
    prefix, sep, app = text.partition("=")
    if not sep or not app:
        raise ConfigError(f"--mount wants PREFIX=module:attr, not {text!r}")
    if not prefix:
        raise ConfigError(f"--mount {text!r}: empty PREFIX (to mount at the root: '/={app}')")
    try:
        return mount_prefix(prefix), app
    except ValueError as exc:
        raise ConfigError(f"--mount {text!r}: {exc}") from None


def host_mount(text: str) -> tuple[str, str, str]:
    """``HOST=PREFIX=APP``: mount APP at PREFIX for requests to HOST (a ``Host`` pattern).

    >>> host_mount("api.example.com=/=api:app")
    ('api.example.com', '', 'api:app')

    Raises:
        ConfigError: no HOST, or a PREFIX=APP that ``--mount`` would refuse.
    """
    host, sep, rest = text.partition("=")
    if not sep or not host.strip() or host.startswith("/"):
        raise ConfigError(f"--host-mount wants HOST=PREFIX=module:attr, not {text!r}")
    prefix, app = mount(rest)
    return host.strip(), prefix, app


def header(text: str) -> tuple[str, str]:
    """``NAME:VALUE``, a valid header field (RFC 9110 §5): ``"X-Frame-Options: DENY"``.

    Raises:
        ConfigError: no ``:``, a name that is not a token, or a control character in the value.
    """
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not valid_name(name.encode("latin-1", "replace")):
        raise ConfigError(f"--header wants NAME:VALUE, not {text!r}")
    try:
        encoded = value.encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigError(f"--header {name}: the value is not Latin-1 text") from None
    if not valid_value(encoded):
        raise ConfigError(f"--header {name}: the value holds a control character")
    return name, value


_NUMERIC = frozenset({integer, optional_integer, number, number_or_off})


# -- the docs table ----------------------------------------------------------------------------


def flags_table(settings: Iterable[Setting]) -> str:
    """The Markdown table of ``settings`` that ``docs/server.md`` holds (hidden ones left out).

    Example::

        print(flags_table(settings()))      # | `--port N` | `WSGI2ASGI_PORT` | 8000 | ... |
    """
    rows = ["| Flag | Environment | Default | Meaning |", "| --- | --- | --- | --- |"]
    for setting in settings:
        if setting.hidden:
            continue
        meaning = " ".join(part for part in (setting.help, setting.doc) if part)
        if setting.gunicorn:
            meaning += f"; under gunicorn: `{setting.gunicorn}`"
        cells = (_flag_cell(setting), f"`{setting.env}`", setting.default_text, meaning)
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)


def _flag_cell(setting: Setting) -> str:
    if setting.positional:
        return f"`{setting.metavar}`"
    if setting.switch:
        return f"`{setting.flag}` / `--no-{setting.flag[2:]}`"
    return f"`{setting.flag} {setting.placeholder}`"
