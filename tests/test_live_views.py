"""The live views as a person sees them: the installed ``cbatch`` in a real pseudo-terminal
at 80 and 200 columns, its output read by a terminal emulator (pyte), against a sandbox on
loopback whose batches run a few seconds each, many at once.

Each test asserts on the emulated screen, and on its scrollback where a view must leave
nothing behind: a frame found there is one the view failed to erase (it scrolled, or a
line was written into it).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohere_batch_cli.api.client import CohereClient
from tests.conftest import TEST_KEY
from tests.support.flows import chat_records, make_dataset, wait_terminal, write_jsonl
from tests.support.outage_proxy import OutageProxy
from tests.support.terminal import Terminal, frame_lines

PACE = 20.0
"""Records a second per batch: a 60-record batch runs 3 s, all of them at once."""


@pytest.fixture(scope="module")
def paced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    settings = SandboxSettings(
        data_dir=tmp_path_factory.mktemp("live-sandbox"),
        records_per_second=PACE,
        queue_delay=0.0,
        validation_delay=0.0,
        output_ready_delay=0.0,
    )
    with SandboxServer(settings) as server:
        yield server


@pytest.fixture(scope="module")
def dataset(paced: object, tmp_path_factory: pytest.TempPathFactory) -> str:
    """60 requests, the first 3 failing: a batch of it ends 57 ok, 3 failed."""
    path = tmp_path_factory.mktemp("live-input") / "in.jsonl"
    with CohereClient(TEST_KEY, paced.base_url) as client:  # type: ignore[attr-defined]
        return make_dataset(client, write_jsonl(path, chat_records(60, fail={0, 1, 2})))


@pytest.fixture(scope="module")
def long_dataset(paced: object, tmp_path_factory: pytest.TempPathFactory) -> str:
    """400 requests: a batch of it runs 20 s, long enough to be interrupted or cut off mid-way."""
    path = tmp_path_factory.mktemp("live-long") / "long.jsonl"
    with CohereClient(TEST_KEY, paced.base_url) as client:  # type: ignore[attr-defined]
        return make_dataset(client, write_jsonl(path, chat_records(400)))


def _batches(server: object, dataset_id: str, names: list[str]) -> list[str]:
    with CohereClient(TEST_KEY, server.base_url) as client:  # type: ignore[attr-defined]
        return [
            client.create_batch(name=name, input_dataset_id=dataset_id, model="command-r").id
            for name in names
        ]


def _cancel(server: object, ids: list[str]) -> None:
    """Tidy: a test's batches must not keep the module's sandbox busy."""
    with CohereClient(TEST_KEY, server.base_url) as client:  # type: ignore[attr-defined]
        for batch_id in ids:
            if not client.get_batch(batch_id).status.is_terminal:
                client.cancel_batch(batch_id)


def _bar_column(line: str) -> int:
    return min(line.index(c) for c in "█▓░" if c in line)


# -- item 12: many batches at 80 columns ----------------------------------------------------


@pytest.mark.parametrize("columns", [80, 200])
def test_a_watch_of_twenty_batches_shows_each_short_id_in_aligned_columns_and_leaves_no_frame(
    paced: object, long_dataset: str, tmp_path: Path, columns: int
) -> None:
    names = [f"load-test-run-against-staging-{n:02d}" for n in range(20)]
    ids = _batches(paced, long_dataset, names)  # 20 s each: still running however slow the start
    term = Terminal(paced.base_url, tmp_path, "watch", *ids, columns=columns)  # type: ignore[attr-defined]
    try:
        screen = term.wait_for(
            lambda lines: sum("in progress" in line and "%" in line for line in lines) >= 15,
            what="a row per running batch",
        )
        rows = [line for line in screen if "load-test-run" in line]
        assert len(rows) == 20, term.dump()
        for batch_id, name in zip(ids, names, strict=True):
            (row,) = [r for r in rows if batch_id[:8] in r]  # its short id, on its own row
            assert row.startswith("load-test-run"), row
            if columns >= 200:
                assert row.startswith(name + " "), "with room, the whole name"
        assert all(len(r) <= columns for r in rows)
        assert len({_bar_column(r) for r in rows}) == 1, "bars line up:\n" + "\n".join(rows)
        _cancel(paced, ids)
        assert term.finish() == 9
    finally:
        term.close()
        _cancel(paced, ids)
    assert "all 20 batches ended: 20 canceled (exit 9)" in "\n".join(term.display), term.dump()
    assert frame_lines(term.everything) == [], "no frame left behind:\n" + term.dump()


def test_a_view_taller_than_the_terminal_collapses_ended_rows_and_never_scrolls(
    paced: object, dataset: str, long_dataset: str, tmp_path: Path
) -> None:
    """20 batches in 12 lines: the running ones keep a row, the ended ones collapse into a count."""
    ids = _batches(paced, long_dataset, [f"long-{n}" for n in range(6)])
    ids += _batches(paced, dataset, [f"short-{n:02d}" for n in range(14)])
    term = Terminal(paced.base_url, tmp_path, "watch", *ids, columns=80, rows=12)  # type: ignore[attr-defined]
    try:
        collapsed = re.compile(r"… and (\d+) more ended: \1 completed$")
        screen = term.wait_for(
            lambda lines: any(collapsed.match(line) for line in lines),
            what="the ended batches collapsed",
        )
        assert sum(line.startswith("long-") for line in screen) == 6, "every running batch shown"
        (more,) = [m for line in screen if (m := collapsed.match(line))]
        shown = sum(line.startswith("short-") for line in screen)
        assert shown + int(more.group(1)) == 14, term.dump()
        assert len(frame_lines(screen)) <= 10, term.dump()
        assert "watching for" in [line for line in screen if line][-1], "the footer is last"
        _cancel(paced, ids)
        assert term.finish() == 9
    finally:
        term.close()
        _cancel(paced, ids)
    assert frame_lines(term.everything) == [], "no frame left behind:\n" + term.dump()


@pytest.mark.parametrize("columns", [80, 200])
def test_jobs_watch_shows_every_part_number_and_leaves_no_frame(
    paced: object, tmp_path: Path, columns: int
) -> None:
    """Each part's row keeps its number; the lines saying parts ended go above the view."""
    import subprocess

    from tests.support.installed import cbatch_env, cbatch_path

    path = write_jsonl(tmp_path / "job.jsonl", chat_records(8 * 120, fail={1}))
    env = cbatch_env(paced.base_url, tmp_path)  # type: ignore[attr-defined]
    made = subprocess.run(
        [cbatch_path(), "jobs", "create", str(path), "--max-records-per-batch", "120", "-m",
         "command-r", "-n", "load-test-run-against-staging", "-q"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    job_id = made.stdout.strip()
    term = Terminal(paced.base_url, tmp_path, "jobs", "watch", job_id, columns=columns)  # type: ignore[attr-defined]
    try:
        screen = term.wait_for(
            lambda lines: sum(f"[job {job_id} part" in line for line in lines) >= 8,
            what="a row per part",
        )
        rows = [line for line in screen if f"[job {job_id} part" in line and "%" in line]
        shown = sorted(int(m.group(1)) for r in rows if (m := re.search(r" part (\d+)\]", r)))
        assert shown == list(range(1, 9)), "every part number, whole:\n" + "\n".join(rows)
        assert term.finish() == 0
    finally:
        term.close()
    assert frame_lines(term.everything) == [], "no frame left behind:\n" + term.dump()
    ended = [line for line in term.everything if line.startswith(f"job {job_id}: ")]
    assert any("8 of 8 parts ended" in line for line in ended), term.dump()


@pytest.mark.parametrize("columns", [80, 200])
def test_ctrl_c_leaves_each_line_of_the_view_once(
    paced: object, long_dataset: str, tmp_path: Path, columns: int
) -> None:
    ids = _batches(paced, long_dataset, [f"interrupted-{n}" for n in range(3)])
    term = Terminal(paced.base_url, tmp_path, "watch", *ids, columns=columns)  # type: ignore[attr-defined]
    try:
        term.wait_for(lambda lines: sum("ETA" in line for line in lines) == 3, what="three ETAs")
        term.interrupt()
        assert term.finish() == 130
    finally:
        term.close()
        _cancel(paced, ids)
    text = term.everything
    for batch_id in ids:
        heads = [line for line in text if batch_id in line and "interrupted-" in line]
        assert len(heads) == 1, f"{batch_id} shown {len(heads)} times:\n" + term.dump()
    assert len([line for line in text if "watching for" in line]) == 1, term.dump()
    assert any(line.startswith("interrupted: stopped watching") for line in text)


@pytest.mark.parametrize("columns", [80, 200])
def test_a_completed_batch_with_failed_records_fills_its_bar_to_the_last_cell(
    paced: object, tmp_path: Path, columns: int
) -> None:
    with CohereClient(TEST_KEY, paced.base_url) as client:  # type: ignore[attr-defined]
        ds = make_dataset(client, write_jsonl(tmp_path / "20.jsonl", chat_records(20, fail={0, 1, 2})))  # fmt: skip
        batch = client.create_batch(name="seventeen-three", input_dataset_id=ds, model="command-r")
        wait_terminal(client, batch.id)
    term = Terminal(paced.base_url, tmp_path, "watch", batch.id, columns=columns)  # type: ignore[attr-defined]
    try:
        assert term.finish() == 0
    finally:
        term.close()
    (bar,) = [line for line in term.display if "100%" in line]
    cells = bar[_bar_column(bar) :].split(" ")[0]
    assert "20/20 records (17 ok, 3 failed)" in bar
    assert "░" not in cells and cells.count("▓") >= 3, bar


# -- item 14: outages -----------------------------------------------------------------------


@pytest.mark.parametrize("columns", [80, 200])
def test_an_outage_marks_the_view_stale_since_the_last_update_and_says_what_failed(
    paced: object, long_dataset: str, tmp_path: Path, columns: int
) -> None:
    (batch_id,) = _batches(paced, long_dataset, ["outage-watch"])
    proxy = OutageProxy(paced.base_url)  # type: ignore[attr-defined]
    term = Terminal(
        proxy.base_url, tmp_path, "--retries", "0", "watch", batch_id,
        "--interval", "0.3", "--max-interval", "0.6", "--outage-limit", "1m", columns=columns,
    )  # fmt: skip
    try:
        term.wait_for(lambda lines: any("ETA" in line for line in lines), what="an ETA")
        proxy.answer(500)
        screen = term.wait_for(
            lambda lines: any("stale: last update" in line for line in lines), what="stale"
        )
        assert any(
            "poll failed: the server answered HTTP 500: internal server error" in line
            for line in screen
        ), term.dump()
        assert not any("ETA" in line for line in screen), "no countdown on stale data"
        assert not any("cannot reach" in line for line in term.everything)
        elapsed = [line for line in screen if "elapsed" in line]
        time.sleep(1.5)
        term.pump()
        assert [line for line in term.display if "elapsed" in line] == elapsed, (
            "stale data does not keep counting"
        )
        proxy.down()
        term.wait_for(
            lambda lines: any(f"could not connect to 127.0.0.1:{proxy.port}" in x for x in lines),
            what="could not connect to host:port",
        )
        proxy.up()
        term.wait_for(
            lambda lines: (
                any("the API answers again" in line for line in lines)
                and not any("stale:" in line for line in lines)
            ),
            what="fresh again",
        )
        _cancel(paced, [batch_id])
        assert term.finish() == 9
    finally:
        term.close()
        proxy.close()
        _cancel(paced, [batch_id])
    assert frame_lines(term.history) == [], "the view never scrolled:\n" + term.dump()


# -- item 13: tables ------------------------------------------------------------------------


def _screen_rows(term: Terminal, marker: str) -> list[str]:
    return [line for line in term.everything if marker in line]


@pytest.fixture(scope="module")
def listed(paced: object, dataset: str) -> list[str]:
    """Two finished batches with long names, on the model whose name is 17 characters long."""
    with CohereClient(TEST_KEY, paced.base_url) as client:  # type: ignore[attr-defined]
        ids = [
            client.create_batch(
                name=f"table-layout-against-staging-with-a-long-name-{n}",
                input_dataset_id=dataset,
                model="command-r-08-2024",
            ).id
            for n in range(2)
        ]
        for batch_id in ids:
            wait_terminal(client, batch_id)
    return ids


@pytest.mark.parametrize("columns", [80, 100, 200])
def test_list_headers_stand_over_their_values_and_names_keep_room(
    paced: object, listed: list[str], tmp_path: Path, columns: int
) -> None:
    term = Terminal(paced.base_url, tmp_path, "list", "--name", "table-layout", columns=columns)  # type: ignore[attr-defined]
    try:
        assert term.finish() == 0
    finally:
        term.close()
    (header,) = [line for line in term.display if line.startswith("ID ")]
    rows = [line for line in term.display if any(i in line for i in listed)]
    assert len(rows) == 2 and all(len(line) <= columns for line in [header, *rows]), term.dump()
    for row in rows:
        name = row.split("  ")[1]
        assert len(name) >= 20, f"a name cut to {len(name)} while other columns could go: {row!r}"
        for word, value in (("STATUS", "completed"), ("MODEL", "command-r-08-2024"), ("PROGRESS", "60/60")):  # fmt: skip
            if word in header:
                assert header.index(word) == row.index(value), (
                    f"{word} over its values:\n{header}\n{row}"
                )
    if columns >= 200:
        assert "MODEL" in header and "PROGRESS" in header and "CREATED" in header


def test_list_watch_at_80_columns_adds_a_row_only_when_it_reads_differently(
    paced: object, long_dataset: str, tmp_path: Path
) -> None:
    (batch_id,) = _batches(paced, long_dataset, ["list-watch-narrow"])
    term = Terminal(
        paced.base_url, tmp_path, "list", "--watch", "--name", "list-watch-narrow",
        "--interval", "0.2", columns=80,
    )  # fmt: skip
    try:
        term.wait_for(lambda lines: any(batch_id in line for line in lines), what="the row")
        time.sleep(2.0)  # about ten rounds, each seeing the progress move
        term.pump()
        _cancel(paced, [batch_id])
        term.wait_for(
            lambda lines: any(batch_id in x and "cancel" in x for x in lines), what="canceled"
        )
        term.interrupt()
        term.finish()
    finally:
        term.close()
        _cancel(paced, [batch_id])
    rows = _screen_rows(term, batch_id)
    assert len(rows) == len(set(rows)) and 2 <= len(rows) <= 4, "\n".join(rows)


def test_jobs_get_at_80_columns_is_a_table_that_fits(paced: object, tmp_path: Path) -> None:
    import subprocess

    from tests.support.installed import cbatch_env, cbatch_path

    path = write_jsonl(tmp_path / "job.jsonl", chat_records(3 * 20, fail={1}))
    env = cbatch_env(paced.base_url, tmp_path)  # type: ignore[attr-defined]
    made = subprocess.run(
        [cbatch_path(), "jobs", "create", str(path), "--max-records-per-batch", "20", "-m",
         "command-r", "-n", "job-get-at-80", "--watch", "-q"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    job_id = made.stdout.strip().splitlines()[0]
    term = Terminal(paced.base_url, tmp_path, "jobs", "get", job_id, columns=80)  # type: ignore[attr-defined]
    try:
        assert term.finish() == 0
    finally:
        term.close()
    raw = "".join(term.raw).replace("\r\n", "\n")
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in raw.split("\n")]
    assert all(len(line) <= 80 for line in lines), "no line wraps:\n" + "\n".join(lines)
    (header,) = [line for line in lines if line.lstrip().startswith("PART")]
    assert header.split()[:4] == ["PART", "STATUS", "BATCH", "RECORDS"], header
    parts = [line for line in lines if re.match(r"\s*\d+  completed  [0-9a-f-]{36}  ", line)]
    assert len(parts) == 3, "a row per part, its batch id whole:\n" + "\n".join(lines)


# -- the docs ---------------------------------------------------------------------------------


def test_the_job_view_in_watch_and_ci_md_is_what_render_state_draws_at_80_columns() -> None:
    """docs/watch-and-ci.md shows a job of 8 parts at 80 columns: the same lines, drawn here."""
    import io

    from rich.console import Console

    from cohere_batch_cli.api.models import Batch
    from cohere_batch_cli.output.watch_views import BatchView, WatchState, render_state

    page = (Path(__file__).parent.parent / "docs" / "watch-and-ci.md").read_text(encoding="utf-8")
    start = page.index("```text\nsupport-faq [job")
    documented = page[start + len("```text\n") : page.index("```", start + 3)].splitlines()
    outcomes = [(25, 3), (24, 1), (38, 2), (10, 0), (12, 0), (14, 0), (16, 0), (18, 0)]
    ids = [f"{line.split()[5]}-0000-4000-8000-000000000000" for line in documented[:-1]]
    state = WatchState(ids, width=80, height=24, elapsed=12.0)
    for n, (batch_id, (ok, failed)) in enumerate(zip(ids, outcomes, strict=True)):
        done = ok + failed == 40
        raw = {
            "id": batch_id, "name": f"support-faq [job uw0wyqjdrp part {n + 1}]",
            "status": "BATCH_STATUS_COMPLETED" if done else "BATCH_STATUS_IN_PROGRESS",
            "num_records": 40, "num_successful_records": ok, "num_failed_records": failed,
        }  # fmt: skip
        state.views[batch_id] = BatchView(Batch.from_api(raw), rate=None if done else 12.5, eta=3.0)
    console = Console(file=io.StringIO(), width=80, height=24, no_color=True)
    console.print(render_state(state))
    assert console.file.getvalue().splitlines() == documented  # type: ignore[attr-defined]


def test_the_download_bar_says_the_bytes_received_while_no_record_is_decodable_yet(
    tmp_path: Path,
) -> None:
    """A slow link: the first half of the one part arrives, then silence; the bar, counting
    records, cannot move yet, so it says what has come (issue 24, item 20)."""
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
    from tests.sandbox.sandbox_client import Api, chat_lines
    from tests.support.storage_proxy import StorageProxy

    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, records_per_second=5000.0, output_ready_delay=0.0,
        link_ttl=60,
    )  # fmt: skip
    with SandboxServer(settings) as server:
        api = Api(server)
        done = api.run(chat_lines(3000))
        api.close()
        with StorageProxy(server.base_url, hold=4.0) as proxy:
            term = Terminal(proxy.base_url, tmp_path, "results", done["id"], "-o", "out.jsonl",
                            columns=120)  # fmt: skip
            try:
                screen = term.wait_for(
                    lambda lines: any(re.search(r"[1-9][\d.]* [KM]?B received", ln) for ln in lines),
                    timeout=30, what="the bytes received beside the bar",
                )  # fmt: skip
                bar = next(line for line in screen if "received" in line)
                assert "downloading results" in bar and "0/3000" in bar.replace(",", ""), bar
                assert term.finish() == 0
            finally:
                term.close()
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 3000
