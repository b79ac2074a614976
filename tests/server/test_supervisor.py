"""``wsgi2asgi.server.supervisor``: what ``--workers`` and ``--reload`` share."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import pytest

from wsgi2asgi.cli import build_parser, serve_config
from wsgi2asgi.server.config import Config
from wsgi2asgi.server.supervisor import StopSignals, worker_command


def test_stop_signals_are_noted_and_the_old_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals(signal.SIGTERM, signal.SIGINT) as stop:
        assert not stop.requested
        signal.raise_signal(signal.SIGTERM)  # handled at once: this is the main thread
        assert stop.requested
    assert signal.getsignal(signal.SIGTERM) is before


def test_stop_signals_restore_the_handlers_after_an_error() -> None:
    before = signal.getsignal(signal.SIGINT)
    try:
        with StopSignals(signal.SIGINT):
            raise LookupError("in the supervised loop")
    except LookupError:
        pass
    assert signal.getsignal(signal.SIGINT) is before


def test_worker_command_carries_every_setting_and_nothing_from_the_parent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The parent's own sources must not reach the worker: its variables and ./pyproject.toml.
    monkeypatch.setenv("WSGI2ASGI_UDS", "/from/the/parent.sock")
    monkeypatch.setenv("WEB_CONCURRENCY", "8")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.wsgi2asgi]\nthreads = 3\nuds = "/x.sock"\n')
    config = Config(
        app="site:create_app('a b', debug=True)",
        mounts=(("/legacy", "legacy.wsgi:app"), ("/v2", "site.asgi:app")),
        host_mounts=(("*.example.com", "/api", "api:app"),),
        uds="/run/app.sock",
        workers=4,
        forwarded_allow_ips=("10.0.0.0/8", "::1"),
        limit_concurrency=10,
        timeout_write=None,
        reload_delay=0.5,
        headers=(("Cache-Control", "no-store, max-age=0"),),
        proxy_headers=False,
        dashboard="/_w",
        dashboard_token="a secret of 16+ chars",
    )
    command, env = worker_command(config, workers=1, multiprocess=True, uds=None, fd=7)
    assert command[1:] == ["-m", "wsgi2asgi", "serve", config.app, "--config", os.devnull]
    assert "a secret of 16+ chars" not in command  # in the environment, out of ps
    assert "WEB_CONCURRENCY" not in env and env["WSGI2ASGI_FD"] == "7"
    args = build_parser().parse_args(command[3:])
    assert serve_config(args, env) == dataclasses.replace(
        config, workers=1, multiprocess=True, uds=None, fd=7
    )


def test_worker_command_without_app_mounts_at_the_root() -> None:
    config = Config(mounts=(("/legacy", "legacy:app"), ("", "site:app")), reload=True)
    command, env = worker_command(config, reload=False)
    assert command[4:] == ["--config", os.devnull]
    assert serve_config(build_parser().parse_args(command[3:]), env) == dataclasses.replace(
        config, reload=False
    )
