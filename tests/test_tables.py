"""The table layout itself: widths fixed once, columns dropped by priority, cells cut, never split."""

from __future__ import annotations

import io
from dataclasses import dataclass

from cohere_batch_cli.output.printer import Column
from cohere_batch_cli.output.table import TableWriter, cut, plan


@dataclass
class Row:
    id: str
    name: str
    status: str
    when: str


COLUMNS = (
    Column("ID", lambda r: r.id, whole=True, priority=0),
    Column("NAME", lambda r: r.name, priority=1, min_width=8),
    Column("STATUS", lambda r: r.status, whole=True, priority=0),
    Column("CREATED", lambda r: r.when, whole=True, priority=2),
)


def rows(n: int, *, long_from: int | None = None) -> list[Row]:
    return [
        Row(
            f"id-{i:06d}",
            ("n" * 300) if long_from is not None and i >= long_from else f"name {i}",
            "in progress",
            "2026-11-29 04:21:29Z",
        )
        for i in range(n)
    ]


def test_row_5000_has_the_widths_of_row_1() -> None:
    out = io.StringIO()
    count = TableWriter(out, COLUMNS, width=80, color=False).write(rows(5000, long_from=501))
    lines = out.getvalue().splitlines()
    assert count == 5000 and len(lines) == 5001
    status_at = {line.index("in progress") for line in lines[1:]}
    assert len(status_at) == 1, "every status starts in the same column"
    assert all(len(line) <= 80 for line in lines)
    assert lines[600].split("  ")[1].endswith("…"), "a later, longer name is cut to the fixed width"


def test_least_important_columns_go_first_and_ids_and_statuses_stay() -> None:
    sample = [[c.cell(r) for c in COLUMNS] for r in rows(3)]
    wide = plan(COLUMNS, sample, 120)
    assert [c.header for c in wide.columns] == ["ID", "NAME", "STATUS", "CREATED"]
    narrow = plan(COLUMNS, sample, 30)
    assert [c.header for c in narrow.columns] == ["ID", "NAME", "STATUS"]
    tiny = plan(COLUMNS, sample, 10)
    assert {"ID", "STATUS"} <= {c.header for c in tiny.columns}, "never dropped, never cut"


def test_cut_keeps_to_the_width_with_an_ellipsis_and_counts_wide_characters() -> None:
    assert cut("completed", 20) == "completed"
    assert cut("a long batch name", 8) == "a long …"
    assert cut("日本語のバッチ名", 7) == "日本語…"


def test_colour_is_only_asked_for() -> None:
    styled = (Column("S", lambda r: r.status, lambda r: "green", whole=True, priority=0),)
    plain, coloured = io.StringIO(), io.StringIO()
    TableWriter(plain, styled, width=40, color=False).write(rows(1))
    TableWriter(coloured, styled, width=40, color=True).write(rows(1))
    assert "\x1b[" not in plain.getvalue()
    assert "\x1b[32min progress\x1b[0m" in coloured.getvalue()


def test_a_download_bar_follows_the_records_written_not_the_bytes_fetched() -> None:
    from rich.console import Console

    from cohere_batch_cli.output.progress import RichProgress

    bar = RichProgress(Console(file=io.StringIO(), force_terminal=True), "downloading results")
    bar.start(total_bytes=1000, total_records=10)
    bar.advance(bytes=1000)  # every part fetched, nothing decoded yet
    task = bar._progress.tasks[0]
    assert task.total == 10 and task.completed == 0
    bar.advance(records=10)
    assert task.completed == 10
    bar.finish()
