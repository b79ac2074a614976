"""``Config``: validation and proxy trust."""

from __future__ import annotations

import importlib

import pytest

from wsgi2asgi.exceptions import ConfigError
from wsgi2asgi.server import Config


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"app": "m:a", "port": 70000},
        {"app": "m:a", "uds": "/tmp/s", "fd": 3},
        {"app": "m:a", "lifespan": "maybe"},
        {"app": "m:a", "root_path": "api"},
        {"app": "m:a", "root_path": "/api/"},
        {"app": "m:a", "mounts": (("api", "m:b"),)},
        {"app": "m:a", "timeout_keep_alive": 0},
        {"app": "m:a", "limit_concurrency": 0},
        {"app": "m:a", "forwarded_allow_ips": ("not-an-ip",)},
        {"app": "m:a", "ws_max_queue": 0},
        {"app": "m:a", "ws_ping_interval": 0},
        {"app": "m:a", "ws_ping_timeout": -1},
        {"app": "m:a", "timeout_write": 0},
        {"app": "m:a", "threads": 0},
        {"app": "m:a", "workers": 0},
        {"app": "m:a", "reload": True, "workers": 2},
        {"app": "m:a", "reload_delay": -1},
        {"app": "m:a", "ssl_ca_certs": "ca.pem"},  # without a certificate of its own
        {"app": "m:a", "ssl_keyfile": "k", "ssl_certfile": "c", "ssl_cert_reqs": 2},  # no CAs
        {"app": "m:a", "ssl_keyfile": "k", "ssl_certfile": "c", "ssl_cert_reqs": 3},
        {"host_mounts": (("a.example", "", "m:a"), ("A.example", "/", "m:b"))},
    ],
)
def test_invalid_configurations_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Config(**options)  # type: ignore[arg-type]


def test_proxy_trust() -> None:
    config = Config(app="m:a", forwarded_allow_ips=("10.0.0.0/8", "127.0.0.1"))
    assert config.trusts("10.1.2.3") and config.trusts("127.0.0.1")
    assert not config.trusts("192.168.0.1") and not config.trusts(None)
    assert Config(app="m:a", forwarded_allow_ips=("*",)).trusts("8.8.8.8")
    assert not Config(app="m:a", proxy_headers=False).trusts("127.0.0.1")


def test_old_import_path_warns_and_gives_the_same_class() -> None:
    old = importlib.import_module("wsgi2asgi.config")
    with pytest.warns(DeprecationWarning, match="wsgi2asgi.server"):
        moved = old.Config
    assert moved is Config
    with pytest.warns(DeprecationWarning), pytest.raises(AttributeError):
        old.Nothing  # noqa: B018


def test_config_is_exported_from_the_server_package() -> None:
    from wsgi2asgi.server import Server
    from wsgi2asgi.server.config import Config as Defined
    from wsgi2asgi.server.main import Server as Defined_Server

    assert Config is Defined and Server is Defined_Server
