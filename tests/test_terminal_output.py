"""What a person at a terminal sees: tables, colour and words, in a real pseudo-terminal.

CliRunner's stdout is never a terminal, so these run the installed ``cbatch``
under pexpect, against the session's sandbox.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from cohere_batch_cli.api.client import CohereClient
from tests.conftest import TEST_KEY
from tests.support.flows import chat_records, make_batch, make_dataset, wait_terminal, write_jsonl

pexpect = pytest.importorskip("pexpect")
CBATCH = shutil.which("cbatch", path=os.path.dirname(sys.executable)) or shutil.which("cbatch")
pytestmark = pytest.mark.skipif(CBATCH is None, reason="cbatch is not installed in this environment")


def run_in_terminal(
    base_url: str, *args: str, dimensions: tuple[int, int] = (40, 160), **env_extra: str
) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CO_", "NO_COLOR", "FORCE_COLOR", "COLUMNS"))}
    env.update({"CO_API_KEY": TEST_KEY, "CO_API_URL": base_url, "TERM": "xterm-256color"})
    env.update(env_extra)
    child = pexpect.spawn(CBATCH, list(args), env=env, encoding="utf-8", timeout=20, dimensions=dimensions)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before or ""


@pytest.fixture
def finished(sandbox: object, tmp_path: Path) -> str:
    with CohereClient(TEST_KEY, sandbox.base_url) as client:  # type: ignore[attr-defined]
        batch = make_batch(client, tmp_path, 3, fail={1}, name="terminal-view")
        wait_terminal(client, batch.id)
    return batch.id


def test_list_is_a_coloured_table_with_words_for_statuses(sandbox: object, finished: str) -> None:
    code, out = run_in_terminal(sandbox.base_url, "list", "--limit", "5")  # type: ignore[attr-defined]
    assert code == 0, out
    header = next(line for line in out.splitlines() if "STATUS" in line)
    assert all(word in header for word in ("ID", "NAME", "MODEL", "PROGRESS", "CREATED"))
    assert finished in out, "ids are shown whole"
    assert "completed" in out and "BATCH_STATUS_" not in out
    assert "\x1b[" in out, "colour on a terminal"


def test_no_color_and_the_flag_turn_colour_off(sandbox: object, finished: str) -> None:
    for extra_args, env in (((), {"NO_COLOR": "1"}), (("--no-color",), {}), ((), {"TERM": "dumb"})):
        code, out = run_in_terminal(sandbox.base_url, *extra_args, "get", finished, **env)  # type: ignore[attr-defined]
        assert code == 0 and "completed" in out
        assert "\x1b[3" not in out and "\x1b[9" not in out, (extra_args, env, out)


def test_get_shows_fields_readably(sandbox: object, finished: str) -> None:
    code, out = run_in_terminal(sandbox.base_url, "get", finished)  # type: ignore[attr-defined]
    assert code == 0
    assert "3/3 (100%), 1 failed" in out and "Output dataset" in out


# -- layouts at the widths people use -------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LONG_NAME = "terminal-layout " + "x" * 5000


def screen_lines(out: str) -> list[str]:
    return [ANSI.sub("", line) for line in out.replace("\r\n", "\n").split("\n") if line.strip()]


@pytest.fixture(scope="module")
def layout_batches(sandbox: object, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Three finished batches whose names hold the marker: one short, one of 5,000 characters, one failed."""
    tmp = tmp_path_factory.mktemp("layout")
    made = {}
    with CohereClient(TEST_KEY, sandbox.base_url) as client:  # type: ignore[attr-defined]
        for n, (name, fail) in enumerate((("terminal-layout short", set()), (LONG_NAME, {0}), ("terminal-layout all-fail", {0, 1}))):
            dataset_id = make_dataset(client, write_jsonl(tmp / f"layout-{n}.jsonl", chat_records(2, fail=fail)))
            batch = client.create_batch(name=name, input_dataset_id=dataset_id, model="command-r")
            made[batch.id] = wait_terminal(client, batch.id).status.label
    return made


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_list_fits_the_terminal_one_row_a_line_ids_and_statuses_whole(
    sandbox: object, layout_batches: dict[str, str], columns: int
) -> None:
    code, out = run_in_terminal(sandbox.base_url, "list", "--name", "terminal-layout", dimensions=(40, columns))  # type: ignore[attr-defined]
    assert code == 0, out
    lines = screen_lines(out)
    assert len(lines) == 1 + len(layout_batches), "a header and one line per batch:\n" + "\n".join(lines)
    header, rows = lines[0], lines[1:]
    assert header.split()[:2] == ["ID", "NAME"] and "STATUS" in header.split()
    for line in lines:
        assert len(line) <= columns, f"{len(line)} > {columns}: {line!r}"
    for batch_id, status in layout_batches.items():
        (row,) = [r for r in rows if batch_id in r]  # the id whole, on one line
        assert f"  {status}" in row, f"status {status!r} whole in {row!r}"
    long_id = list(layout_batches)[1]
    long_row = next(r for r in rows if long_id in r)
    assert "…" in long_row, "a long name is cut with an ellipsis"
    if columns >= 80:
        assert "PROGRESS" in header and "2/2 (100%), 1 failed" in long_row
    if columns >= 120:
        assert header.split() == ["ID", "NAME", "STATUS", "MODEL", "PROGRESS", "CREATED"]


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_datasets_list_keeps_ids_and_validation_at_every_width(sandbox: object, layout_batches: dict[str, str], columns: int) -> None:
    code, out = run_in_terminal(sandbox.base_url, "datasets", "list", "--limit", "20", dimensions=(40, columns))  # type: ignore[attr-defined]
    assert code == 0, out
    lines = screen_lines(out)
    header = lines[0].split()
    assert header[0] == "ID" and "VALIDATION" in header
    widest_id = max(len(line.split()[0]) for line in lines[1:])
    for line in lines[1:]:
        assert re.search(r"  (validated|failed|queued|processing|skipped)\b", line), line
        # Only ids and the validation status are never cut: nothing else may overflow.
        assert len(line) <= max(columns, widest_id + 2 + len("VALIDATION")), line


def test_a_piped_table_takes_its_width_from_columns(sandbox: object, layout_batches: dict[str, str]) -> None:
    """``cbatch list --format table | less``: stdout is a pipe, the table still fits."""
    from tests.conftest import Cli

    cli = Cli(sandbox.base_url, TEST_KEY)  # type: ignore[attr-defined]
    for columns in (60, 100):
        out = cli("list", "--name", "terminal-layout", "--format", "table", env={"COLUMNS": str(columns)}).stdout
        lines = out.splitlines()
        assert len(lines) == 1 + len(layout_batches) and lines[0].startswith("ID")
        assert all(len(line) <= columns for line in lines), out
        assert "\x1b[" not in out, "no colour into a pipe"
