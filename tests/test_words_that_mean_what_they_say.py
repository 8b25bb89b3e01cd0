"""What cbatch says names what the user gave and what really happens (issue 24, items 7, 9 and 10).

Each test runs the command a user would and reads what it printed: an input read from
stdin is ``stdin`` in every line, never the temporary copy cbatch reads it from; a job's
words are one vocabulary; a hint names only options the command takes.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli
from tests.support.flows import chat_records, write_jsonl

MODEL = "command-r-08-2024"


def test_create_file_dash_names_stdin_in_every_line(cli: Cli, tmp_path: Path) -> None:
    lines = write_jsonl(tmp_path / "r.jsonl", chat_records(3)).read_text(encoding="utf-8")
    result = cli("create", "--file", "-", "--model", MODEL, "-q", input=lines)
    assert "stdin: every record fits the context of" in result.stderr
    assert "cbatch-input" not in result.stderr and "/tmp" not in result.stderr, result.stderr
