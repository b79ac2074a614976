"""The ``wsgi2asgi`` command line: flags, environment, files, and the sub-commands."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.loopback import ServerProcess
from wsgi2asgi import __version__
from wsgi2asgi.cli import build_parser, main, serve_config, serve_settings
from wsgi2asgi.server import Config
from wsgi2asgi.server.config import settings
from wsgi2asgi.server.settings import flags_table

ROOT = Path(__file__).resolve().parents[1]

#: A valid text for every setting (a setting added without one fails the tests below).
SAMPLES = {
    "app": "m:app",
    "mounts": "/a=m:a",
    "host_mounts": "api.example.com=/v1=m:api",
    "factory": "true",
    "interface": "wsgi",
    "app_dir": "src",
    "root_path": "/proxy",
    "lifespan": "off",
    "host": "0.0.0.0",
    "port": "9000",
    "uds": "/tmp/w.sock",
    "fd": "3",
    "backlog": "100",
    "workers": "3",
    "multiprocess": "true",
    "reload": "false",
    "reload_dirs": "src",
    "reload_includes": "*.html",
    "reload_excludes": "*.tmp",
    "reload_delay": "0.5",
    "threads": "3",
    "malloc_arena_max": "2",
    "proxy_headers": "false",
    "forwarded_allow_ips": "10.0.0.1,10.0.0.2",
    "limit_concurrency": "10",
    "limit_max_requests": "10",
    "limit_max_requests_jitter": "5",
    "timeout_keep_alive": "7",
    "timeout_request_header": "3",
    "timeout_request_body": "7",
    "timeout_write": "0",
    "timeout_graceful_shutdown": "4",
    "max_target_size": "100",
    "max_header_size": "1000",
    "max_headers": "10",
    "max_body_size": "99",
    "ws_max_size": "1000",
    "ws_max_queue": "4",
    "ws_ping_interval": "5",
    "ws_ping_timeout": "0",
    "ws_per_message_deflate": "false",
    "server_header": "false",
    "date_header": "false",
    "headers": "X-Frame-Options: DENY",
    "log_level": "debug",
    "log_config": "logging.json",
    "use_colors": "true",
    "access_log": "false",
    "access_log_format": "%(h)s %(s)s",
    "debug_blocking": "50",
    "dashboard": "/_wsgi2asgi",
    "dashboard_token": "a-long-enough-dashboard-token",
    "ssl_keyfile": "key.pem",
    "ssl_certfile": "cert.pem",
    "ssl_keyfile_password": "secret",
    "ssl_ca_certs": "ca.pem",
    "ssl_cert_reqs": "2",
    "ssl_ciphers": "ECDHE+AESGCM",
}


def flag_args(name: str, text: str) -> list[str]:
    """The command-line arguments that give setting ``name`` the value ``text``."""
    setting = next(s for s in settings() if s.name == name)
    if setting.positional:
        return [text]
    if setting.switch:
        return [setting.flag if text == "true" else "--no-" + setting.flag[2:]]
    return [setting.flag, text]


def config_of(argv: list[str], environ: dict[str, str] | None = None) -> Config:
    """The ``Config`` of ``serve ARGV`` in ``environ`` (an --env-file is loaded into it)."""
    args = build_parser().parse_args(["serve", *argv])
    return serve_config(args, {} if environ is None else environ)


# -- one definition ------------------------------------------------------------------------------


def test_every_setting_has_a_sample() -> None:
    assert set(SAMPLES) == {s.name for s in settings()}


def test_every_field_has_a_flag_an_env_var_and_help_with_its_default() -> None:
    fields = [field.name for field in dataclasses.fields(Config)]
    assert [s.name for s in settings()] == fields  # every Config field is a setting
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    actions = {a.dest: a for a in serve._actions if a.dest != "help"}
    for setting in serve_settings():
        assert setting.help and setting.env.startswith("WSGI2ASGI_"), setting.name
        action = actions[setting.name]
        if not setting.positional:
            assert setting.flag in action.option_strings
            stem = setting.name.removesuffix("s" if setting.repeat else "")
            assert setting.flag == "--" + stem.replace("_", "-")  # names say the same
        if not setting.hidden:
            assert f"(default: {setting.default_text})" in (action.help or ""), setting.name


def test_serve_help_shows_every_flag_with_a_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for setting in serve_settings():
        if not setting.hidden and not setting.positional:
            assert setting.flag in out
    assert out.count("(default:") >= len([s for s in serve_settings() if not s.hidden])
    assert "--max-target-size BYTES" in out and "--no-date-header" in out


def test_docs_flags_table_is_the_definitions() -> None:
    text = (ROOT / "docs" / "server.md").read_text()
    begin, end = "<!-- flags: begin", "<!-- flags: end -->"
    table = text[text.index(begin) : text.index(end)].split("-->", 1)[1].strip()
    # To regenerate: python -c "from wsgi2asgi.cli import serve_settings;
    #   from wsgi2asgi.server.settings import flags_table; print(flags_table(serve_settings()))"
    assert table == flags_table(serve_settings())
    for setting in serve_settings():
        if not setting.hidden:
            assert f"`{setting.env}`" in table


def test_every_flag_reaches_the_config_and_means_what_its_env_var_means() -> None:
    tls = ("ssl_keyfile", "ssl_certfile", "ssl_ca_certs", "ssl_cert_reqs")
    for name, text in SAMPLES.items():
        if name in ("app", "uds", "fd", "reload", "workers", *tls):
            continue  # each needs others (below)
        setting = next(s for s in settings() if s.name == name)
        by_flag = config_of(["m:app", *flag_args(name, text)])
        env_text = shlex.quote(text) if setting.repeat else text  # split as a shell would
        by_env = config_of(["m:app"], {setting.env: env_text})
        expected = (setting.value(text),) if setting.repeat else setting.value(text)
        assert getattr(by_flag, name) == getattr(by_env, name) == expected, name
        assert getattr(by_flag, name) != getattr(Config(app="m:app"), name), name
    both = ["--ssl-keyfile", "k", "--ssl-certfile", "c", "--ssl-ca-certs", "ca", "--ssl-cert-reqs"]
    config = config_of(["m:app", *both, "2"])
    assert (config.ssl_keyfile, config.ssl_ca_certs, config.ssl_cert_reqs) == ("k", "ca", 2)
    assert config_of([], {"WSGI2ASGI_APP": "m:b"}).app == "m:b"
    assert config_of(["m:a", "--fd", "3"]).fd == config_of(["m:a"], {"WSGI2ASGI_FD": "3"}).fd == 3


def test_renamed_fields_match_their_flags() -> None:
    config = config_of(
        ["m:app", "--threads", "3", "--max-target-size", "9", "--max-header-size", "99"]
        + ["--max-body-size", "7"]
    )
    assert (config.threads, config.max_target_size, config.max_header_size) == (3, 9, 99)
    assert config.max_body_size == 7
    assert config_of(["m:app"]) == Config(app="m:app")  # the flags' defaults are the Config's


def test_repeatable_settings_from_flags_and_env() -> None:
    flags = ["--mount", "/a=m:a", "--mount", "/=m:b", "--header", "X-A: 1", "--header", "X-B:2"]
    config = config_of(flags)
    assert config.mounts == (("/a", "m:a"), ("", "m:b"))
    assert config.headers == (("X-A", "1"), ("X-B", "2"))
    env = {"WSGI2ASGI_MOUNT": "/a=m:a /=m:b", "WSGI2ASGI_HEADER": '"X-A: 1, 2" X-B:3'}
    config = config_of([], env)
    assert config.mounts == (("/a", "m:a"), ("", "m:b"))
    assert config.headers == (("X-A", "1, 2"), ("X-B", "3"))


# -- precedence: flag > environment > config file > default ---------------------------------------


@pytest.mark.parametrize(
    ("flag", "env", "file", "expected"),
    [
        (None, None, None, 8000),
        (None, None, 1001, 1001),
        (None, 1002, 1001, 1002),
        (1003, 1002, 1001, 1003),
        (1003, None, 1001, 1003),
        (1003, 1002, None, 1003),
    ],
)
def test_precedence_flag_env_file_default(
    flag: int | None,
    env: int | None,
    file: int | None,
    expected: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    if file is not None:
        (tmp_path / "pyproject.toml").write_text(f"[tool.wsgi2asgi]\nport = {file}\n")
    argv = ["m:app"] + (["--port", str(flag)] if flag is not None else [])
    environ = {"WSGI2ASGI_PORT": str(env)} if env is not None else {}
    assert config_of(argv, environ).port == expected


def test_web_concurrency_sets_the_default_worker_count() -> None:
    assert config_of(["m:app"], {"WEB_CONCURRENCY": "4"}).workers == 4
    assert config_of(["m:app"], {"WEB_CONCURRENCY": "4", "WSGI2ASGI_WORKERS": "2"}).workers == 2
    assert config_of(["m:app", "--workers", "3"], {"WEB_CONCURRENCY": "4"}).workers == 3
    assert config_of(["m:app"]).workers == 1


def test_web_concurrency_not_a_number_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WEB_CONCURRENCY", "many")
        assert main(["serve", "m:app"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "WEB_CONCURRENCY" in err and "'many'" in err


def test_env_var_with_a_bad_value_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WSGI2ASGI_PORT", "eighty")
    assert main(["serve", "m:app"]) == 2
    err = capsys.readouterr().err
    assert err == "wsgi2asgi serve: error: WSGI2ASGI_PORT: 'eighty' is not a whole number\n"


# -- --env-file ---------------------------------------------------------------------------------


def test_env_file_is_loaded_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        textwrap.dedent(
            """\
            # settings for the server and the app
            WSGI2ASGI_PORT=9001
            export WSGI2ASGI_THREADS = 5
            DATABASE_URL="postgres://db/x"  # the app reads it
            GREETING='hello # not a comment'
            MULTI="a\\nb"
            PLAIN=value # a comment
            EMPTY=
            """
        )
    )
    environ = {"WSGI2ASGI_THREADS": "7"}
    config = config_of(["m:app", "--env-file", str(env_file)], environ)
    assert (config.port, config.threads) == (9001, 7)  # the real environment wins
    assert environ["DATABASE_URL"] == "postgres://db/x"  # the app sees the file too
    assert environ["GREETING"] == "hello # not a comment"
    assert (environ["MULTI"], environ["PLAIN"], environ["EMPTY"]) == ("a\nb", "value", "")
    assert config_of(["m:app"], {"WSGI2ASGI_ENV_FILE": str(env_file)}).port == 9001


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        ("not a line\n", "line 1: not NAME=value"),
        ("A=1\nB='open\n", "line 2: a quoted value must end with its quote"),
    ],
)
def test_bad_env_file_is_one_line(
    content: str | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / ".env"
    if content is not None:
        env_file.write_text(content)
    assert main(["serve", "m:app", "--env-file", str(env_file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


# -- --config FILE and [tool.wsgi2asgi] ----------------------------------------------------------

COMPOSITE = """\
port = 9100
threads = 4
timeout-keep-alive = 30
forwarded_allow_ips = ["10.0.0.0/8", "127.0.0.1"]
proxy_headers = false

[mounts]
"/legacy" = "legacy.wsgi:app"
"/" = "site.asgi:application"

[host_mounts."api.example.com"]
"/" = "api.asgi:app"
"/v1" = "api_v1.wsgi:app"

[headers]
X-Frame-Options = "DENY"
"""


def test_config_file_holds_mounts_hosts_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "wsgi2asgi.toml"
    path.write_text(COMPOSITE)
    config = config_of(["--config", str(path)])
    assert config.mounts == (("/legacy", "legacy.wsgi:app"), ("", "site.asgi:application"))
    assert config.host_mounts == (
        ("api.example.com", "", "api.asgi:app"),
        ("api.example.com", "/v1", "api_v1.wsgi:app"),
    )
    assert (config.port, config.threads, config.timeout_keep_alive) == (9100, 4, 30.0)
    assert config.forwarded_allow_ips == ("10.0.0.0/8", "127.0.0.1")
    assert config.headers == (("X-Frame-Options", "DENY"),)
    assert config.proxy_headers is False
    flags = config_of(["--config", str(path), "--port", "9200", "--mount", "/=other:app"])
    assert (flags.port, flags.mounts, flags.threads) == (9200, (("", "other:app"),), 4)


def test_config_file_composite_is_served(tmp_path: Path) -> None:
    path = tmp_path / "wsgi2asgi.toml"
    path.write_text(
        textwrap.dedent(
            """\
            port = 0
            access_log = false

            [mounts]
            "/legacy" = "tests.apps.lifecycle:wsgi_app"
            "/" = "tests.apps.lifecycle:ASGI2"

            [host_mounts."api.example.com"]
            "/v1" = "tests.apps.lifecycle:wsgi_app"
            """
        )
    )
    command = [sys.executable, "-m", "wsgi2asgi", "serve", "--config", str(path)]
    server = ServerProcess(command, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        url = f"http://127.0.0.1:{server.port()}"
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/legacy/a").text == "wsgi /legacy /a"
            assert client.get("/x").text == "asgi2 /x"
            api = client.get("/v1/b", headers={"Host": "api.example.com"})
            assert api.text == "wsgi /v1 /b"
            assert client.get("/v1/b").text == "asgi2 /v1/b"  # another host: the mounts
    finally:
        server.process.terminate()
        status, output = server.finish()
    assert status == 0, output


def test_pyproject_table_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.wsgi2asgi]\napp = "site:app"\nworkers = 2\n'
    )
    config = config_of([])
    assert (config.app, config.workers) == ("site:app", 2)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert config_of(["m:app"]) == Config(app="m:app")  # no table: nothing from it


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("prot = 8000\n", "unknown key 'prot' (did you mean 'port'?)"),
        ('port = "8000"\n', "port: must be a number, not a string"),
        ("port = 80.5\n", "port: '80.5' is not a whole number"),
        ("access_log = 1\n", "access_log: must be true or false, not a number"),
        ("app = 5\n", "app: must be a string, not a number"),
        ('interface = "cgi"\n', "interface: 'cgi' is not one of auto, asgi3, asgi2, wsgi"),
        ('mounts = "/a=m:a"\n', "mounts: must be a list or a table, not a string"),
        ('[mounts]\n"fl ask" = "m:a"\n', "mounts: --mount 'fl ask=m:a'"),
        ('[headers]\n"X-A" = 1\n', "headers: X-A: must be a string, not a number"),
        ("port = \n", "not valid TOML"),
    ],
)
def test_bad_config_file_is_one_line_naming_the_key(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "wsgi2asgi.toml"
    path.write_text('app = "m:app"\n' + content if not content.startswith("app") else content)
    assert main(["serve", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert message in err and str(path) in err
    assert "Traceback" not in err


def test_missing_config_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--config", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.toml" in err and "No such file" in err


# -- the command line as before -----------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert __version__ in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "serve" in capsys.readouterr().out


def test_serve_flags_parse_like_uvicorn() -> None:
    config = config_of(
        shlex.split(
            "app:app --host 0.0.0.0 --port 9000 --mount /a=m:a --mount /b=m:b --no-access-log "
            "--limit-concurrency 10 --forwarded-allow-ips 10.0.0.1,10.0.0.2 --lifespan on"
        )
    )
    assert (config.host, config.port, config.lifespan) == ("0.0.0.0", 9000, "on")
    assert config.mounts == (("/a", "m:a"), ("/b", "m:b"))
    assert config.access_log is False and config.limit_concurrency == 10
    assert config.forwarded_allow_ips == ("10.0.0.1", "10.0.0.2")


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
        (["--header", "no-colon"], "NAME:VALUE"),
        (["--host-mount", "/=m:a"], "HOST=PREFIX"),
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


def test_parser_is_argparse() -> None:
    assert isinstance(build_parser(), argparse.ArgumentParser)
