"""Django's own test suite, with its thread crossings on asgiref's bridges and on ours.

``django_app(bridges="wsgi2asgi")`` points the ``sync_to_async`` / ``async_to_sync`` /
``ThreadSensitiveContext`` names Django's modules import from ``asgiref.sync`` at wsgi2asgi's
bridges, and loads ``MiddlewareMixin`` middleware as sync-only in async handlers
(:mod:`adapters.django_bridges`). This script runs Django's tests for the areas that touches,
from the source distribution of the installed Django version, in two modes, and compares:

* ``asgiref``: Django as installed;
* ``wsgi2asgi``: ``use_wsgi2asgi_bridges()`` right after ``django.setup()``, and every async
  handler (``ASGIHandler``, the test client's ``AsyncClientHandler``) built under
  ``middleware_mixins_as_sync()``.

Django's test modules themselves (``django.test``) keep asgiref's bridges, as a project's own
tests would: an async test runs in asgiref's ``async_to_sync``, so the suite also checks that
our bridges hand over to asgiref's there.

Run (from the repository root)::

    python -m benchmarks.django_suite --fetch     # download and unpack the sources once (PyPI)
    python -m benchmarks.django_suite --fetch-only  # only that (the README's test command does it)
    python -m benchmarks.django_suite             # both modes, the default areas
    python -m benchmarks.django_suite --modes wsgi2asgi -- asgi handlers

The sources are kept in ``$WSGI2ASGI_DJANGO_TESTS`` if set, else in
``~/.cache/wsgi2asgi/django-<version>``.
"""

from __future__ import annotations

import argparse
import os
import re
import runpy
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("asgiref", "wsgi2asgi")
#: Django's test packages for what the opt-in touches: the handlers, middleware, requests,
#: signals, async support, the test client's async side, and database connections.
AREAS = (
    "asgi",
    "async",
    "deprecation",
    "dispatch",
    "handlers",
    "middleware",
    "middleware_exceptions",
    "requests_tests",
    "signals",
    "test_client",
    "backends",
    "db_utils",
    "transaction_hooks",
    "transactions",
)


def django_version() -> str:
    import django

    return str(django.get_version())


def source_dir() -> Path:
    """Where the unpacked sources of the installed Django version live (or will)."""
    configured = os.environ.get("WSGI2ASGI_DJANGO_TESTS")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "wsgi2asgi" / f"django-{django_version()}"


def fetch(target: Path) -> None:
    """Download Django's source distribution with pip and unpack it into ``target``."""
    version = django_version()
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
            + [f"django=={version}", "-d", download],
            check=True,
        )
        (archive,) = Path(download).glob("*.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(download, filter="data")
        target.parent.mkdir(parents=True, exist_ok=True)
        Path(download, f"django-{version}").rename(target)


def install_wsgi2asgi_bridges() -> None:
    """Inside the test process: our bridges after ``django.setup()``, fused mixins in async
    handlers."""
    import django
    from django.core.handlers.base import BaseHandler

    from adapters.django_bridges import middleware_mixins_as_sync, use_wsgi2asgi_bridges

    setup = django.setup
    load = BaseHandler.load_middleware

    def setup_then_switch(*args: object, **kwargs: object) -> None:
        setup(*args, **kwargs)  # type: ignore[arg-type]
        use_wsgi2asgi_bridges()

    def load_middleware(self: BaseHandler, is_async: bool = False) -> None:
        if not is_async:
            return load(self, is_async)
        with middleware_mixins_as_sync():
            return load(self, is_async)

    django.setup = setup_then_switch
    BaseHandler.load_middleware = load_middleware


def run_inside(mode: str, argv: list[str]) -> None:
    """The child process: Django's ``runtests.py`` (in the current directory), in ``mode``."""
    sys.path.insert(0, str(ROOT))
    if mode == "wsgi2asgi":
        install_wsgi2asgi_bridges()
    sys.argv = ["runtests.py", *argv]
    sys.path.insert(0, os.getcwd())
    runpy.run_path("runtests.py", run_name="__main__")


@dataclass
class Outcome:
    """What one mode's run of the suite reported."""

    mode: str
    ran: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)  # "FAIL: test (module.Class.test)"
    returncode: int = 0

    @property
    def passed(self) -> int:
        bad = sum(self.counts.get(k, 0) for k in ("failures", "errors", "skipped"))
        return self.ran - bad - self.counts.get("expected failures", 0)


def run_mode(mode: str, source: Path, areas: list[str]) -> Outcome:
    """Run Django's suite for ``areas`` in a child process in ``mode``; parse its summary."""
    argv = [sys.executable, "-m", "benchmarks.django_suite", "--inside", mode, "--"]
    argv += ["--parallel", "1", "--noinput", *areas]
    started = time.perf_counter()
    result = subprocess.run(
        argv,
        cwd=source / "tests",
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    outcome = parse(mode, result.stderr + result.stdout)
    outcome.seconds = time.perf_counter() - started
    outcome.returncode = result.returncode
    return outcome


def parse(mode: str, output: str) -> Outcome:
    """Read unittest's summary: ``Ran N tests``, ``OK``/``FAILED (...)`` and the failed tests."""
    outcome = Outcome(mode)
    ran = re.search(r"^Ran (\d+) tests? in", output, re.MULTILINE)
    outcome.ran = int(ran.group(1)) if ran else 0
    summary = re.search(r"^(?:OK|FAILED) \((.*)\)\s*$", output, re.MULTILINE)
    if summary:
        for part in summary.group(1).split(", "):
            name, _, value = part.partition("=")
            outcome.counts[name] = int(value)
    outcome.broken = set(re.findall(r"^((?:FAIL|ERROR): \S+ \([\w.]+\))", output, re.MULTILINE))
    return outcome


def report(outcomes: list[Outcome]) -> None:
    print(f"\n{'mode':<10}{'ran':>6}{'passed':>8}{'failed':>8}{'errors':>8}{'skipped':>9}  seconds")
    for o in outcomes:
        c = o.counts
        print(
            f"{o.mode:<10}{o.ran:>6}{o.passed:>8}{c.get('failures', 0):>8}{c.get('errors', 0):>8}"
            f"{c.get('skipped', 0):>9}  {o.seconds:.0f}"
        )
    if len(outcomes) == 2:
        only_ours = sorted(outcomes[1].broken - outcomes[0].broken)
        only_theirs = sorted(outcomes[0].broken - outcomes[1].broken)
        print(f"\nbroken only with {outcomes[1].mode}: {len(only_ours)}")
        for name in only_ours:
            print(f"  {name}")
        print(f"broken only with {outcomes[0].mode}: {len(only_theirs)}")
        for name in only_theirs:
            print(f"  {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetch", action="store_true", help="download the sources first")
    parser.add_argument(
        "--fetch-only", action="store_true", help="download the sources if missing, run nothing"
    )
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated: asgiref,wsgi2asgi"
    )
    parser.add_argument("--inside", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument(
        "areas", nargs="*", help=f"Django test packages (default: {' '.join(AREAS)})"
    )
    args = parser.parse_args(argv)
    if args.inside:
        run_inside(args.inside, args.areas)
        return 0
    source = source_dir()
    if (args.fetch or args.fetch_only) and not (source / "tests" / "runtests.py").exists():
        fetch(source)
    if args.fetch_only:
        return 0
    if not (source / "tests" / "runtests.py").exists():
        print(f"no Django test suite at {source}: run with --fetch", file=sys.stderr)
        return 2
    print(f"Django {django_version()} tests from {source}, --parallel 1")
    outcomes = []
    for mode in args.modes.split(","):
        outcomes.append(run_mode(mode, source, args.areas or list(AREAS)))
        print(f"  {mode}: {outcomes[-1].ran} tests in {outcomes[-1].seconds:.0f} s", flush=True)
    report(outcomes)
    return max(o.returncode for o in outcomes)


if __name__ == "__main__":
    sys.exit(main())
