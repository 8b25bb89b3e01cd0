"""The output object: the only writer of stdout and stderr, and the one rule for outside text."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohere_batch_cli.errors import OutputOptionError
from cohere_batch_cli.output import core
from cohere_batch_cli.output.printer import choose_mode
from cohere_batch_cli.output.sanitize import (
    bytes_for_terminal,
    clean,
    clean_lines,
    json_for_terminal,
)
from tests.conftest import Cli
from tests.support.flows import chat_records, write_jsonl

HOSTILE = "a\x1b[2Jb\x1b]0;owned\x07c\x9bd\u202eexe.txt\u2066e\nf\tg\rh"


# -- the sanitiser ---------------------------------------------------------------------------


def test_clean_shows_every_control_escape_and_bidi_character_visibly() -> None:
    text = clean(HOSTILE)
    assert text == "a\\x1b[2Jb\\x1b]0;owned\\x07c\\x9bd\\u202eexe.txt\\u2066e\\nf\\tg\\rh"
    assert all(ch.isprintable() and ch not in "\u202e\u2066" for ch in text)
    assert clean(text) == text, "idempotent: cleaning twice changes nothing"
    assert clean("plain ünïcode ✓") == "plain ünïcode ✓"


def test_clean_lines_keeps_cbatch_s_own_line_breaks_only() -> None:
    assert clean_lines("first\x1b[1m\nsecond") == "first\\x1b[1m\nsecond"


def test_json_for_a_terminal_is_the_same_value_with_nothing_a_terminal_obeys() -> None:
    text = json.dumps({"name": HOSTILE}, ensure_ascii=False)
    safe = json_for_terminal(text)
    assert json.loads(safe) == {"name": HOSTILE}
    assert not any(ch in safe for ch in "\x1b\x07\x9b\u202e\u2066\r")
    raw = bytes_for_terminal(text.encode("utf-8") + b"\n")
    assert json.loads(raw) == {"name": HOSTILE} and raw.endswith(b"\n") and b"\x1b" not in raw


# -- modes: one thing each, contradictions refused --------------------------------------------


@pytest.mark.parametrize(
    ("flags", "mode"),
    [
        ({}, "plain"),
        ({"json_out": True}, "json"),
        ({"jsonl": True}, "jsonl"),
        ({"quiet": True}, "ids"),
        ({"fmt": "csv"}, "csv"),
        ({"fmt": "json", "json_out": True}, "json"),
        ({"query": "[].id"}, "json"),
        ({"query": "[].id", "json_out": True}, "json"),
    ],
)
def test_output_flags_choose_one_mode(flags: dict[str, object], mode: str) -> None:
    assert choose_mode(**flags) == mode  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "flags",
    [
        {"json_out": True, "jsonl": True},
        {"json_out": True, "quiet": True},
        {"fmt": "csv", "json_out": True},
        {"query": "id", "quiet": True},
        {"query": "id", "fmt": "csv"},
        {"query": "id", "jsonl": True},
        {"fmt": "yaml"},
    ],
)
def test_contradicting_output_flags_are_a_usage_error(flags: dict[str, object]) -> None:
    with pytest.raises(OutputOptionError):
        choose_mode(**flags)  # type: ignore[arg-type]


def test_both_json_flags_on_a_command_exit_2(cli: Cli) -> None:
    result = cli("list", "--json", "--jsonl", exit_code=2)
    assert result.stdout == ""
    assert result.stderr == "error: --json and --jsonl ask for different output; give one of them\n"


def test_a_closed_stdout_is_a_local_write_error() -> None:
    from cohere_batch_cli.errors import LocalWriteError

    out = core.Output(stderr=io.StringIO())
    out._out = core._Stream("stdout", None)
    with pytest.raises(LocalWriteError, match="stdout: it is closed"):
        out.line("x")


# -- everything on the streams came through the output object ---------------------------------


@pytest.fixture
def transcript() -> Iterator[list[tuple[str, str]]]:
    core.TRANSCRIPT = []
    try:
        yield core.TRANSCRIPT
    finally:
        core.TRANSCRIPT = None


def _written(transcript: list[tuple[str, str]], stream: str) -> str:
    return "".join(text for name, text in transcript if name == stream)


def test_every_command_writes_only_through_the_output_object(
    cli: Cli, tmp_path: Path, transcript: list[tuple[str, str]]
) -> None:
    requests = write_jsonl(tmp_path / "req.jsonl", chat_records(3, fail={1}))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"custom_id": "x"}\nnot json\n')
    batch_id = cli(
        "create", "--file", str(requests), "-m", "command-r", "--watch", "-q"
    ).stdout.strip()
    dataset_id = json.loads(cli("get", batch_id, "--json").stdout)["input_dataset_id"]
    runs: list[tuple[tuple[str, ...], int]] = [
        (("list", "--limit", "3"), 0),
        (("list", "--limit", "3", "--json"), 0),
        (("list", "--limit", "3", "--jsonl"), 0),
        (("list", "--limit", "3", "--format", "csv"), 0),
        (("list", "-q", "--limit", "2"), 0),
        (("list", "--query", "[].id"), 0),
        (("get", batch_id), 0),
        (("get", batch_id, "--query", "status"), 0),
        (("watch", batch_id), 0),
        (("watch", batch_id, "--json"), 0),
        (("results", batch_id, "-o", "-"), 0),
        (("results", batch_id, "-o", str(tmp_path / "r.csv"), "--format", "csv"), 0),
        (("cancel", batch_id, "--json"), 5),
        (("datasets", "validate", str(requests)), 0),
        (("datasets", "validate", str(bad)), 5),
        (("datasets", "upload", str(requests), "--wait", "-q"), 0),
        (("datasets", "list", "--limit", "2"), 0),
        (("datasets", "get", dataset_id), 0),
        (("datasets", "get", dataset_id, "--json"), 0),
        (("datasets", "usage"), 0),
        (("datasets", "usage", "--json"), 0),
        (("get", "no-such-batch"), 4),
        (("config",), 0),
        (("config", "--json"), 0),
        (("help", "exit-codes"), 0),
        (("help", "nope"), 2),
    ]
    runs += [
        (("login", "--no-check", "--profile", "transcript"), 0),
        (
            (
                "demo",
                "--dir",
                str(tmp_path / "demo"),
                "--records",
                "4",
                "--failures",
                "1",
                "--records-per-second",
                "1000",
            ),
            0,
        ),
    ]
    for args, code in runs:
        transcript.clear()
        result = cli(*args, exit_code=code, input="a-key-for-the-transcript-test\n")
        assert result.stdout == _written(transcript, "stdout"), args
        assert result.stderr == _written(transcript, "stderr"), args
        assert result.stdout or result.stderr, args
