"""Names and messages from the API never reach a real terminal raw, in any view.

A batch name, a dataset name and a server error message each hold a screen
clear (``ESC [2J``), a window-title OSC, a C1 CSI and a bidi override. In a real
pseudo-terminal, every command that shows them must print them as visible,
harmless escapes, and JSON must stay the same value.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from cohere_batch_cli.api.client import CohereClient
from tests.conftest import TEST_KEY, Cli
from tests.support.fault_server import FaultServer
from tests.support.flows import chat_records, wait_terminal, write_jsonl

pexpect = pytest.importorskip("pexpect")
CBATCH = shutil.which("cbatch", path=os.path.dirname(sys.executable)) or shutil.which("cbatch")
pytestmark = pytest.mark.skipif(
    CBATCH is None, reason="cbatch is not installed in this environment"
)

HOSTILE = "ev\x1b[2Jil\x1b]0;pwned\x07x\x9b31my\u202eman"
VISIBLE = "ev\\x1b[2Jil\\x1b]0;pwned\\x07x\\x9b31my\\u202eman"
RAW = ("\x1b[2J", "\x1b]0;", "\x07", "\x9b", "\u202e")


def run_in_terminal(base_url: str, *args: str, columns: int = 200) -> tuple[int, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CO_", "NO_COLOR", "FORCE_COLOR"))
    }
    env.update(
        {
            "CO_API_KEY": TEST_KEY,
            "CO_API_URL": base_url,
            "TERM": "xterm-256color",
            "CBATCH_RETRY_BASE": "0.01",
        }
    )
    child = pexpect.spawn(
        CBATCH, list(args), env=env, encoding="utf-8", timeout=30, dimensions=(50, columns)
    )
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before or ""


def assert_safe(out: str) -> None:
    for sequence in RAW:
        assert sequence not in out, f"{sequence!r} reached the terminal raw:\n{out!r}"


@pytest.fixture(scope="module")
def hostile(sandbox: object, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A finished batch and its input dataset, both named with the hostile text."""
    path = write_jsonl(tmp_path_factory.mktemp("hostile") / "in.jsonl", chat_records(3))
    with CohereClient(TEST_KEY, sandbox.base_url) as client:  # type: ignore[attr-defined]
        dataset_id = client.upload_dataset(
            path, name=HOSTILE, dataset_type="batch-chat-v2-input", keep_fields=["custom_id"]
        )
        from cohere_batch_cli.tasks.datasets import wait_for_dataset

        wait_for_dataset(client, dataset_id, timeout=30)
        batch = client.create_batch(name=HOSTILE, input_dataset_id=dataset_id, model="command-r")
        wait_terminal(client, batch.id)
    return batch.id, dataset_id


@pytest.mark.parametrize(
    "args",
    [
        ("list", "--limit", "50"),
        ("get", "{batch}"),
        ("watch", "{batch}"),
        ("watch", "{batch}", "--plain"),
        ("datasets", "list"),
        ("datasets", "get", "{dataset}"),
    ],
    ids=["list", "get", "watch-live", "watch-plain", "datasets-list", "datasets-get"],
)
def test_hostile_names_are_shown_visibly_and_never_obeyed(
    sandbox: object, hostile: tuple[str, str], args: tuple[str, ...]
) -> None:
    batch_id, dataset_id = hostile
    argv = [a.format(batch=batch_id, dataset=dataset_id) for a in args]
    code, out = run_in_terminal(sandbox.base_url, *argv)  # type: ignore[attr-defined]
    assert code == 0, out
    assert_safe(out)
    assert "\\x1b[2J" in out and "\\u202e" in out, "the name is shown, made visible"


def test_json_on_a_terminal_is_the_same_value_with_the_characters_escaped(
    sandbox: object, hostile: tuple[str, str]
) -> None:
    code, out = run_in_terminal(sandbox.base_url, "get", hostile[0], "--json")  # type: ignore[attr-defined]
    assert code == 0, out
    assert_safe(out)
    assert json.loads(out.replace("\r\n", "\n"))["name"] == HOSTILE


def test_a_hostile_server_message_is_one_safe_error_line(fault_server: FaultServer) -> None:
    fault_server.steady["GET /v2/batches/b-1"] = (
        400,
        {},
        {"message": f"bad request: {HOSTILE}\nforged: line"},
    )
    code, out = run_in_terminal(fault_server.base_url, "get", "b-1")
    assert code == 5, out
    assert_safe(out)
    lines = [line for line in out.replace("\r\n", "\n").splitlines() if line]
    # The label is cbatch's own colour at a terminal; the server's text is shown, never obeyed.
    assert lines == [f"\x1b[1;31merror:\x1b[0m HTTP 400: bad request: {VISIBLE}\\nforged: line"]


def test_a_plain_log_of_a_hostile_name_is_safe_off_a_terminal(
    cli: Cli, hostile: tuple[str, str]
) -> None:
    """Off a terminal (a CI log viewer renders ANSI too), plain and TSV lines are cleaned as well."""
    for args in (("list", "--limit", "50"), ("get", hostile[0]), ("watch", hostile[0])):
        out = cli(*args).stdout
        assert_safe(out)
        assert VISIBLE in out
    assert json.loads(cli("get", hostile[0], "--json").stdout)["name"] == HOSTILE, (
        "off a terminal JSON is exact"
    )
