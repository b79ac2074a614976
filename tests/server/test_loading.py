"""Finding and describing the app to serve."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from wsgiref.util import setup_testing_defaults

import httpx
import pytest

from tests.apps.interfaces import (
    ASGI2,
    CallableASGI,
    WSGIClass,
    asgi2_factory,
    asgi3_sync_function,
    asgi_app,
    wsgi_app,
)
from tests.servers import Running
from wsgi2asgi.asgi import asgi_to_wsgi
from wsgi2asgi.exceptions import ConfigError
from wsgi2asgi.fallback import Fallback
from wsgi2asgi.interface import ASGI2App
from wsgi2asgi.routing import Mount, Router
from wsgi2asgi.server.config import Config
from wsgi2asgi.server.loading import describe, import_app, load
from wsgi2asgi.wsgi import wsgi_to_asgi


@pytest.mark.parametrize("kind", ["asgi2", "asgi3", "wsgi"])
def test_each_interface_is_served(serve_one_loop: Callable[..., Running], kind: str) -> None:
    apps = {"asgi2": asgi2_factory, "asgi3": asgi3_sync_function, "wsgi": WSGIClass}
    running = serve_one_loop(apps[kind], lifespan="off")
    assert httpx.get(f"{running.url}/x", timeout=10).text == f"{kind} /x"
    assert running.stop() == 0


def test_a_non_callable_app_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not callable"):
        load(Config(app=object()))


def wsgi_get(app: Any, path: str) -> tuple[str, str]:
    environ: dict[str, Any] = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    seen: list[str] = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: seen.append(status)))
    return seen[0], body.decode()


def test_import_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="module:attribute"):
        import_app("no-colon")
    with pytest.raises(ConfigError, match="could not import"):
        import_app("surely_not_a_module:app")
    with pytest.raises(ConfigError, match="has no attribute"):
        import_app("wsgi2asgi:missing")


def test_load_wraps_wsgi_and_asgi2_and_composes_mounts() -> None:
    config = Config(
        app=asgi_app,
        mounts=(("/legacy", wsgi_app), ("/old", ASGI2)),
        threads=4,
    )
    app, described = load(config)
    assert isinstance(app, Router)
    assert described == [
        ("/legacy", "wsgi", "4 threads"),
        ("/old", "asgi2", "event loop"),
        ("/", "asgi3", "event loop"),
    ]
    assert isinstance(app.declared[1].app, ASGI2App)  # type: ignore[union-attr]


def test_describe_walks_routers_fallbacks_and_adapters() -> None:
    composite = Router(
        [
            Mount("/flask", Fallback(asgi_app, wsgi_to_asgi(wsgi_app, max_threads=8))),
            Mount("/api", Router([Mount("/v1", CallableASGI())])),
        ]
    )
    assert describe(composite) == [
        ("/flask", "asgi", "function, event loop"),
        ("/flask", "wsgi", "8 threads"),
        ("/api/v1", "asgi", "CallableASGI, event loop"),
    ]


# -- APP given as a call, and apps with the wrong signature (#14.2) -------------------------

MISTAKES = "tests.apps.mistakes"


def test_a_factory_is_called_with_literal_arguments() -> None:
    app = import_app(f"{MISTAKES}:create_app('hi', punctuation='!')")
    assert wsgi_get(app, "/") == ("200 OK", "hi!")
    assert wsgi_get(import_app(f"{MISTAKES}:create_app(*['a'], **{{'punctuation': '?'}})"), "/")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (f"{MISTAKES}:create_app(greeting)", r"literals .*: 'greeting' is not"),
        (f"{MISTAKES}:create_app(1 + 1)", r"literals .*: '1 \+ 1' is not"),
        (f"{MISTAKES}:create_app('a'", "module:attribute"),
        (f"{MISTAKES}:create_app()()", "module:attribute"),
        (f"{MISTAKES}:create_app(x=y)", r"literals .*: 'y' is not"),
        (f"{MISTAKES}:create_app('a', 'b')", r"create_app\('a', 'b'\) failed: .*positional"),
    ],
)
def test_a_factory_call_that_cannot_be_made_is_a_config_error(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        import_app(spec)


@pytest.mark.parametrize(
    ("attr", "interface", "message"),
    [
        ("no_args", "auto", r"no_args\(\) is not a WSGI app \(environ, start_response\) or an "
         r"ASGI app \(scope, receive, send\): too many positional arguments"),
        ("four", "auto", r"four\(environ, start_response, extra, more\) is not .*: missing a "
         r"required argument: 'extra'"),
        ("lonely", "auto", r"lonely\(scope\) is not a WSGI app"),
        ("NoScope", "auto", r"NoScope\(\) is not a WSGI app"),
        ("create_app", "wsgi", r"create_app\(greeting, \*, punctuation\) is not a WSGI app "
         r"\(environ, start_response\): too many positional arguments"),
    ],
)  # fmt: skip
def test_an_app_with_the_wrong_signature_is_refused(
    attr: str, interface: Any, message: str
) -> None:
    spec = f"{MISTAKES}:{attr}"
    with pytest.raises(ConfigError, match=f"cannot serve '{spec}': {message}"):
        load(Config(app=spec, interface=interface))
    if interface == "auto":  # mounts are always detected
        with pytest.raises(ConfigError, match=f"cannot serve '{spec}': {message}"):
            load(Config(mounts=[("/m", spec)]))


def test_asgi_to_wsgi_refuses_the_same_signatures() -> None:
    from tests.apps.mistakes import four, lonely

    with pytest.raises(TypeError, match=r"lonely\(scope\) is not a WSGI app"):
        asgi_to_wsgi(lonely)
    with pytest.raises(TypeError, match=r"missing a required argument: 'extra'"):
        asgi_to_wsgi(four)
