"""What writing results came to, in a module of its own.

JSON lines (:mod:`.writer`) and tables (:mod:`.table`) both count into it; a
JSONL download must not import the table machinery (csv, the column model) just
to learn the shape of its tally.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Counts:
    """Records seen, written (after ``failed_only``) and failed; bodies kept as text (not JSON)."""

    total: int = 0
    written: int = 0
    failed: int = 0
    not_json: int = 0
    warnings: list[str] = field(default_factory=list)
    """Sentences about values the table could not hold as they are."""
    rows: RowCounts | None = None
    """A table run's table written again (:mod:`.table_out`): what its rows came to."""


@dataclass(frozen=True)
class RowCounts:
    """The rows of a table run's table, by what each got: the line ``results`` ends with."""

    table: str
    """The table, as messages name it."""
    written: int
    """Rows written (all of them, or the ones ``--failed-only`` keeps)."""
    table_rows: int
    """Rows in the table; the counts below are of these, and add up to it."""
    answered: int
    """Rows whose answer is usable: succeeded, and valid for a schema."""
    invalid: int
    """Rows whose answer breaks the answer schema (the API counted its record a success)."""
    failed: int
    """Rows whose request failed."""
    missing: int
    """Rows with no answer in the results at all."""
    shared: int = 0
    """Of the rows above, those not sent that took another row's answer or the answer cache's."""

    def sentence(self, where: str, *, read: str | None = None) -> str:
        """``wrote 6 rows of t.csv to out.parquet (5 answered, 1 failed, 0 missing)``.

        ``read``: the run whose rows a program read as they came (``Run.records()``),
        ``read 6 rows of t.csv, the answers of batch B (...)``: no file was written.
        """
        parts = [f"{self.answered:,} answered"]
        if self.invalid:
            parts.append(f"{self.invalid:,} invalid")
        parts += [f"{self.failed:,} failed", f"{self.missing:,} missing"]
        if self.written == self.table_rows:
            what = f"{self.written:,} row{'' if self.written == 1 else 's'} of {self.table}"
        else:
            what = f"{self.written:,} of the {self.table_rows:,} rows of {self.table}"
        done = f"wrote {what} to {where}" if read is None else f"read {what}, the answers of {read}"
        said = f"{done} ({', '.join(parts)})"
        if self.shared:
            said += f"; {self.shared:,} reused an answer rather than being sent"
        return said
