"""The API key never shows: not in output, traces, errors, URLs, or requests to other hosts."""

from __future__ import annotations

import pytest

from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import CAPTURED, TEST_KEY, Cli
from tests.support.fault_server import HTML_502, RESET, FaultServer, batch_json

GET_B1 = "GET /v2/batches/b-1"


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ((200, {}, {"batch": batch_json()}), ExitCode.OK),
        ((401, {}, {"message": "invalid api token"}), ExitCode.AUTH),
        (HTML_502, ExitCode.SERVER),
        (RESET, ExitCode.NETWORK),
        ((200, {}, "not json"), ExitCode.SERVER),
    ],
    ids=["ok", "401", "html502", "reset", "garbage"],
)
def test_debug_traces_and_errors_never_hold_the_key(
    fault_cli: Cli, fault_server: FaultServer, answer: object, code: int
) -> None:
    fault_server.steady[GET_B1] = answer
    result = fault_cli("--debug", "--retries", "1", "get", "b-1", exit_code=code)
    assert TEST_KEY not in result.stdout + result.stderr
    if code:
        assert "debug: >" in result.stderr


def test_the_key_travels_only_in_the_authorization_header(
    fault_cli: Cli, fault_server: FaultServer
) -> None:
    fault_server.steady[GET_B1] = (200, {}, {"batch": batch_json()})
    fault_cli("get", "b-1")
    [request] = fault_server.requests
    assert TEST_KEY not in request.path
    others = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
    assert TEST_KEY not in str(others)


def test_config_and_login_never_echo_the_key(fault_server: FaultServer) -> None:
    fault_server.steady["GET /v2/batches"] = (200, {}, {"batches": []})
    cli = Cli(None, None)
    login = cli("login", "--base-url", fault_server.base_url, input=TEST_KEY + "\n")
    shown = cli("config")
    as_json = cli("config", "--json")
    for result in (login, shown, as_json):
        assert TEST_KEY not in result.stdout + result.stderr


def test_no_captured_output_holds_the_key(fault_cli: Cli, fault_server: FaultServer) -> None:
    """Every output the cli fixtures captured, this test's own commands included, in any order.

    It runs commands of its own first (an answer, a refusal, a bad key, an
    error with --debug), so it checks something when run alone or first; the
    session's end checks everything captured again (conftest).
    """
    fault_server.steady[GET_B1] = (200, {}, {"batch": batch_json()})
    fault_server.steady["GET /v2/batches/b-2"] = (401, {}, {"message": "invalid api token"})
    # The list the fixtures' Cli appends to: pytest may load conftest.py under another module name.
    captured = type(fault_cli).__call__.__globals__["CAPTURED"]
    before = len(captured)
    fault_cli("get", "b-1", "--json")
    fault_cli("--debug", "get", "b-1")
    fault_cli("--debug", "get", "b-2", exit_code=ExitCode.AUTH)
    fault_cli("config")
    assert len(captured) >= before + 8, "each command's stdout and stderr are captured"
    assert [text for text in captured[before:] if "debug: >" in text], (
        "the debug trace was captured"
    )
    assert not [text for text in captured + CAPTURED if TEST_KEY in text]


@pytest.mark.parametrize(
    "key",
    [TEST_KEY + " x", "“" + TEST_KEY + "”", TEST_KEY[:8] + "\n" + TEST_KEY, TEST_KEY + "\x01"],
)
def test_a_malformed_key_is_refused_without_being_shown(
    fault_cli: Cli, fault_server: FaultServer, key: str
) -> None:
    result = Cli(fault_server.base_url, None)(
        "get", "b-1", env={"CO_API_KEY": key}, exit_code=ExitCode.AUTH
    )
    assert TEST_KEY not in result.stdout + result.stderr
    assert "contains white space, control or non-ASCII" in result.stderr
    assert fault_server.requests == [], "nothing was sent"


def test_surrounding_white_space_is_trimmed(fault_server: FaultServer) -> None:
    fault_server.steady["GET /v2/batches/b-1"] = (200, {}, {"batch": batch_json()})
    Cli(fault_server.base_url, None)("get", "b-1", env={"CO_API_KEY": f"  {TEST_KEY}\r\n"})
    assert fault_server.requests[0].headers["Authorization"] == f"Bearer {TEST_KEY}"
