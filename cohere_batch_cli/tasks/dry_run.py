"""``--dry-run``: everything a create checks before it sends, and nothing sent.

``create --file --dry-run``, ``create --split --dry-run`` and ``jobs create --dry-run``
(each with ``--from TABLE`` too: the table's rendered requests are the file) share this one path: the local check of the file (the same rules, the same lines), the
context check, the budget where one is given, and for a job the split plan. Nothing is
uploaded, no batch or job is made, nothing is recorded in the state store; only reads
(the model) go to the API. A problem raises the check's own error, so the exit code is
the one the real command would have stopped with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Limits
from ..units import counted, human_bytes

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..validate import FileReport
    from .budget import Budget
    from .estimating import GuardOptions
    from .reporting import Reporter


@dataclass(frozen=True)
class DryRun:
    """What a create would be asked to do: its name, model, checks, and for a job its part limits."""

    label: str
    model: str
    guard: GuardOptions
    dataset_type: str | None = None
    budget: Budget | None = None
    limits: Limits = field(default_factory=Limits)
    split: tuple[int, int | None] | None = None
    """For a job: the most bytes and records a part may hold; None for one batch."""
    source_label: str | None = None
    """How messages name a file cbatch wrote itself (a table's requests), instead of its path."""
    checked: FileReport | None = None
    """The check of the file made as cbatch wrote it (a table's requests): not read again (one batch only)."""


def dry_run_create(client: CohereClient, path: Path, reporter: Reporter, run: DryRun) -> None:
    """Check ``path`` as the create would, say what it would send, and send nothing."""
    if run.split is not None:
        _dry_job(client, path, reporter, run, *run.split)
        return
    import dataclasses

    from ..input_rules import CHAT_V2_INPUT
    from ..spool import rereadable
    from .datasets import check_input, refuse_over_limit

    with rereadable(path) as source:  # stdin: checked from one copy, named stdin
        if run.source_label is not None:
            source = dataclasses.replace(source, label=run.source_label)
        refuse_over_limit(source.path, source.label, run.limits.dataset_max_bytes)
        report = check_input(
            source.path, run.dataset_type, reporter, uploading=False, label=source.label,
            checked=run.checked,
        )  # fmt: skip
        kind = report.dataset_type or CHAT_V2_INPUT
        reporter.info(f"{source.label}: {counted(report.rows, 'record')} of {kind}, checked")
        _guard(client, report, reporter, run)
    reporter.info(
        f"dry run: nothing was sent; without --dry-run, {source.label} would be uploaded "
        f"({human_bytes(report.size_bytes)}) and batch '{run.label}' created on {run.model}"
    )


def _dry_job(
    client: CohereClient,
    path: Path,
    reporter: Reporter,
    run: DryRun,
    max_bytes: int,
    max_records: int | None,
) -> None:
    from ..errors import UsageError
    from ..spool import is_stdin
    from .estimating import context_room, judge_context
    from .jobs_split import plan_split, relabel

    if is_stdin(path):
        raise UsageError("a job reads its input more than once: give a file, not stdin")
    # The context check of the job itself: each record bounded by its bytes in the split's one pass.
    room = context_room(client, run.model, run.guard, reporter)
    plan = plan_split(
        path, run.dataset_type, max_bytes=max_bytes, max_records=max_records,
        problems_out=relabel(path, run.source_label, reporter.info),
        room=(room.context, room.assumed_output) if room is not None else None,
    )  # fmt: skip
    kind = plan.dataset_type or "batch-chat-v2-input"
    label = run.source_label or str(path)
    reporter.info(f"{label}: {counted(plan.records, 'record')} of {kind}, checked")
    if room is not None:
        judge_context(room, path, Path(label), kind, plan.undecided, run.guard, reporter)
    first = 1
    for number, part in enumerate(plan.parts, start=1):
        last = first + part.records - 1
        which = f"record {first:,}" if first == last else f"records {first:,} to {last:,}"
        reporter.info(
            f"part {number}: {which} ({counted(part.records, 'record')}, {human_bytes(part.size)})"
        )
        first = last + 1
    n = len(plan.parts)
    reporter.info(
        f"dry run: nothing was sent; without --dry-run, a job of {counted(n, 'part')} would be "
        f"uploaded and created as batches '{run.label} [job JOB part N]' on {run.model}"
    )


def _guard(client: CohereClient, report: FileReport, reporter: Reporter, run: DryRun) -> None:
    """The context check and the budget, exactly as between a create's check and its upload."""
    from .estimating import guard_upload

    guard_upload(
        client, report, model_name=run.model, options=run.guard, budget=run.budget,
        reporter=reporter,
    )  # fmt: skip
