"""``wsgi2asgi.inventory``: routes of Flask, Django, Starlette and our routers, and the CLI."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.apps import flask_site, odd_site, starlette_site, tree
from wsgi2asgi.cli import main as cli_main
from wsgi2asgi.inventory import RouteInfo, collect_routes, format_table, summarize

ROOT = Path(__file__).resolve().parent.parent


def by_path(routes: list[RouteInfo]) -> dict[str, RouteInfo]:
    return {route.path: route for route in routes}


def test_collect_routes_flask_views_blueprints_and_class_views() -> None:
    routes = by_path(collect_routes(flask_site.create_app(), prefix="/legacy"))

    assert routes["/legacy/"] == RouteInfo("/legacy/", ("GET",), "flask", "index", False)
    assert routes["/legacy/report"].methods == ("GET", "POST")
    assert routes["/legacy/report"].is_async  # seen through functools.wraps
    assert routes["/legacy/users/<int:id>"].endpoint == "users.show"
    assert not routes["/legacy/users/<int:id>"].is_async
    item = routes["/legacy/items/<int:id>"]
    assert (item.methods, item.is_async) == (("DELETE", "GET"), True)


def test_collect_routes_implicit_methods_kept_on_request() -> None:
    routes = by_path(collect_routes(flask_site.create_app(), implicit_methods=True))

    assert routes["/"].methods == ("GET", "HEAD", "OPTIONS")


def test_collect_routes_starlette_routes_endpoints_websockets_and_mounts() -> None:
    routes = by_path(collect_routes(starlette_site.app))

    assert routes["/"] == RouteInfo("/", ("GET",), "starlette", "home", True)
    assert routes["/legacy"].methods == ("GET", "PUT")
    assert not routes["/legacy"].is_async
    assert routes["/things"] == RouteInfo("/things", ("GET", "POST"), "starlette", "things", True)
    assert routes["/ws"].kind == "websocket"
    assert routes["/v1/status"].endpoint == "status"
    assert routes["/inner/deep"].endpoint == "deep"


def test_collect_routes_composite_tree_adds_mount_prefixes() -> None:
    routes = collect_routes(tree.create_app())
    paths = [route.path for route in routes]

    assert "/legacy/users/<int:id>" in paths
    assert "/api/things" in paths
    opaque = by_path(routes)["/api/*"]  # the fallback: a bare ASGI function
    assert (opaque.framework, opaque.kind, opaque.is_async) == ("asgi", "mount", True)
    assert opaque.endpoint == "tests.apps.tree.raw"


def test_collect_routes_unknown_wsgi_app_is_one_opaque_row() -> None:
    from wsgi2asgi.routing import Mount, Router
    from wsgi2asgi.wsgi import wsgi_to_asgi

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b""]

    routes = collect_routes(Router([Mount("/old", wsgi_to_asgi(wsgi_app))]))

    assert [(r.path, r.framework, r.kind, r.is_async) for r in routes] == [
        ("/old/*", "wsgi", "mount", False)
    ]


def test_summarize_counts_frameworks_and_modes() -> None:
    summary = summarize(collect_routes(tree.create_app()))

    assert summary["total"] == summary["sync"] + summary["async"]
    assert summary["frameworks"]["flask"] == {"sync": 2, "async": 2}
    assert set(summary["frameworks"]) == {"flask", "starlette", "asgi"}


def routes(*args: str) -> int:
    """``wsgi2asgi routes ARGS`` in this process; its exit status."""
    return cli_main(["routes", *args])


def test_main_prints_aligned_table_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert routes("tests.apps.tree:app") == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["PATH", "METHODS", "FRAMEWORK", "ENDPOINT", "MODE"]
    row = next(line for line in lines if line.startswith("/legacy/report "))
    assert row.split() == ["/legacy/report", "GET,POST", "flask", "report", "async"]
    assert lines[0].index("METHODS") == row.index("GET,POST")
    opaque = next(line for line in lines if line.startswith("/api/*"))
    assert opaque.split() == [
        "/api/*",
        "-",
        "asgi",
        "tests.apps.tree.raw",
        "async",
        "(fallback)",  # behind Fallback(starlette_site.app, raw)
    ]
    assert lines[-1].startswith(
        "11 routes: asgi 1 (0 sync, 1 async), flask 4 (2 sync, 2 async), starlette 6"
    )


def test_main_json_document_with_factory(capsys: pytest.CaptureFixture[str]) -> None:
    assert routes("tests.apps.tree:create_app()", "--json") == 0

    document = json.loads(capsys.readouterr().out)
    assert document["summary"]["total"] == len(document["routes"]) == 11
    assert {
        "path": "/api/ws",
        "methods": [],
        "framework": "starlette",
        "endpoint": "chat",
        "is_async": True,
        "kind": "websocket",
        "role": "primary",
    } in document["routes"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tests.apps.missing:app", "could not import module 'tests.apps.missing'"),
        ("tests.apps.tree:nope", "has no attribute 'nope'"),
        ("tests.apps.broken:app", "RuntimeError: database URL is not set"),
        ("no_colon", "module:attribute"),
    ],
)
def test_main_unimportable_app_exits_2_with_message(
    spec: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert routes(spec) == 2

    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "wsgi2asgi",
            "routes",
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_collect_routes_django_includes_namespaces_regex_and_class_views() -> None:
    # Django's settings are process-global: this project is inspected in its own process.
    result = run_cli("tests.apps.django_site:application()", "--json")

    assert result.returncode == 0, result.stderr
    rows = {r["path"]: r for r in json.loads(result.stdout)["routes"]}
    assert rows["/"]["endpoint"] == "index"
    assert rows["/"]["methods"] == ["*"]
    assert rows["/blog/feed/"]["endpoint"] == "blog:feed"
    assert rows["/blog/feed/"]["is_async"] is True
    assert rows["/blog/^(?P<year>[0-9]{4})/$"]["endpoint"] == "blog:article"
    comments = rows["/blog/comments/"]
    assert (comments["methods"], comments["is_async"]) == (["GET", "POST"], True)
    assert rows["/raw/"]["endpoint"] == "tests.apps.django_site.index"
    assert {r["framework"] for r in rows.values()} == {"django"}


def test_cli_module_routes_subcommand() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "wsgi2asgi", "routes", "tests.apps.tree:app", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["total"] == 11


def test_collect_routes_django_through_both_adapters_under_mounts() -> None:
    result = run_cli("tests.apps.django_site:mounted()", "--json")

    assert result.returncode == 0, result.stderr
    rows = {r["path"]: r for r in json.loads(result.stdout)["routes"]}
    for prefix in ("/site", "/old"):  # Django's ASGIHandler, and its WSGIHandler adapted
        assert rows[f"{prefix}/blog/feed/"]["endpoint"] == "blog:feed"
        assert rows[f"{prefix}/blog/comments/"]["methods"] == ["GET", "POST"]
    assert len(rows) == 10


# -- apps it cannot look inside (#12.20) ---------------------------------------------------------


def test_collect_routes_bottle_and_odd_apps_each_get_a_row() -> None:
    routes = by_path(collect_routes(odd_site.create_app()))

    bottle_row = routes["/pypi/*"]  # not "app tree deeper than 64 levels"
    assert (bottle_row.framework, bottle_row.kind, bottle_row.endpoint) == (
        "wsgi",
        "mount",
        "bottle.Bottle",
    )
    assert routes["/legacy/users/<int:id>"].framework == "flask"
    assert routes["/empty-starlette/*"].framework == "starlette"  # no routes, still its row
    assert routes["/empty-flask/*"].framework == "flask"
    assert routes["/loop/*"].endpoint == "tests.apps.odd_site.SelfWrapping"


def test_collect_routes_an_app_that_raises_becomes_one_opaque_row(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="wsgi2asgi.inventory"):
        routes = by_path(collect_routes(odd_site.create_app()))

    broken = routes["/broken/*"]
    assert (broken.framework, broken.kind) == ("asgi", "mount")
    assert "/api/things" in routes  # the listing went on past it
    assert [r.getMessage() for r in caplog.records] == [
        "wsgi2asgi routes: /broken: could not list tests.apps.odd_site.BrokenTable"
        " (RuntimeError: route table needs the database); shown as /broken/*"
    ]


def test_collect_routes_marks_the_routes_behind_a_fallback() -> None:
    api = [r for r in collect_routes(odd_site.create_app()) if r.path.startswith("/api/")]

    assert {(r.path, r.role) for r in api} == {
        ("/api/", "primary"),
        ("/api/legacy", "primary"),
        ("/api/things", "primary"),
        ("/api/ws", "primary"),
        ("/api/v1/status", "primary"),
        ("/api/inner/deep", "primary"),
        ("/api/*", "fallback"),
    }
    assert by_path(collect_routes(odd_site.create_app()))["/legacy/"].role == ""


def test_collect_routes_nested_fallbacks_keep_what_answers_last() -> None:
    from wsgi2asgi.fallback import Fallback

    inner = Fallback(starlette_site.app, odd_site.SelfWrapping())
    rows = collect_routes(Fallback(inner, odd_site.BrokenTable()))

    roles = {(r.endpoint.rsplit(".", 1)[-1], r.role) for r in rows}
    assert ("home", "primary") in roles
    assert ("SelfWrapping", "fallback") in roles
    assert ("BrokenTable", "fallback") in roles


def split_site() -> Any:
    """``/shop``: a Split between a Starlette app (migrated) and a Flask app (legacy)."""
    from wsgi2asgi.routing import Mount, Router
    from wsgi2asgi.split import Split
    from wsgi2asgi.wsgi import wsgi_to_asgi

    split = Split(starlette_site.app, wsgi_to_asgi(flask_site.create_app()), percent=5)
    return Router([Mount("/shop", split)])


def test_collect_routes_walks_both_arms_of_a_split() -> None:
    rows = collect_routes(split_site())

    assert {(r.path, r.framework, r.role) for r in rows if r.endpoint in ("home", "index")} == {
        ("/shop/", "starlette", "migrated"),
        ("/shop/", "flask", "legacy"),
    }
    assert {r.role for r in rows if r.framework == "starlette"} == {"migrated"}
    assert {r.role for r in rows if r.framework == "flask"} == {"legacy"}
    assert "/shop/*" not in by_path(rows)  # no longer one opaque row
    table = format_table(rows).splitlines()
    assert any(line.startswith("/shop/users/<int:id> ") for line in table)
    assert any(line.endswith("sync (legacy)") for line in table)
    assert any(line.endswith("async (migrated)") for line in table)


def test_collect_routes_a_split_inside_and_around_fallbacks() -> None:
    from wsgi2asgi.fallback import Fallback
    from wsgi2asgi.split import Split

    split = Split(Fallback(starlette_site.app, odd_site.SelfWrapping()), odd_site.BrokenTable())
    roles = {(r.endpoint.rsplit(".", 1)[-1], r.role) for r in collect_routes(split)}
    assert {("home", "primary"), ("SelfWrapping", "fallback"), ("BrokenTable", "legacy")} <= roles

    behind = Fallback(starlette_site.app, Split(odd_site.SelfWrapping(), odd_site.BrokenTable()))
    roles = {(r.endpoint.rsplit(".", 1)[-1], r.role) for r in collect_routes(behind)}
    assert {("home", "primary"), ("SelfWrapping", "fallback"), ("BrokenTable", "fallback")} <= roles


def test_collect_routes_refuses_what_is_not_an_app() -> None:
    with pytest.raises(TypeError, match="not an app"):
        collect_routes({"routes": []})


def test_cli_lists_a_composite_with_a_bottle_app_and_one_line_per_failure() -> None:
    result = run_cli("tests.apps.odd_site:app")

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "wsgi2asgi routes: /broken: could not list tests.apps.odd_site.BrokenTable"
        " (RuntimeError: route table needs the database); shown as /broken/*"
    ]
    lines = result.stdout.splitlines()
    assert next(line for line in lines if line.startswith("/pypi/*")).split() == [
        "/pypi/*",
        "-",
        "wsgi",
        "bottle.Bottle",
        "sync",
    ]
    assert next(line for line in lines if line.startswith("/api/* ")).split()[-2:] == [
        "sync",
        "(fallback)",
    ]


def test_cli_a_non_callable_app_is_an_error_not_one_route() -> None:
    result = run_cli("tests.apps.odd_site:not_an_app")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "wsgi2asgi routes: error: 'tests.apps.odd_site:not_an_app' is not an app:"
        " a dict is not callable\n"
    )
