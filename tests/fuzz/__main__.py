"""Run one fuzz target: ``python -m tests.fuzz TARGET [libFuzzer options]``.

Targets: ``http11`` (the request parser and response framing), ``environ`` (scope → environ
→ scope), ``routing`` (mount matching). Example::

    pip install atheris
    python -m tests.fuzz http11 -max_total_time=600 -jobs=1
"""

from __future__ import annotations

import importlib
import sys

import atheris

TARGETS = ("http11", "environ", "routing")


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: python -m tests.fuzz {{{','.join(TARGETS)}}} [options]")
    name = sys.argv.pop(1)
    with atheris.instrument_imports(include=["wsgi2asgi"]):
        module = importlib.import_module(f"tests.fuzz.{name}")
    atheris.Setup(sys.argv, module.one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
