"""Exit codes and the one-line errors, command by command, against the fault server."""

from __future__ import annotations

import json

import pytest

from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY, Cli
from tests.support.fault_server import HTML_502, RESET, TRUNCATE, FaultServer, batch_json

GET_B1 = "GET /v2/batches/b-1"


@pytest.mark.parametrize(
    ("answer", "code", "fragment"),
    [
        ((401, {}, {"message": "invalid api token"}), ExitCode.AUTH, "invalid api token"),
        ((403, {}, {"message": "forbidden"}), ExitCode.AUTH, "forbidden"),
        ((498, {}, {"message": "blocked token"}), ExitCode.AUTH, "blocked token"),
        ((404, {}, {"message": "batch b-1 not found"}), ExitCode.NOT_FOUND, "batch b-1 not found"),
        ((400, {}, {"message": "bad id"}), ExitCode.REFUSED, "bad id"),
        ((422, {}, {"message": "unprocessable"}), ExitCode.REFUSED, "unprocessable"),
        ((429, {"Retry-After": "0"}, {"message": "rate limited"}), ExitCode.SERVER, "rate limited"),
        ((503, {}, {"message": "overloaded"}), ExitCode.SERVER, "overloaded"),
        (HTML_502, ExitCode.SERVER, "HTTP 502"),
        (RESET, ExitCode.NETWORK, "was lost"),
        (TRUNCATE, ExitCode.NETWORK, "closed the connection"),
        ((200, {}, {"unexpected": True}), ExitCode.SERVER, "no 'batch' object"),
    ],
    ids=[
        "401",
        "403",
        "498",
        "404",
        "400",
        "422",
        "429",
        "503",
        "html502",
        "reset",
        "truncated",
        "shape",
    ],
)
def test_each_failure_has_its_exit_code_and_one_line(
    fault_cli: Cli, fault_server: FaultServer, answer: object, code: int, fragment: str
) -> None:
    fault_server.steady[GET_B1] = answer
    result = fault_cli("--retries", "1", "get", "b-1", exit_code=code)
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_connection_refused_is_a_network_error() -> None:
    result = Cli("http://127.0.0.1:9", TEST_KEY)(
        "--retries", "0", "get", "b-1", exit_code=ExitCode.NETWORK
    )
    assert "could not connect" in result.stderr


def test_timeout_flag_bounds_a_slow_answer(fault_cli: Cli, fault_server: FaultServer) -> None:
    fault_server.slow_seconds = 1.0
    fault_server.steady[GET_B1] = "slow"
    result = fault_cli(
        "--request-timeout", "0.2", "--retries", "0", "get", "b-1", exit_code=ExitCode.NETWORK
    )
    assert "timed out" in result.stderr


def test_usage_errors_exit_2(fault_cli: Cli) -> None:
    fault_cli("get", exit_code=ExitCode.USAGE)
    fault_cli("list", "--order-by", "name", exit_code=ExitCode.USAGE)
    fault_cli("list", "--status", "sleeping", exit_code=ExitCode.USAGE)
    fault_cli("create", "--model", "m", exit_code=ExitCode.USAGE)
    fault_cli("frobnicate", exit_code=ExitCode.USAGE)


def test_debug_trace_redacts_authorization(fault_cli: Cli, fault_server: FaultServer) -> None:
    fault_server.steady[GET_B1] = (200, {"x-request-id": "r-9"}, {"batch": batch_json()})
    result = fault_cli("--debug", "get", "b-1", "--json")
    assert "authorization: [redacted]" in result.stderr
    assert TEST_KEY not in result.stderr + result.stdout
    assert "request-id=r-9" in result.stderr
    assert json.loads(result.stdout)["id"] == "b-1"


def test_cancel_reports_each_outcome_and_exits_with_the_first_failure(
    fault_cli: Cli, fault_server: FaultServer
) -> None:
    fault_server.steady["POST /v2/batches/ok-1:cancel"] = (200, {}, {})
    fault_server.steady["POST /v2/batches/done-1:cancel"] = (
        400,
        {},
        {"message": "batch already completed"},
    )
    fault_server.steady["POST /v2/batches/ok-2:cancel"] = (200, {}, {})
    result = fault_cli("cancel", "ok-1", "done-1", "ok-2", "--json", exit_code=ExitCode.REFUSED)
    outcomes = json.loads(result.stdout)  # --json: one document
    assert [o["cancel_requested"] for o in outcomes] == [True, False, True]
    assert "already completed" in outcomes[1]["error"]
    assert "ok-1: cancel requested" in result.stderr
    lines = fault_cli(
        "cancel", "ok-1", "done-1", "--jsonl", exit_code=ExitCode.REFUSED
    ).stdout.splitlines()
    assert [json.loads(line)["cancel_requested"] for line in lines] == [True, False]


def test_401_names_where_the_key_came_from(fault_cli: Cli, fault_server: FaultServer) -> None:
    fault_server.steady[GET_B1] = (401, {}, {"message": "invalid api token"})
    result = fault_cli("get", "b-1", exit_code=ExitCode.AUTH)
    assert "the key from environment CO_API_KEY was refused" in result.stderr


def test_404_on_a_dataset_suggests_listing_datasets(
    fault_cli: Cli, fault_server: FaultServer
) -> None:
    fault_server.steady["GET /v1/datasets/ds-x"] = (404, {}, {"message": "dataset not found"})
    result = fault_cli("datasets", "get", "ds-x", exit_code=ExitCode.NOT_FOUND)
    assert "dataset not found" in result.stderr and "cbatch datasets list" in result.stderr


def test_a_mistyped_option_names_the_closest(fault_cli: Cli) -> None:
    result = fault_cli("list", "--limt", "3", exit_code=ExitCode.USAGE)
    assert "--limit" in result.stderr


def test_help_topics_come_from_the_code(fault_cli: Cli) -> None:
    from cohere_batch_cli.cli.help_topics import DESCRIPTIONS

    assert set(DESCRIPTIONS) == set(ExitCode), "every exit code says what it means"
    text = fault_cli("help", "exit-codes").stdout
    for code, description in DESCRIPTIONS.items():
        assert f"{int(code):>3}  {description}" in text
    assert "CO_API_KEY" in fault_cli("help", "environment").stdout
    fault_cli("help", "nonsense", exit_code=ExitCode.USAGE)


def test_list_csv_and_query(fault_cli: Cli, fault_server: FaultServer) -> None:
    batches = [
        batch_json("b-1"),
        batch_json("b-2", status="BATCH_STATUS_FAILED", name="with,comma"),
    ]
    fault_server.steady["GET /v2/batches"] = (200, {}, {"batches": batches})
    csv_text = fault_cli("list", "--format", "csv").stdout
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert [r["id"] for r in rows] == ["b-1", "b-2"]
    assert rows[1]["name"] == "with,comma" and rows[1]["input_tokens"] == "1234"
    picked = fault_cli("list", "--query", "[?status=='BATCH_STATUS_FAILED'].id").stdout
    assert json.loads(picked) == ["b-2"]
    fault_cli("list", "--query", "[?", exit_code=ExitCode.USAGE)
    fault_cli("list", "--format", "yaml", exit_code=ExitCode.USAGE)


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("[?status==", "the expression ends too soon at character 11 (after '[?status==')"),
        ("foo]", "unexpected ']' at character 4 (after 'foo')"),
        ("[?x == `1]", "Unclosed ` delimiter at character 8 (after '[?x == ')"),
    ],
)
def test_a_malformed_query_says_what_and_where_in_one_line(
    fault_cli: Cli, fault_server: FaultServer, expression: str, said: str
) -> None:
    """The parser's three-line message (text, expression, caret) said in one line (issue 24 item 20)."""
    before = len(fault_server.requests)
    result = fault_cli("list", "--query", expression, exit_code=ExitCode.USAGE)
    assert result.stderr == f"error: --query is not valid JMESPath: {said}\n"
    assert len(fault_server.requests) == before, "refused before any request"


def test_batch_ids_complete_from_the_last_listing(
    fault_cli: Cli, fault_server: FaultServer
) -> None:
    from cohere_batch_cli.cli._completion import cache_path, complete
    from cohere_batch_cli.completion_cache import scope_of

    params = {"base_url": fault_server.base_url}
    assert complete("batch", params, "") == []
    fault_server.steady["GET /v2/batches"] = (
        200,
        {},
        {"batches": [batch_json("abc-1"), batch_json("xyz-2")]},
    )
    fault_cli("list", "-q")
    assert complete("batch", params, "ab") == [("abc-1", "nightly (in progress)")]
    assert fault_server.count("GET /v2/batches") == 1, "completion itself never calls the API"
    path = cache_path("batch", scope_of(fault_server.base_url, "default"))
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # written atomically
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_redirect_is_a_base_url_error_not_a_success(
    fault_cli: Cli, fault_server: FaultServer
) -> None:
    moved = (301, {"Location": "https://api.example.test/v2/batches/b-1:cancel"}, "")
    fault_server.steady["POST /v2/batches/b-1:cancel"] = moved
    result = fault_cli(
        "cancel", "b-1", exit_code=ExitCode.AUTH
    )  # a configuration error stops at once
    assert (
        "cancel requested" not in result.stderr
        and "redirect to https://api.example.test" in result.stderr
    )
    fault_server.steady["GET /v2/batches"] = (302, {"Location": "https://elsewhere.test/"}, "")
    listed = fault_cli("list", exit_code=ExitCode.AUTH)
    assert "base URL" in listed.stderr and "no batches" not in listed.stderr


@pytest.mark.parametrize("fmt", ["--json", "--format=csv", "--jsonl"])
def test_a_listing_that_fails_at_once_leaves_stdout_empty(
    fault_cli: Cli, fault_server: FaultServer, fmt: str
) -> None:
    fault_server.steady["GET /v2/batches"] = (500, {}, {"message": "down"})
    result = fault_cli("--retries", "0", "list", fmt, exit_code=ExitCode.SERVER)
    assert result.stdout == ""


def test_a_server_repeating_a_page_token_does_not_loop(
    fault_cli: Cli, fault_server: FaultServer
) -> None:
    fault_server.steady["GET /v2/batches"] = (
        200,
        {},
        {"batches": [batch_json()], "next_page_token": "same"},
    )
    result = fault_cli("list", "--all", "-q", exit_code=ExitCode.SERVER)
    assert "repeated a page token" in result.stderr
    assert fault_server.count("GET /v2/batches") == 2


def test_names_with_terminal_escapes_are_neutralised_in_plain_output(
    fault_cli: Cli, fault_server: FaultServer
) -> None:
    evil = batch_json(name="\x1b[31mRED\x1b[0m\x07")
    fault_server.steady[GET_B1] = (200, {}, {"batch": evil})
    fault_server.steady["GET /v2/batches"] = (200, {}, {"batches": [evil]})
    for args in (("get", "b-1"), ("list",)):
        out = fault_cli(*args).stdout
        assert "RED" in out and "\x1b" not in out and "\x07" not in out
    assert "\x1b[31m" in json.loads(fault_cli("get", "b-1", "--json").stdout)["name"], (
        "--json keeps the API's value"
    )
