"""Dataset commands: validate, upload, list, get, delete, usage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ._context import CliState, get_state
from ._errors import InputRejected, command_errors
from ._options import DatasetQueryOpt, FormatOpt, JsonlOpt, JsonOpt, QuietOpt

if TYPE_CHECKING:
    from ..api.models import Dataset
    from ..validate import FileReport

datasets_app = typer.Typer(
    help="""Upload, check and manage datasets (batch inputs and outputs).

A batch reads its requests from a validated input dataset and writes its
results to an output dataset. 'upload' checks the whole file locally first,
so nothing is sent when a line is wrong.

Examples:

  cbatch datasets upload requests.jsonl --wait

  cbatch datasets list --type batch-chat-v2-input
""",
    no_args_is_help=True,
    rich_markup_mode=None,
)

TypeOpt = Annotated[
    Optional[str],
    typer.Option("--type", "-t", help="batch-chat-v2-input or batch-embed-v2-input (inferred from the records when absent)."),
]
FileArg = Annotated[Path, typer.Argument(help="A JSONL file, one request a line.", metavar="FILE", dir_okay=False)]
WAIT_TIMEOUT = 1800.0


def check_or_reject(
    state: CliState, path: Path, dataset_type: str | None, *, uploading: bool = True
) -> FileReport:
    """Check a file locally; print every problem with its line and raise when there is one."""
    from ..input_rules import BATCH_INPUT_TYPES
    from ..validate import check_file

    if dataset_type is not None and dataset_type not in BATCH_INPUT_TYPES:
        from ._errors import UsageError

        raise UsageError(f"--type must be one of {', '.join(sorted(BATCH_INPUT_TYPES))}")
    report = check_file(path, dataset_type)
    if report.ok:
        return report
    for problem in report.problems:
        # path:line: message, the compilers' convention that editors and CI logs link
        state.info(f"{path}:{problem.line}: {problem.message}" if problem.line else f"{path}: {problem}")
    hidden = report.problem_count - len(report.problems)
    if hidden > 0:
        state.info(f"... and {hidden} more problems")
    plural = "s" if report.problem_count != 1 else ""
    tail = "; nothing was uploaded" if uploading else ""
    raise InputRejected(f"{path} has {report.problem_count} problem{plural}{tail}")


def upload_checked(
    state: CliState,
    path: Path,
    *,
    dataset_type: str | None,
    name: str | None,
    wait: bool,
    keep_original_file: bool = False,
) -> str:
    """Check, upload (with a progress bar on a terminal) and optionally wait for validation."""
    from ..input_rules import CHAT_V2_INPUT
    from ..output.progress import make_progress

    report = check_or_reject(state, path, dataset_type)
    kind = report.dataset_type or CHAT_V2_INPUT
    state.info(f"{path}: {report.rows:,} records of {kind}, checked")
    progress = make_progress(state.stderr_is_tty, f"uploading {path.name}", state.err_console)
    progress.start(total_bytes=report.size_bytes)
    try:
        dataset_id = state.client().upload_dataset(
            path,
            name=name or path.stem,
            dataset_type=kind,
            keep_original_file=keep_original_file,
            keep_fields=["custom_id"] if kind == CHAT_V2_INPUT else None,
            on_bytes=lambda n: progress.advance(bytes=n),
        )
    finally:
        progress.finish()
    state.info(f"uploaded as dataset {dataset_id}")
    if wait:
        dataset = wait_validated(state, dataset_id)
        if dataset.validation_status == "failed":
            raise InputRejected(
                f"dataset {dataset_id} failed validation: {dataset.validation_error or 'no reason given'}"
            )
    return dataset_id


def wait_validated(state: CliState, dataset_id: str) -> Dataset:
    from ..api.polling import wait_for_dataset

    def report(dataset: Dataset) -> None:
        state.info(f"dataset {dataset_id}: {dataset.validation_status}")
        for warning in dataset.validation_warnings:
            state.warn(warning)

    return wait_for_dataset(state.client(), dataset_id, timeout=WAIT_TIMEOUT, on_change=report)


def _show_dataset(
    state: CliState, dataset: Dataset, *, json_out: bool, quiet: bool, query: str | None = None
) -> None:
    from ..output.batch_views import VALIDATION_STYLES, dataset_fields
    from .batches import show_item

    style = {"Validation": VALIDATION_STYLES.get(dataset.validation_status, "")}
    show_item(
        state, dataset.raw, dataset.id, dataset_fields(dataset), style,
        json_out=json_out, quiet=quiet, query=query,
    )  # fmt: skip


@datasets_app.command("validate")
@command_errors
def validate(ctx: typer.Context, file: FileArg, dataset_type: TypeOpt = None) -> None:
    """Check a JSONL file as an upload would, without uploading anything.

    Every problem is listed with its line number; the exit code is 5 when
    there is one.

    Example:

      cbatch datasets validate requests.jsonl
    """
    state = get_state(ctx)
    report = check_or_reject(state, file, dataset_type, uploading=False)
    state.info(f"{file}: {report.rows:,} records of {report.dataset_type}, {report.size_bytes:,} bytes: ok")


@datasets_app.command("upload")
@command_errors
def upload(
    ctx: typer.Context,
    file: FileArg,
    dataset_type: TypeOpt = None,
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="Dataset name (default: the file name).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for validation and report its outcome.")] = False,
    keep_original: Annotated[bool, typer.Option("--keep-original", help="Ask the API to keep the uploaded file.")] = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Check a JSONL file locally, then upload it as a dataset.

    Nothing is uploaded when the check finds a problem. Prints the new
    dataset (its id alone with -q).

    Examples:

      cbatch datasets upload requests.jsonl --wait

      DS=$(cbatch datasets upload requests.jsonl --wait -q)
    """
    state = get_state(ctx)
    dataset_id = upload_checked(
        state, file, dataset_type=dataset_type, name=name, wait=wait, keep_original_file=keep_original
    )
    _show_dataset(state, state.client().get_dataset(dataset_id), json_out=json_out, quiet=quiet)


@datasets_app.command("list")
@command_errors
def list_datasets(
    ctx: typer.Context,
    dataset_type: Annotated[Optional[str], typer.Option("--type", "-t", help="Only datasets of this type.")] = None,
    validation: Annotated[Optional[str], typer.Option("--validation", help="Only datasets in this validation status.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-l", min=1, help="At most this many.")] = None,
    json_out: JsonOpt = False,
    jsonl: JsonlOpt = False,
    quiet: QuietOpt = False,
    fmt: FormatOpt = None,
    query: DatasetQueryOpt = None,
) -> None:
    """List datasets, with their type, validation status, rows and size.

    The API filters by type and validation status itself; --limit bounds the
    answer.

    Example:

      cbatch datasets list --type batch-chat-v2-input
    """
    from ..output.batch_views import DATASET_COLUMNS, DATASET_CSV_FIELDS
    from .batches import make_printer

    state = get_state(ctx)
    datasets = state.client().list_datasets(
        dataset_type=dataset_type, validation_status=validation, limit=limit
    )
    printer = make_printer(state, json_out=json_out, jsonl=jsonl, quiet=quiet, fmt=fmt, query=query)
    printer.items(
        datasets,
        columns=DATASET_COLUMNS,
        csv_fields=DATASET_CSV_FIELDS,
        raw=lambda d: d.raw,
        item_id=lambda d: d.id,
        empty="no datasets",
        on_empty=state.info,
    )


@datasets_app.command("get")
@command_errors
def get(
    ctx: typer.Context,
    dataset_id: Annotated[str, typer.Argument(metavar="DATASET_ID", help="The dataset id.")],
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    query: DatasetQueryOpt = None,
) -> None:
    """Show a dataset: type, validation, rows, size, parts.

    With --json, the API's own object, including each part's download link
    (a pre-signed URL: treat it as a secret until it expires).

    Examples:

      cbatch datasets get my-requests-abc123 --json | jq .validation_status

      cbatch datasets get my-requests-abc123 --query "dataset_parts[].url"
    """
    state = get_state(ctx)
    dataset = state.client().get_dataset(dataset_id)
    _show_dataset(state, dataset, json_out=json_out, quiet=quiet, query=query)


@datasets_app.command("delete")
@command_errors
def delete(
    ctx: typer.Context,
    dataset_ids: Annotated[list[str], typer.Argument(metavar="DATASET_ID...", help="One or more dataset ids.")],
) -> None:
    """Delete datasets.

    There is no prompt, so scripts can use it; batches that used a dataset
    keep their results. Cohere also deletes datasets after 30 days.

    Example:

      cbatch datasets delete my-requests-abc123
    """
    state = get_state(ctx)
    client = state.client()
    for dataset_id in dataset_ids:
        client.delete_dataset(dataset_id)
        state.info(f"deleted dataset {dataset_id}")


@datasets_app.command("usage")
@command_errors
def usage(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Show the organisation's dataset storage use.

    Cohere allows 10 GB of datasets per organisation; delete old ones with
    'cbatch datasets delete'.

    Example:

      cbatch datasets usage
    """
    from ..output.batch_views import human_bytes

    state = get_state(ctx)
    used = state.client().dataset_usage()
    if json_out:
        print(json.dumps({"organization_usage": used}))
    else:
        print(f"{human_bytes(used)} of 10 GB ({used:,} bytes)")


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets", rich_help_panel="Datasets")
