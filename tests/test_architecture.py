"""``docs/architecture.md`` is true: its files exist, its layers hold, imports go one way."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "wsgi2asgi"
DOC = ROOT / "docs" / "architecture.md"
LAYERS = ("bridges", "adapters", "composition", "server", "tools")
CORE = LAYERS[:3]


def layer_table() -> dict[str, list[str]]:
    """``{layer: [module file relative to wsgi2asgi/]}``, read from the doc's Layers table."""
    section = DOC.read_text().split("## Layers", 1)[1].split("\n## ", 1)[0]
    table: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in LAYERS:
            table[cells[0]] = re.findall(r"`([^`]+\.py)`", cells[1])
    return table


def layer_of() -> dict[str, str]:
    return {path: layer for layer, paths in layer_table().items() for path in paths}


def module_name(path: str) -> str:
    """``server/tcp.py`` -> ``wsgi2asgi.server.tcp``; ``__init__.py`` -> ``wsgi2asgi``."""
    parts = ["wsgi2asgi", *path.removesuffix(".py").split("/")]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (inside functions and TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and not node.level:
            found.add(node.module)
            # ``from wsgi2asgi import server`` imports a module, not only a name.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def package_modules() -> dict[str, str]:
    """``{module name: file relative to wsgi2asgi/}`` for every module of the package."""
    files = sorted(PACKAGE.rglob("*.py"))
    relative = [file.relative_to(PACKAGE).as_posix() for file in files]
    return {module_name(path): path for path in relative}


def test_the_layers_are_the_five_of_the_doc_in_order() -> None:
    assert tuple(layer_table()) == LAYERS


def test_every_file_the_doc_names_exists() -> None:
    names = set(re.findall(r"`([\w/.]+\.(?:py|md))`", DOC.read_text()))
    assert names
    missing = [n for n in names if not (ROOT / n).exists() and not (PACKAGE / n).exists()]
    assert missing == []


def test_every_module_of_the_package_is_in_one_layer() -> None:
    placed = [path for paths in layer_table().values() for path in paths]
    assert sorted(placed) == sorted(set(placed)), "a file in two layers"
    assert sorted(package_modules().values()) == sorted(placed)


def import_violations() -> list[str]:
    """Imports of a module of a later layer than the importer's (``mod -> imported``)."""
    rank = {layer: index for index, layer in enumerate(LAYERS)}
    layers = layer_of()
    modules = package_modules()
    problems: list[str] = []
    for name, path in modules.items():
        mine = rank[layers[path]]
        for imported in imported_modules(PACKAGE / path):
            target = modules.get(imported)
            if target is not None and rank[layers[target]] > mine:
                problems.append(f"{name} ({layers[path]}) -> {imported} ({layers[target]})")
    return sorted(problems)


def test_imports_go_from_later_layers_to_earlier_ones() -> None:
    assert import_violations() == []


@pytest.mark.parametrize("layer", CORE)
def test_the_core_imports_neither_the_server_nor_the_framework_adapters(layer: str) -> None:
    for path in layer_table()[layer]:
        for imported in imported_modules(PACKAGE / path):
            assert not imported.startswith(("wsgi2asgi.server", "adapters")), (path, imported)


def test_nothing_in_the_package_imports_the_framework_adapters() -> None:
    for path in package_modules().values():
        imported = imported_modules(PACKAGE / path)
        assert not {m for m in imported if m == "adapters" or m.startswith("adapters.")}, path


def test_environ_does_not_import_the_composition_layer() -> None:
    imported = imported_modules(PACKAGE / "environ.py")
    assert not imported & {"wsgi2asgi.routing", "wsgi2asgi.prefixes", "wsgi2asgi.fanout"}


def test_routing_defines_only_routing() -> None:
    # The lifespan fan-out lives in fanout.py, Host-header parsing in headers.py.
    tree = ast.parse((PACKAGE / "routing.py").read_text())
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    defined |= {node.name for node in tree.body if isinstance(node, ast.AsyncFunctionDef)}
    assert not defined & {"run_lifespans", "lifespan_leaves", "split_host_port", "request_host"}


def test_exchange_names_one_thing() -> None:
    # exchange.Exchange is one request of asgi_to_wsgi; wsgi_to_asgi's is a _WSGICall.
    named = [
        (path, node.name)
        for path in package_modules().values()
        for node in ast.walk(ast.parse((PACKAGE / path).read_text()))
        if isinstance(node, ast.ClassDef) and "exchange" in node.name.lower()
    ]
    assert named == [("exchange.py", "Exchange")]


def test_one_class_runs_an_event_loop_on_a_thread() -> None:
    # runners.Runner, with its time limits and logging; asgi_to_wsgi and async_to_sync use it.
    making_loops = sorted(
        path
        for path in package_modules().values()
        for node in ast.walk(ast.parse((PACKAGE / path).read_text()))
        if isinstance(node, ast.Attribute) and node.attr == "new_event_loop"
    )
    assert making_loops == ["runners.py"]


def top_level_names(path: str) -> set[str]:
    names: set[str] = set()
    for node in ast.parse((PACKAGE / path).read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name.lstrip("_") for name in names}


@pytest.mark.parametrize(
    "name",
    ["ExcInfo", "DEFAULT_PORTS", "error_response", "plain", "app_name", "name"],
)
def test_a_helper_is_defined_in_one_module(name: str) -> None:
    # Each had two or more copies (#15); the one left lives in one module.
    defining = [p for p in package_modules().values() if name in top_level_names(p)]
    assert len(defining) <= 1, defining


def test_docs_sections_named_in_docstrings_exist() -> None:
    # A rule lives in one place: a module that leaves it to a docs page names the section.
    pattern = re.compile(r'``docs/([\w-]+\.md)`` \("([^"]+)"\)')
    cited = [
        (page, heading)
        for path in package_modules().values()
        for page, heading in pattern.findall((PACKAGE / path).read_text())
    ]
    assert cited
    for page, heading in cited:
        headings = re.findall(r"^#+ (.+)$", (ROOT / "docs" / page).read_text(), re.M)
        assert heading in headings, (page, heading)
