"""Flags as a new user types them: global options after the command, conflicts refused,
raw values for scripts, "did you mean", and ``cbatch help COMMAND``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import make_batch, wait_terminal


@pytest.fixture(scope="module")
def finished(sandbox: object, tmp_path_factory: pytest.TempPathFactory) -> str:
    with CohereClient(TEST_KEY, sandbox.base_url) as client:  # type: ignore[attr-defined]
        batch = make_batch(client, tmp_path_factory.mktemp("flags"), 2, name="flags")
        wait_terminal(client, batch.id)
    return batch.id


# -- global options after the command -------------------------------------------------------


def test_debug_after_the_command_traces_http(cli: Cli) -> None:
    result = cli("list", "--limit", "1", "--debug")
    assert "debug: > GET" in result.stderr and "/v2/batches" in result.stderr


def test_retries_and_request_timeout_after_the_command(cli: Cli, finished: str) -> None:
    shown = json.loads(
        cli("get", finished, "--retries", "2", "--request-timeout=5", "--json").stdout
    )
    assert shown["id"] == finished


def test_base_url_after_the_command_wins_over_the_environment(cli: Cli, finished: str) -> None:
    result = cli(
        "get",
        finished,
        "-q",
        "--base-url",
        cli.base_url or "",
        env={"CO_API_URL": "http://127.0.0.1:9"},
    )
    assert result.stdout.strip() == finished


def test_a_global_option_between_a_group_and_its_command(cli: Cli) -> None:
    assert "debug: > GET" in cli("datasets", "--debug", "list", "--limit", "1").stderr
    assert "debug: > GET" in cli("datasets", "list", "--debug", "--limit", "1").stderr


def test_the_command_s_own_option_of_the_same_name_wins(tmp_path: Path, isolated_env: Path) -> None:
    Cli(None, None)("login", "--profile", "ci", "--no-check", input="sandbox-key-123456789\n")
    text = isolated_env.read_text(encoding="utf-8")
    assert "[profiles.ci]" in text and "[profiles.default]" not in text


def test_watch_keeps_its_own_timeout_a_duration(cli: Cli, finished: str) -> None:
    cli("watch", finished, "--timeout", "2h", "--plain")


def test_an_option_value_that_looks_like_a_global_option_is_left_alone(cli: Cli) -> None:
    result = cli("list", "--name", "--debug", "-q")
    assert "debug:" not in result.stderr, "--debug was the value of --name, not the flag"


def test_after_a_double_dash_nothing_moves(cli: Cli) -> None:
    result = cli("get", "--", "--debug", exit_code=ExitCode.NOT_FOUND)
    assert "debug: >" not in result.stderr


def test_the_deprecated_global_timeout_is_gone_as_promised(cli: Cli) -> None:
    gone = cli("--timeout", "5", "list", "--limit", "1", "-q", exit_code=2)
    assert "No such option: --timeout" in gone.stderr
    refused = cli("list", "--timeout", "5", exit_code=2)
    assert "No such option: --timeout" in refused.stderr


# -- commands ------------------------------------------------------------------------------


def test_a_mistyped_command_gets_a_suggestion(cli: Cli) -> None:
    result = cli("lst", exit_code=2)
    assert "No such command 'lst'. Did you mean 'list'?" in result.stderr


def test_help_with_a_command_is_that_command_s_help(cli: Cli) -> None:
    assert cli("help", "create").stdout == cli("create", "--help").stdout
    assert cli("help", "datasets", "upload").stdout == cli("datasets", "upload", "--help").stdout
    assert "Exit codes" in cli("help", "exit-codes").stdout
    refused = cli("help", "lst", exit_code=2)
    assert "did you mean 'list'" in refused.stderr


def test_examples_in_help_are_never_broken_across_lines(cli: Cli) -> None:
    for command in (("results",), ("create",), ("list",), ("datasets", "get")):
        text = cli(*command, "--help", env={"COLUMNS": "60"}).stdout
        lines = text.splitlines()
        for n, line in enumerate(lines):
            if line.strip().startswith("cbatch "):
                follower = lines[n + 1] if n + 1 < len(lines) else ""
                assert follower.strip() == "" or follower.strip().startswith("cbatch "), (
                    command,
                    line,
                    follower,
                )


# -- output flags: one mode, contradictions refused, raw values ----------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        ("--json", "--jsonl"),
        ("--query", "id", "--format", "csv"),
        ("--query", "[].id", "-q"),
        ("--raw", "--json"),
        ("--format", "table", "--jsonl"),
    ],
)
def test_conflicting_output_flags_are_refused_in_one_line(cli: Cli, flags: tuple[str, ...]) -> None:
    result = cli("list", *flags, exit_code=ExitCode.USAGE)
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")


def test_raw_prints_a_picked_string_without_quotes(cli: Cli, finished: str) -> None:
    assert cli("get", finished, "--query", "status", "--raw").stdout == "BATCH_STATUS_COMPLETED\n"

    assert cli("get", finished, "--query", "status").stdout == '"BATCH_STATUS_COMPLETED"\n'


def test_raw_prints_a_list_one_value_a_line(cli: Cli, finished: str) -> None:
    out = cli(
        "list", "--name", "flags", "--query", "[].[id, num_records]", "-r"
    ).stdout.splitlines()
    assert f'["{finished}",2]' in out
    ids = cli("list", "--limit", "3", "--query", "[].id", "--format", "text").stdout
    assert ids == cli("list", "--limit", "3", "-q").stdout, "the same ids, raw, one a line"


def test_config_json_says_null_for_what_is_not_set(cli: Cli) -> None:
    config = json.loads(Cli(None, None)("config", "--json").stdout)
    assert config["api_key"]["value"] is None and config["model"]["value"] is None
    assert "(not set)" not in json.dumps(config)
