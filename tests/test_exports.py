"""The public names of the package: importable from the root, listed in each module's
``__all__`` (sorted, complete), exceptions from ``exceptions.py`` only, and no ``assert``."""

from __future__ import annotations
import __future__

import ast
import types
from pathlib import Path

import pytest

import wsgi2asgi
from wsgi2asgi import exceptions


def test_public_names_are_exported_and_documented() -> None:
    for name in wsgi2asgi.__all__:
        obj = getattr(wsgi2asgi, name)
        if name != "__version__":
            assert obj.__doc__, name


def test_root_exports_are_the_module_objects() -> None:
    from wsgi2asgi.bridges import async_to_sync, sync_to_async
    from wsgi2asgi.wsgi import wsgi_to_asgi

    assert wsgi2asgi.sync_to_async is sync_to_async
    assert wsgi2asgi.async_to_sync is async_to_sync
    assert wsgi2asgi.wsgi_to_asgi is wsgi_to_asgi


def test_all_is_sorted_and_complete() -> None:
    assert wsgi2asgi.__all__ == sorted(wsgi2asgi.__all__)
    public = {
        name
        for name, value in vars(wsgi2asgi).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType | __future__._Feature)
    }
    assert public <= set(wsgi2asgi.__all__), public - set(wsgi2asgi.__all__)


def test_every_exception_is_importable_from_the_root() -> None:
    for name in exceptions.__all__:
        assert name in wsgi2asgi.__all__, name
        assert getattr(wsgi2asgi, name) is getattr(exceptions, name)


def _package_modules() -> list[tuple[str, Path]]:
    """Every module of the package: its dotted name and its file."""
    root = Path(wsgi2asgi.__file__).parent
    modules = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules.append((".".join(("wsgi2asgi", *parts)), path))
    return modules


@pytest.mark.parametrize(
    ("module", "path"), _package_modules(), ids=[m for m, _ in _package_modules()]
)
def test_exceptions_come_from_exceptions_py_only(module: str, path: Path) -> None:
    # No module re-exports an exception, and none imports one from anywhere but its home.
    errors = set(exceptions.__all__)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module not in ("wsgi2asgi.exceptions", None):
            imported = {alias.name for alias in node.names} & errors
            assert not imported, f"{module} imports {imported} from {node.module}"
        if module in ("wsgi2asgi", "wsgi2asgi.exceptions") or not isinstance(node, ast.Assign):
            continue
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            listed = set(ast.literal_eval(node.value)) & errors
            assert not listed, f"{module} re-exports {listed} in __all__"


ROOT = Path(wsgi2asgi.__file__).parent.parent
ADAPTERS = ROOT / "adapters"


@pytest.mark.parametrize(
    "path",
    [path for _, path in _package_modules()] + sorted(ADAPTERS.glob("*.py")),
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_library_code_asserts_nothing(path: Path) -> None:
    # python -O strips asserts: a check the code relies on is an if and an exception, and a
    # type mypy cannot see is given by the code's shape (STYLE.md, "Errors").
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]
    assert not lines, f"assert in {path} at lines {lines}"


#: Modules with no ``__all__``: nothing to export (the adapters package's docstring, the
#: ``python -m wsgi2asgi`` entry point) or a deprecated path forwarding every name with a warning.
NO_ALL = {"adapters", "wsgi2asgi.__main__", "wsgi2asgi.config", "wsgi2asgi.workers"}


def _all_modules() -> list[tuple[str, Path]]:
    """Every module of the package and of ``adapters/``."""
    adapters = [
        ("adapters" if path.stem == "__init__" else f"adapters.{path.stem}", path)
        for path in sorted(ADAPTERS.glob("*.py"))
    ]
    return _package_modules() + adapters


def _order(name: str) -> tuple[int, str]:
    """isort's order (ruff's RUF022): CONSTANTS, then Classes, then everything else."""
    if name.isupper():
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


def _top_level_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """The public functions and classes a module defines, and every name it binds."""
    defined: set[str] = set()
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
            if not node.name.startswith("_"):
                defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return defined, bound


def _dunder_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    return None


@pytest.mark.parametrize(("module", "path"), _all_modules(), ids=[m for m, _ in _all_modules()])
def test_every_module_lists_its_public_names_in_a_sorted_all(module: str, path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    listed = _dunder_all(tree)
    if module in NO_ALL:
        assert listed is None, f"{module} has an __all__: take it out of NO_ALL"
        return
    assert listed is not None, f"{module} has no __all__"
    assert listed == sorted(listed, key=_order), f"{module}.__all__ is not sorted"
    defined, bound = _top_level_names(tree)
    # A public function or class is exported; one only its own module uses is _private.
    assert sorted(defined - set(listed)) == [], f"missing from {module}.__all__"
    assert sorted(set(listed) - bound - {"__version__"}) == [], f"{module}.__all__ lists"
