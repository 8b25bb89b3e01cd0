"""Credentials and config: precedence with sources, login, 0600 files, bad files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cohere_batch_cli import config
from tests.conftest import TEST_KEY, Cli
from tests.support.fault_server import FaultServer


def write_config(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def test_precedence_flag_then_env_then_profile(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        isolated_env,
        '[profiles.default]\napi_key = "from-file-key-1234"\nbase_url = "http://file"\n',
    )
    settings = config.resolve()
    assert (
        settings.api_key.value == "from-file-key-1234"
        and "profile 'default'" in settings.api_key.source
    )
    assert settings.base_url.value == "http://file"
    monkeypatch.setenv("COHERE_API_KEY", "fallback-key")
    monkeypatch.setenv("CO_API_URL", "http://env")
    settings = config.resolve()
    assert (
        settings.api_key.value == "fallback-key"
        and settings.api_key.source == "environment COHERE_API_KEY"
    )
    monkeypatch.setenv("CO_API_KEY", "primary-key")
    settings = config.resolve(base_url_flag="http://flag")
    assert settings.api_key.value == "primary-key"
    assert (settings.base_url.value, settings.base_url.source) == ("http://flag", "--base-url")


def test_profile_selection(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(
        isolated_env,
        'default_profile = "work"\n[profiles.work]\napi_key = "work-key"\n[profiles.ci]\napi_key = "ci-key"\n',
    )
    assert config.resolve().api_key.value == "work-key"
    monkeypatch.setenv("CBATCH_PROFILE", "ci")
    assert config.resolve().api_key.value == "ci-key"
    assert config.resolve(profile="work").api_key.value == "work-key"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[profiles.default\napi_key = 1", "not valid TOML"),
        ("[profiles.default]\napi_key = 42\n", "profiles.default.api_key must be a string"),
        ("profiles = 3\n", "[profiles] must be a table"),
    ],
)
def test_bad_config_files_give_one_clear_line(isolated_env: Path, text: str, fragment: str) -> None:
    write_config(isolated_env, text)
    result = Cli(None, TEST_KEY)("config", exit_code=3)
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_unknown_profile(isolated_env: Path) -> None:
    write_config(isolated_env, '[profiles.default]\napi_key = "k"\n')
    result = Cli(None, None)("--profile", "nope", "list", exit_code=3)
    assert "unknown profile 'nope'" in result.stderr and "default" in result.stderr


def test_missing_key_says_how_to_set_it(isolated_env: Path) -> None:
    result = Cli(None, None)("list", exit_code=3)
    assert (
        result.stderr.strip()
        == "error: no API key: set CO_API_KEY, or run 'cbatch login' to store one"
    )


def test_config_shows_sources_and_masks_the_key(isolated_env: Path) -> None:
    result = Cli("http://127.0.0.1:1", TEST_KEY)("config")
    assert TEST_KEY not in result.stdout
    assert "****CRET" in result.stdout and "environment CO_API_KEY" in result.stdout
    assert "environment CO_API_URL" in result.stdout


def test_config_says_what_chose_the_profile(isolated_env: Path) -> None:
    """--profile, CBATCH_PROFILE, the file's default_profile or nothing (issue 24, item 20)."""
    isolated_env.parent.mkdir(parents=True, exist_ok=True)
    isolated_env.write_text('default_profile = "team"\n[profiles.team]\n[profiles.ci]\n')
    isolated_env.chmod(0o600)
    cli = Cli("http://127.0.0.1:1", TEST_KEY)

    def profile_line(*args: str, env: dict[str, str] | None = None) -> str:
        shown = cli(*args, "config", env=env or {}).stdout
        return next(line for line in shown.splitlines() if line.startswith("profile "))

    assert profile_line().split() == [
        "profile",
        "team",
        "(default_profile",
        "in",
        f"{isolated_env})",
    ]
    assert profile_line("--profile", "ci").split() == ["profile", "ci", "(--profile)"]
    assert profile_line(env={"CBATCH_PROFILE": "ci"}).split() == [
        "profile",
        "ci",
        "(CBATCH_PROFILE)",
    ]
    isolated_env.unlink()
    assert profile_line().split() == ["profile", "default", "(default)"]


def test_login_checks_the_key_and_saves_it_0600(
    isolated_env: Path, fault_server: FaultServer
) -> None:
    fault_server.steady["GET /v2/batches"] = (200, {}, {"batches": []})
    result = Cli(None, None)(
        "login", "--base-url", fault_server.base_url, "--profile", "ci", input=TEST_KEY + "\n"
    )
    assert TEST_KEY not in result.stdout + result.stderr
    assert "saved in profile 'ci'" in result.stderr
    assert stat.S_IMODE(os.stat(isolated_env).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(isolated_env.parent).st_mode) == 0o700
    assert fault_server.requests[0].headers["Authorization"] == f"Bearer {TEST_KEY}"
    saved = config.load_file(isolated_env)["profiles"]["ci"]
    assert saved == {"api_key": TEST_KEY, "base_url": fault_server.base_url}
    assert sorted(p.name for p in isolated_env.parent.iterdir()) == ["config.toml"], (
        "no temporary file left behind"
    )


def test_login_refuses_a_rejected_key(isolated_env: Path, fault_server: FaultServer) -> None:
    fault_server.steady["GET /v2/batches"] = (401, {}, {"message": "invalid api token"})
    result = Cli(None, None)(
        "login", "--base-url", fault_server.base_url, input="bad-key\n", exit_code=3
    )
    assert "invalid api token" in result.stderr
    assert not isolated_env.exists()


def test_login_keeps_other_profiles(isolated_env: Path) -> None:
    write_config(isolated_env, '[profiles.other]\napi_key = "other-key"\nmodel = "m"\n')
    Cli(None, None)("login", "--no-check", "--profile", "new", input="new-key\n")
    data = config.load_file(isolated_env)
    assert data["profiles"]["other"] == {"api_key": "other-key", "model": "m"}
    assert data["profiles"]["new"]["api_key"] == "new-key"


def test_world_readable_config_earns_a_warning(isolated_env: Path) -> None:
    write_config(isolated_env, '[profiles.default]\napi_key = "file-key-123456"\n', mode=0o644)
    result = Cli(None, None)("config")
    assert "can be read by other users" in result.stderr and "chmod 600" in result.stderr


def test_login_creates_the_profile_named_by_the_global_option(isolated_env: Path) -> None:
    Cli(None, None)("--profile", "ci", "login", "--no-check", input="ci-key\n")
    Cli(None, None)("login", "--no-check", env={"CBATCH_PROFILE": "nightly"}, input="n-key\n")
    profiles = config.load_file(isolated_env)["profiles"]
    assert profiles["ci"]["api_key"] == "ci-key" and profiles["nightly"]["api_key"] == "n-key"


def test_a_refused_login_names_the_entered_key(
    isolated_env: Path, fault_server: FaultServer
) -> None:
    fault_server.steady["GET /v2/batches"] = (401, {}, {"message": "invalid api token"})
    result = Cli(None, TEST_KEY)(
        "login", "--base-url", fault_server.base_url, input="typed-key\n", exit_code=3
    )
    assert "the key you entered was refused" in result.stderr
    assert "environment CO_API_KEY" not in result.stderr
