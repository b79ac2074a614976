"""The tests mirror the package: where a test, a test app and a helper live.

* A module's tests are in ``tests/test_<module>.py`` (``wsgi2asgi/<module>.py``), or
  ``tests/<subpackage>/test_<module>.py`` (``wsgi2asgi/<subpackage>/<module>.py``;
  ``tests/adapters/`` mirrors ``adapters/``). A module with many tests may spread them over
  ``test_<module>_<topic>.py`` (``server/test_tcp_deadlines.py``). A subpackage with a folder
  of tests has no ``tests/test_<subpackage>.py`` beside it.
* Cross-cutting suites, the only test files named after no module (``CROSS_CUTTING``).
* The apps the tests serve live in ``tests/apps/``, the only folder of apps; helpers shared by
  test modules are the modules of ``HELPERS``. Nothing imports from a conftest or from a test
  module, and a conftest holds fixtures (and pytest hooks, ``pytest_plugins``) only.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

#: Test files and folders named after no module, each with what it checks across modules.
CROSS_CUTTING = {
    "test_architecture.py": "docs/architecture.md's layers hold and imports go one way",
    "test_exports.py": "every public module's __all__, exceptions and asserts",
    "test_install.py": "the built wheel, installed in a fresh environment",
    "test_layout.py": "this file: where tests, test apps and helpers live",
    "server/test_faults.py": "faults injected through the whole stack, server to app",
    "examples/": "the example project, end to end",
    "fuzz/": "coverage-guided fuzz targets, run by hand (python -m tests.fuzz)",
}

#: Folders of tests that mirror no package: the apps the tests serve, and CROSS_CUTTING's.
NOT_MIRRORS = {"apps", "examples", "fuzz"}

#: Helper modules shared by test modules (importing one of these is how tests share code).
HELPERS = {
    "loopback.py": "real servers as subprocesses, polling, WebSocket frames",
    "servers.py": "our server in-process on a thread, a raw-socket client",
    "forking.py": "running code in a forked child",
    "memory.py": "checking a loop of requests leaks no memory",
}


def source_of(folder: Path) -> Path:
    """The package a folder of tests mirrors: ``tests/server`` -> ``wsgi2asgi/server``."""
    relative = folder.relative_to(TESTS)
    if relative.parts[:1] == ("adapters",):
        return ROOT / relative
    return ROOT / "wsgi2asgi" / relative


def modules_in(package: Path) -> set[str]:
    """The names of a package's modules and subpackages."""
    names = {path.stem for path in package.glob("*.py") if path.stem != "__init__"}
    return names | {path.parent.name for path in package.glob("*/__init__.py")}


def cross_cutting(path: Path) -> bool:
    relative = path.relative_to(TESTS).as_posix()
    return relative in CROSS_CUTTING or f"{relative.split('/')[0]}/" in CROSS_CUTTING


def suites() -> list[Path]:
    return sorted(path for path in TESTS.rglob("test_*.py") if "apps" not in path.parts)


def test_each_test_file_names_a_module_that_exists() -> None:
    strays = []
    for path in suites():
        if cross_cutting(path):
            continue
        modules = modules_in(source_of(path.parent))
        name = path.stem.removeprefix("test_")
        if not any(name == module or name.startswith(f"{module}_") for module in modules):
            strays.append(path.relative_to(TESTS).as_posix())
    assert strays == [], (
        "each test file is test_<module>.py, or test_<module>_<topic>.py, of the package its "
        f"folder mirrors (or a cross-cutting suite listed in {__name__}.CROSS_CUTTING)"
    )


def test_a_subpackage_with_a_folder_of_tests_has_no_test_file_beside_it() -> None:
    folders = {path.name for path in TESTS.iterdir() if path.is_dir()} - NOT_MIRRORS
    beside = [f"test_{name}.py" for name in folders if (TESTS / f"test_{name}.py").exists()]
    assert beside == []


def test_each_folder_of_tests_mirrors_a_package_or_is_listed() -> None:
    folders = [path.parent for path in TESTS.rglob("__init__.py") if path.parent != TESTS]
    top = {folder.relative_to(TESTS).parts[0] for folder in folders}
    mirrors = top - NOT_MIRRORS
    assert [name for name in sorted(mirrors) if not source_of(TESTS / name).is_dir()] == []
    # Test apps are in one folder: no other folder of apps anywhere in the tests.
    assert [f for f in folders if f.name.startswith("apps") and f != TESTS / "apps"] == []


def test_the_cross_cutting_suites_and_helpers_listed_exist() -> None:
    assert [name for name in CROSS_CUTTING if not (TESTS / name).exists()] == []
    assert [name for name in HELPERS if not (TESTS / name).is_file()] == []


def test_modules_beside_the_tests_are_the_listed_helpers() -> None:
    others = []
    for path in TESTS.rglob("*.py"):
        relative = path.relative_to(TESTS)
        if relative.parts[0] in NOT_MIRRORS or path.name in ("__init__.py", "conftest.py"):
            continue
        if not path.name.startswith("test_") and relative.as_posix() not in HELPERS:
            others.append(relative.as_posix())
    assert others == [], f"a helper shared by tests is listed in {__name__}.HELPERS"


def resolve(module: str) -> Path | None:
    """The file of a module under ``tests/``, if that is what ``module`` names."""
    parts = module.split(".")
    if parts[0] != "tests":
        return None
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_test_files(path: Path) -> list[str]:
    """The test modules and conftests ``path`` imports (absolute or relative, at any depth)."""
    package = ".".join(path.relative_to(ROOT).parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        for name in names:
            file = resolve(name)
            if file is not None and (file.name.startswith("test_") or file.name == "conftest.py"):
                found.append(name)
    return found


def test_nothing_imports_from_a_conftest_or_a_test_module() -> None:
    sources = [*TESTS.rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    imports = {
        path.relative_to(ROOT).as_posix(): names
        for path in sorted(sources)
        if (names := imported_test_files(path))
    }
    assert imports == {}, "shared code lives in tests/apps/ or a helper module (HELPERS)"


def is_fixture(decorator: ast.expr) -> bool:
    """``@pytest.fixture`` or ``@pytest.fixture(...)``."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Attribute) and target.attr == "fixture"


def test_conftest_files_hold_fixtures_and_hooks_only() -> None:
    misplaced = []
    for path in sorted(TESTS.rglob("conftest.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                continue
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue  # the docstring
            if isinstance(node, ast.Assign) and [
                getattr(target, "id", None) for target in node.targets
            ] == ["pytest_plugins"]:
                continue
            if isinstance(node, ast.FunctionDef) and (
                node.name.startswith("pytest_") or any(map(is_fixture, node.decorator_list))
            ):
                continue
            name = getattr(node, "name", type(node).__name__)
            misplaced.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert misplaced == [], "helpers go to a helper module (HELPERS), apps to tests/apps/"
