"""The gunicorn worker class: its import paths and the gunicorn settings it maps."""

from __future__ import annotations

import importlib

import pytest
from gunicorn.config import Config as GunicornConfig

from wsgi2asgi.server.config import settings
from wsgi2asgi.server.gunicorn import Worker, gunicorn_options


def test_old_import_path_warns_and_gives_the_same_worker() -> None:
    old = importlib.import_module("wsgi2asgi.workers")
    with pytest.warns(DeprecationWarning, match="wsgi2asgi.server.gunicorn"):
        moved = old.Worker
    assert moved is Worker


def test_gunicorn_settings_set_ours_through_the_definition() -> None:
    cfg = GunicornConfig()
    given = {
        "keepalive": 7,
        "graceful_timeout": 12,
        "limit_request_line": 100,
        "limit_request_fields": 20,
        "threads": 4,
        "backlog": 64,
        "forwarded_allow_ips": "10.0.0.1, 10.0.0.2",
        "keyfile": "key.pem",
        "certfile": "cert.pem",
        "ca_certs": "ca.pem",
        "cert_reqs": 2,
        "ciphers": "ECDHE+AESGCM",
        "max_requests": 50,
    }
    for name, value in given.items():
        cfg.set(name, value)
    assert gunicorn_options(cfg) == {
        "timeout_keep_alive": 7.0,
        "timeout_graceful_shutdown": 12.0,
        "max_target_size": 100,
        "max_headers": 20,
        "threads": 4,
        "backlog": 64,
        "forwarded_allow_ips": ("10.0.0.1", "10.0.0.2"),
        "ssl_keyfile": "key.pem",
        "ssl_certfile": "cert.pem",
        "ssl_ca_certs": "ca.pem",
        "ssl_cert_reqs": 2,
        "ssl_ciphers": "ECDHE+AESGCM",
        "limit_max_requests": 50,
    }
    named = {s.gunicorn for s in settings() if s.gunicorn}
    assert named == set(given)  # each names a gunicorn setting, and the test covers it
    assert named <= set(cfg.settings)


def test_gunicorn_defaults_leave_ours() -> None:
    # gunicorn's 2 s keep-alive, 4094-byte request line and 1 thread (its gthread worker's)
    # are not asked for by the user: ours stay. Its trusted proxies are taken as they are
    # (gunicorn reads them from $FORWARDED_ALLOW_IPS).
    assert gunicorn_options(GunicornConfig()) == {"forwarded_allow_ips": ("127.0.0.1", "::1")}
