"""Dataset commands: validate, upload, list, get, delete, usage."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._context import CliState, get_state
from ._errors import command_errors
from ._options import DatasetQueryOpt, FormatOpt, JsonlOpt, JsonOpt, QuietOpt

if TYPE_CHECKING:
    from ..api.models import Dataset

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
    str | None,
    typer.Option("--type", "-t", help="batch-chat-v2-input or batch-embed-v2-input (inferred from the records when absent)."),
]
FileArg = Annotated[Path, typer.Argument(help="A JSONL file, one request a line (- reads stdin).", metavar="FILE", dir_okay=False)]


def _show_dataset(state: CliState, dataset: Dataset) -> None:
    from ..output.batch_views import VALIDATION_STYLES, dataset_fields

    style = {"Validation": VALIDATION_STYLES.get(dataset.validation_status, "")}
    state.out.item(dataset.raw, dataset.id, dataset_fields(dataset), style)


@datasets_app.command("validate")
@command_errors
def validate(ctx: typer.Context, file: FileArg, dataset_type: TypeOpt = None) -> None:
    """Check a JSONL file as an upload would, without uploading anything.

    Every problem is listed with its line number; the exit code is 5 when
    there is one.

    Example:

      cbatch datasets validate requests.jsonl
    """
    from ..tasks.datasets import validate_input

    out = get_state(ctx).out
    report, label = validate_input(file, dataset_type, out)
    out.info(f"{label}: {report.rows:,} records of {report.dataset_type}, {report.size_bytes:,} bytes: ok")


@datasets_app.command("upload")
@command_errors
def upload(
    ctx: typer.Context,
    file: FileArg,
    dataset_type: TypeOpt = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Dataset name (default: the file name).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for validation and report its outcome.")] = False,
    keep_original: Annotated[bool, typer.Option("--keep-original/--no-keep-original", help="Ask the API to keep the uploaded file, so a 'cbatch retry' can read it back.")] = True,
    json_out: JsonOpt = False,
    jsonl: JsonlOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Check a JSONL file locally, then upload it as a dataset.

    Nothing is uploaded when the check finds a problem. Prints the new
    dataset (its id alone with -q).

    Examples:

      cbatch datasets upload requests.jsonl --wait

      DS=$(cbatch datasets upload requests.jsonl --wait -q)
    """
    from ..tasks.datasets import upload_file

    state = get_state(ctx)
    out = state.out.set_mode(json_out=json_out, jsonl=jsonl, quiet=quiet)
    client = state.client()
    dataset_id = upload_file(
        client, file, out, dataset_type=dataset_type, name=name, keep_original_file=keep_original, wait=wait
    )
    _show_dataset(state, client.get_dataset(dataset_id))


@datasets_app.command("list")
@command_errors
def list_datasets(
    ctx: typer.Context,
    dataset_type: Annotated[str | None, typer.Option("--type", "-t", help="Only datasets of this type.")] = None,
    validation: Annotated[str | None, typer.Option("--validation", help="Only datasets in this validation status.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-l", min=1, help="At most this many.")] = None,
    json_out: JsonOpt = False,
    jsonl: JsonlOpt = False,
    quiet: QuietOpt = False,
    fmt: FormatOpt = None,
    query: DatasetQueryOpt = None,
) -> None:
    """List datasets, with their type, validation status, rows and size.

    The API filters by type and validation status itself; every page is
    read (--limit bounds the listing).

    Example:

      cbatch datasets list --type batch-chat-v2-input
    """
    from ..output.batch_views import DATASET_COLUMNS, DATASET_CSV_FIELDS

    state = get_state(ctx)
    out = state.out.set_mode(json_out=json_out, jsonl=jsonl, quiet=quiet, fmt=fmt, query=query)
    datasets = state.client().iter_datasets(dataset_type=dataset_type, validation_status=validation, limit=limit)
    out.items(
        datasets,
        columns=DATASET_COLUMNS,
        csv_fields=DATASET_CSV_FIELDS,
        raw=lambda d: d.raw,
        item_id=lambda d: d.id,
        empty="no datasets",
    )


@datasets_app.command("get")
@command_errors
def get(
    ctx: typer.Context,
    dataset_id: Annotated[str, typer.Argument(metavar="DATASET_ID", help="The dataset id.")],
    json_out: JsonOpt = False,
    jsonl: JsonlOpt = False,
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
    state.out.set_mode(json_out=json_out, jsonl=jsonl, quiet=quiet, query=query)
    _show_dataset(state, state.client().get_dataset(dataset_id))


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
        state.out.info(f"deleted dataset {dataset_id}")


@datasets_app.command("usage")
@command_errors
def usage(ctx: typer.Context, json_out: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """Show the organisation's dataset storage use.

    Cohere allows 10 GB of datasets per organisation; delete old ones with
    'cbatch datasets delete'.

    Example:

      cbatch datasets usage
    """
    from ..output.batch_views import human_bytes

    state = get_state(ctx)
    out = state.out.set_mode(json_out=json_out, jsonl=jsonl)
    used = state.client().dataset_usage()
    if out.for_machines:
        out.document({"organization_usage": used})
    else:
        out.line(f"{human_bytes(used)} of 10 GB ({used:,} bytes)")


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets", rich_help_panel="Datasets")
