"""The ``wsgi2asgi`` command line."""

from __future__ import annotations

import pytest

from wsgi2asgi import __version__
from wsgi2asgi.cli import build_parser, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert __version__ in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "serve" in capsys.readouterr().out


def test_serve_flags_parse_like_uvicorn() -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "app:app",
            "--host",
            "0.0.0.0",
            "--port",
            "9000",
            "--mount",
            "/a=m:a",
            "--mount",
            "/=m:b",
            "--no-access-log",
            "--limit-concurrency",
            "10",
            "--forwarded-allow-ips",
            "10.0.0.1,10.0.0.2",
            "--lifespan",
            "on",
        ]
    )
    assert (args.host, args.port, args.lifespan) == ("0.0.0.0", 9000, "on")
    assert args.mount == [("/a", "m:a"), ("", "m:b")]
    assert args.access_log is False


def test_every_serve_flag_reaches_the_config() -> None:
    from wsgi2asgi.cli import config_options
    from wsgi2asgi.server.config import Config

    flags = [
        "serve", "m:app", "--ws-max-size", "1000", "--ws-max-queue", "4",
        "--ws-ping-interval", "5", "--ws-ping-timeout", "0", "--timeout-request-body", "7",
        "--max-body-size", "99", "--limit-max-requests", "10", "--threads", "3",
        "--timeout-write", "0",
    ]  # fmt: skip
    config = Config(app="m:app", **config_options(build_parser().parse_args(flags)))
    assert (config.ws_max_size, config.ws_max_queue) == (1000, 4)
    assert (config.ws_ping_interval, config.ws_ping_timeout) == (5.0, None)  # 0: off
    assert (config.timeout_request_body, config.max_body) == (7.0, 99)
    assert (config.limit_max_requests, config.max_threads) == (10, 3)
    assert config.timeout_write is None  # 0: off
    defaults = Config(app="m:app", **config_options(build_parser().parse_args(["serve", "m:a"])))
    assert defaults == Config(app="m:app")  # the flags' defaults are the Config's


def test_config_errors_exit_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve"]) == 2
    assert "give an app" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--mount", "no-equals-sign"], "PREFIX=module:attr"),
        (["--mount", "/a="], "PREFIX=module:attr"),
        (["--mount", "=m:a"], "empty PREFIX"),
        (["--mount", "/fl ask=m:a"], "' '"),
        (["--mount", "/a%20b=m:a"], "'%'"),
        (["--mount", "/a=m:x", "--mount", "/a/=m:y"], "never"),
        (["--mount", "/=m:x", "m:y"], "never"),
    ],
)
def test_bad_mount_prefix_is_one_line_and_exit_2(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err
