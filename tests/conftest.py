"""Hooks of the whole test suite (fixtures and hooks only: helpers live in ``tests/*.py``)."""

from __future__ import annotations

import coverage
import pytest

#: Our pytest plugin, loaded here and not by its entry point (pyproject: ``-p no:wsgi2asgi``):
#: the entry point imports the package before coverage starts, and every line run at import
#: (each ``def``, ``class`` and constant of 24 modules) would count as never run.
pytest_plugins = ["wsgi2asgi.pytest_plugin"]


def pytest_configure(config: pytest.Config) -> None:
    """The coverage gate judges the whole suite: a run of some tests measures and gates nothing.

    ``pyproject.toml`` turns coverage on for every run (``--cov``) with a floor
    (``fail_under``), so the README's ``python -m pytest`` is measured and gated. A run given
    test paths, ``-k``, ``-m``, ``--lf``, ``--deselect`` or ``--collect-only`` covers a part of
    the package only: there coverage is stopped at once (no cost, no report, no failure); with
    ``--cov`` on that run's command line it is measured and reported, and gated only if
    ``--cov-fail-under`` is given too.
    """
    options = config.option
    whole_suite = config.args_source is pytest.Config.ArgsSource.TESTPATHS and not (
        options.keyword
        or options.markexpr
        or options.collectonly
        or getattr(options, "lf", False)
        or getattr(options, "deselect", None)
    )
    if whole_suite:
        return
    asked = [arg for arg in map(str, config.invocation_params.args) if arg.startswith("--cov")]
    # pytest-cov reads the options it was started with, at session start and at the end.
    started_with = config.known_args_namespace
    if asked:
        if not any(arg.startswith("--cov-fail-under") for arg in asked):
            started_with.cov_fail_under = 0
        return
    started_with.no_cov = True
    measuring = coverage.Coverage.current()
    if measuring is not None:
        measuring.stop()
