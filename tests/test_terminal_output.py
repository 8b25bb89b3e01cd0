"""What a person at a terminal sees: tables, colour and words, in a real pseudo-terminal.

CliRunner's stdout is never a terminal, so these run the installed ``cbatch``
under pexpect, against the session's sandbox.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cohere_batch_cli.api.client import CohereClient
from tests.conftest import TEST_KEY
from tests.support.flows import chat_records, make_batch, make_dataset, wait_terminal, write_jsonl

pexpect = pytest.importorskip("pexpect")
CBATCH = shutil.which("cbatch", path=os.path.dirname(sys.executable)) or shutil.which("cbatch")
pytestmark = pytest.mark.skipif(
    CBATCH is None, reason="cbatch is not installed in this environment"
)


def run_in_terminal(
    base_url: str, *args: str, dimensions: tuple[int, int] = (40, 160), **env_extra: str
) -> tuple[int, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CO_", "NO_COLOR", "FORCE_COLOR", "COLUMNS"))
    }
    env.update({"CO_API_KEY": TEST_KEY, "CO_API_URL": base_url, "TERM": "xterm-256color"})
    env.update(env_extra)
    child = pexpect.spawn(
        CBATCH, list(args), env=env, encoding="utf-8", timeout=20, dimensions=dimensions
    )
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


def test_the_error_label_is_red_at_a_terminal_and_plain_in_a_log(tmp_path: Path) -> None:
    """A person spots the failure at a glance; a log, a pipe and NO_COLOR get the plain word."""
    missing = str(tmp_path / "missing.jsonl")
    code, out = run_in_terminal("http://127.0.0.1:1", "create", "--file", missing, "--model", "m")
    assert code != 0
    assert out.startswith("\x1b[1;31merror:\x1b[0m "), repr(out)
    assert "\x1b[" not in out.split("error:\x1b[0m ", 1)[1], (
        "the message keeps the terminal's colour"
    )
    _, plain = run_in_terminal(
        "http://127.0.0.1:1", "create", "--file", missing, "--model", "m", NO_COLOR="1"
    )
    assert plain.startswith("error: ") and "\x1b[" not in plain
    piped = subprocess.run(
        [CBATCH, "create", "--file", missing, "--model", "m"],
        capture_output=True, text=True, env={**os.environ, "CO_API_KEY": TEST_KEY}, timeout=30,
    )  # fmt: skip
    assert piped.stderr.startswith("error: ") and "\x1b[" not in piped.stderr


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
        for n, (name, fail) in enumerate(
            (
                ("terminal-layout short", set()),
                (LONG_NAME, {0}),
                ("terminal-layout all-fail", {0, 1}),
            )
        ):
            dataset_id = make_dataset(
                client, write_jsonl(tmp / f"layout-{n}.jsonl", chat_records(2, fail=fail))
            )
            batch = client.create_batch(name=name, input_dataset_id=dataset_id, model="command-r")
            made[batch.id] = wait_terminal(client, batch.id).status.label
    return made


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_list_fits_the_terminal_one_row_a_line_ids_and_statuses_whole(
    sandbox: object, layout_batches: dict[str, str], columns: int
) -> None:
    code, out = run_in_terminal(
        sandbox.base_url, "list", "--name", "terminal-layout", dimensions=(40, columns)
    )  # type: ignore[attr-defined]
    assert code == 0, out
    lines = screen_lines(out)
    assert len(lines) == 1 + len(layout_batches), "a header and one line per batch:\n" + "\n".join(
        lines
    )
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
    if columns >= 80:  # a name keeps 20 columns while a less important column can go instead
        assert len(long_row.split("  ")[1]) >= 20, long_row
    if columns >= 120:
        assert header.split() == ["ID", "NAME", "STATUS", "MODEL", "PROGRESS"]
        assert "2/2 (100%), 1 failed" in long_row


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_datasets_list_keeps_ids_and_validation_at_every_width(
    sandbox: object, layout_batches: dict[str, str], columns: int
) -> None:
    code, out = run_in_terminal(
        sandbox.base_url, "datasets", "list", "--limit", "20", dimensions=(40, columns)
    )  # type: ignore[attr-defined]
    assert code == 0, out
    # the table's lines: a session's sandbox may hold more than 20, said below the table
    lines = [line for line in screen_lines(out) if "shown, more exist" not in line]
    header = lines[0].split()
    assert header[0] == "ID" and "VALIDATION" in header
    widest_id = max(len(line.split()[0]) for line in lines[1:])
    for line in lines[1:]:
        assert re.search(r"  (validated|failed|queued|processing|skipped)\b", line), line
        # Only ids and the validation status are never cut: nothing else may overflow.
        assert len(line) <= max(columns, widest_id + 2 + len("VALIDATION")), line


def test_a_piped_table_takes_its_width_from_columns(
    sandbox: object, layout_batches: dict[str, str]
) -> None:
    """``cbatch list --format table | less``: stdout is a pipe, the table still fits."""
    from tests.conftest import Cli

    cli = Cli(sandbox.base_url, TEST_KEY)  # type: ignore[attr-defined]
    for columns in (60, 100):
        out = cli(
            "list", "--name", "terminal-layout", "--format", "table", env={"COLUMNS": str(columns)}
        ).stdout
        lines = out.splitlines()
        assert len(lines) == 1 + len(layout_batches) and lines[0].startswith("ID")
        assert all(len(line) <= columns for line in lines), out
        assert "\x1b[" not in out, "no colour into a pipe"


# -- the live watch of many batches ---------------------------------------------------------


def _view_lines(state: object, width: int, height: int) -> list[str]:
    import io as _io

    from rich.console import Console

    from cohere_batch_cli.output.watch_views import render_state

    console = Console(
        file=_io.StringIO(), width=width, height=height, no_color=True, force_terminal=False
    )
    state.width, state.height = width, height  # type: ignore[attr-defined]
    console.print(render_state(state))  # type: ignore[arg-type]
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_many_batches_get_a_line_each_the_footer_stays_and_statuses_are_whole(columns: int) -> None:
    from cohere_batch_cli.api.models import Batch
    from cohere_batch_cli.output.watch_views import BatchView, WatchState

    ids = [f"{n:08x}-0000-4000-8000-000000000000" for n in range(55)]
    state = WatchState(ids)
    for n, batch_id in enumerate(ids):
        status = "IN_PROGRESS" if n % 2 else "COMPLETED"
        raw = {
            "id": batch_id,
            "name": "a rather long batch name " * (n % 4),
            "status": f"BATCH_STATUS_{status}",
            "num_records": 100,
            "num_successful_records": n,
        }
        state.views[batch_id] = BatchView(Batch.from_api(raw), rate=20.0, eta=3.0)
    lines = _view_lines(state, columns, 24)
    assert len(lines) <= 24 and "done  ·  watching for" in lines[-1], "the footer is always there"
    assert all(len(line) <= columns for line in lines)
    rows = lines[:-2]
    assert all(("in progress" in r or "completed" in r) for r in rows), (
        "a status on every batch line"
    )
    assert "more" in lines[-2]
    few = WatchState(ids[:2])
    for batch_id in ids[:2]:
        raw = {
            "id": batch_id,
            "name": "n" * 300,
            "status": "BATCH_STATUS_IN_PROGRESS",
            "num_records": 10,
        }
        few.views[batch_id] = BatchView(Batch.from_api(raw))
    heads = [line for line in _view_lines(few, columns, 24) if line.startswith("n")]
    assert len(heads) == 2 and all(line.endswith("in progress") for line in heads), heads


def test_a_watch_of_many_ends_with_a_short_summary_and_whole_commands(
    sandbox: object, tmp_path: Path
) -> None:
    with CohereClient(TEST_KEY, sandbox.base_url) as client:  # type: ignore[attr-defined]
        ids = [make_batch(client, tmp_path, 1, name=f"many-{n}").id for n in range(6)]
        for batch_id in ids:
            wait_terminal(client, batch_id)
    code, out = run_in_terminal(sandbox.base_url, "watch", *ids, dimensions=(20, 60))  # type: ignore[attr-defined]
    assert code == 0, out
    text = ANSI.sub("", out)
    assert "all 6 batches ended: 6 completed (exit 0)" in text
    assert "results of the 6 completed: cbatch results ID -o results-ID.jsonl" in text
    assert "✓" not in text, "no line per completed batch at the end"
    code, out = run_in_terminal(sandbox.base_url, "watch", ids[0], dimensions=(20, 60))  # type: ignore[attr-defined]
    assert f"get results:    cbatch results {ids[0]} -o results.jsonl" in ANSI.sub("", out).replace(
        "\r\n", "\n"
    ), "never broken across lines"


def test_datasets_delete_asks_at_a_terminal_and_says_what_stops_working(
    sandbox: object, tmp_path: Path
) -> None:
    with CohereClient(TEST_KEY, sandbox.base_url) as client:  # type: ignore[attr-defined]
        batch = wait_terminal(client, make_batch(client, tmp_path, 1, name="delete-me").id)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CO_", "COLUMNS"))}
    env.update({"CO_API_KEY": TEST_KEY, "CO_API_URL": sandbox.base_url, "NO_COLOR": "1"})  # type: ignore[attr-defined]
    child = pexpect.spawn(
        CBATCH,
        ["datasets", "delete", batch.output_dataset_id],
        env=env,
        encoding="utf-8",
        timeout=20,
    )
    child.expect(
        r"results of batch .*'cbatch results' for it will fail \(exit 4, not found\)\. \[y/N\] "
    )
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    with CohereClient(TEST_KEY, sandbox.base_url) as client:  # type: ignore[attr-defined]
        assert client.get_dataset(batch.output_dataset_id or "").id


def test_watch_with_no_id_at_a_terminal_offers_the_running_batches(
    sandbox: object, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CO_", "COLUMNS"))}
    env.update({"CO_API_KEY": TEST_KEY, "CO_API_URL": sandbox.base_url, "NO_COLOR": "1"})  # type: ignore[attr-defined]
    with CohereClient(TEST_KEY, sandbox.base_url) as client:  # type: ignore[attr-defined]
        running = make_batch(client, tmp_path, 20000, name="offered")
        child = pexpect.spawn(CBATCH, ["watch", "--plain"], env=env, encoding="utf-8", timeout=30)
        child.expect("Batches still running:")
        child.expect(r"(\d+)\s+" + running.id)
        number = child.match.group(1)
        child.expect(r"Watch which\? ")
        child.sendline(number)
        child.expect(running.id)
        client.cancel_batch(running.id)
        child.expect(pexpect.EOF)
        child.close()
