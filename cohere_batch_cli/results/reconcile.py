"""Whether a batch's counts and its output agree, said in one warning when they do not.

The service has been seen to end a batch COMPLETED with fewer results than
records (29,248 of 30,000), counting the lost ones as neither succeeded nor
failed. So the counts the batch reports, the records its output holds and,
with ``--join``, the requests of the input that got no result are three views
of one fact: when they disagree, one sentence says all of it, rather than a
warning for each view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .join import JoinReport


JOIN_NAMES_THEM = " (--join with the batch's input file names them)"
"""How ``cbatch results`` names the records without a result; a command without ``--join``
(``jobs results``) says its own way instead."""


@dataclass(frozen=True)
class Reported:
    """What the batch says of its records; None where it says nothing."""

    records: int | None = None
    succeeded: int | None = None
    failed: int | None = None

    @classmethod
    def from_batch(cls, raw: dict[str, Any]) -> Reported:
        """From the API's Batch object (counts may be missing, or int64 strings)."""
        return cls(
            _count(raw.get("num_records")),
            _count(raw.get("num_successful_records")),
            _count(raw.get("num_failed_records")),
        )

    @property
    def neither(self) -> int | None:
        """Records counted neither succeeded nor failed: the ones a COMPLETED batch lost."""
        if self.records is None or self.succeeded is None or self.failed is None:
            return None
        return self.records - self.succeeded - self.failed


def _count(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def reconcile(
    reported: Reported | None, found: int, found_failed: int, join: JoinReport | None = None
) -> tuple[str | None, list[str]]:
    """The one sentence on counts that do not add up (None when they do), and the join's others.

    The join's sentence on requests without a result is folded into the
    count sentence when that one says records are missing: one fact, one
    warning.
    """
    sentence = count_warning(reported, found, found_failed, join)
    folded = sentence is not None and join is not None and join.without_result_line() in sentence
    others = join.warnings(without_result=not folded) if join is not None else []
    return sentence, others


def count_warning(
    reported: Reported | None, found: int, found_failed: int, join: JoinReport | None = None
) -> str | None:
    """The one sentence for counts that do not add up, or None when they do.

    ``found``/``found_failed`` are the records the output held and how many
    of them failed. With ``join``, the input's requests that have no result
    are named there; without it, the sentence says how to name them.
    """
    without = join.without_result if join is not None else 0
    if reported is None:
        reported = Reported()
    total, ok, bad = reported.records, reported.succeeded, reported.failed
    short = total - found if total is not None and total > found else 0
    extra = found - total if total is not None and found > total else 0
    split_differs = (
        ok is not None and bad is not None and (ok, bad) != (found - found_failed, found_failed)
    )
    if not (short or extra or split_differs):
        return None
    said = f"the batch reports {total:,} records" if total is not None else "the batch reports"
    neither = reported.neither
    if ok is not None and bad is not None:
        tail = f", {neither:,} neither" if neither else ""
        said += (
            f" ({ok:,} succeeded, {bad:,} failed{tail})"
            if total is not None
            else f" {ok:,} succeeded, {bad:,} failed"
        )
    held = f"its output holds {found:,}"
    if split_differs:
        held += f" ({found - found_failed:,} succeeded, {found_failed:,} failed)"
    text = f"counts do not add up: {said}, {held}"
    if short:
        text += f": {short:,} record{' has' if short == 1 else 's have'} no result"
        if join is not None and without:
            text += f"; {join.without_result_line()}"
        elif join is None:
            text += JOIN_NAMES_THEM
    elif extra:
        text += f": {extra:,} more than the batch reports"
    return text
