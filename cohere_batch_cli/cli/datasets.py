"""Dataset commands: validate, upload, list, get, delete, usage."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._context import CliState, get_state
from ._errors import command_errors
from ._options import (
    DatasetIdArg,
    DatasetQueryOpt,
    FormatOpt,
    JsonlOpt,
    JsonOpt,
    QuietOpt,
    RawOpt,
    complete_dataset_id,
)

if TYPE_CHECKING:
    from ..engine import DatasetInfo

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

DATASET_TYPES = (
    "batch-chat-v2-input", "batch-embed-v2-input", "batch-chat-v2-output", "batch-embed-v2-output",
    "batch-chat-input", "batch-openai-chat-input", "embed-input", "embed-result", "cluster-result",
    "cluster-outliers", "reranker-finetune-input", "single-label-classification-finetune-input",
    "chat-finetune-input", "multi-label-classification-finetune-input",
)  # fmt: skip
"""The dataset types of Cohere's API (openapi.yaml) and of batch outputs."""
VALIDATION_STATUSES = ("unknown", "queued", "processing", "failed", "validated", "skipped")


def _complete_type(incomplete: str) -> list[str]:
    return [t for t in DATASET_TYPES if t.startswith(incomplete)]


def _complete_validation(incomplete: str) -> list[str]:
    return [v for v in VALIDATION_STATUSES if v.startswith(incomplete)]


TypeOpt = Annotated[
    str | None,
    typer.Option(
        "--type",
        "-t",
        help="batch-chat-v2-input or batch-embed-v2-input (inferred from the records when absent).",
        autocompletion=_complete_type,
    ),
]
FileArg = Annotated[
    Path,
    typer.Argument(
        help="A JSONL file, one request a line (- reads stdin).", metavar="FILE", dir_okay=False
    ),
]


def _show_dataset(state: CliState, dataset: DatasetInfo) -> None:
    from ..output.batch_views import VALIDATION_STYLES, dataset_fields

    style = {"Validation": VALIDATION_STYLES.get(dataset.validation_status, "")}
    ttl = state.settings().limits.dataset_ttl
    state.out.item(
        dataset.raw, dataset.id, dataset_fields(dataset, ttl, plain=state.out.plain), style
    )


@datasets_app.command("validate")
@command_errors
def validate(ctx: typer.Context, file: FileArg, dataset_type: TypeOpt = None) -> None:
    """Check a JSONL file as an upload would, without uploading anything.

    Every problem is listed with its line number; the exit code is 5 when
    there is one.

    Example:

      cbatch datasets validate requests.jsonl
    """
    from ..engine import validate_input

    out = get_state(ctx).out
    report, label = validate_input(file, dataset_type, out)
    noun = "record" if report.rows == 1 else "records"
    out.info(
        f"{label}: {report.rows:,} {noun} of {report.dataset_type}, {report.size_bytes:,} bytes: ok"
    )


@datasets_app.command("upload")
@command_errors
def upload(
    ctx: typer.Context,
    file: FileArg,
    dataset_type: TypeOpt = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Dataset name (default: the file name).")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for validation and report its outcome.")
    ] = False,
    keep_original: Annotated[
        bool,
        typer.Option(
            "--keep-original/--no-keep-original",
            help="Ask the API to keep the uploaded file, so a 'cbatch retry' can read it back.",
        ),
    ] = True,
    json_out: JsonOpt = False,
    jsonl: JsonlOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Check a JSONL file locally, then upload it as a dataset.

    Nothing is uploaded when the check finds a problem, or when the file is
    over one dataset's limit (1.5 GB, the dataset_max_bytes setting): the
    error says by how much and the 'split -l' that cuts it. Prints the new
    dataset (its id alone with -q).

    Examples:

      cbatch datasets upload requests.jsonl --wait

      DS=$(cbatch datasets upload requests.jsonl --wait -q)
    """
    from .. import UsageError
    from ..engine import upload_file

    state = get_state(ctx)
    out = state.out.set_mode(json_out=json_out, jsonl=jsonl, quiet=quiet)
    if name is not None and not name.strip():
        raise UsageError("--name is empty; give a name, or leave --name out to use the file's name")
    if name is not None:
        from ..engine import check_dataset_name

        check_dataset_name(
            name
        )  # before the file is read: the API would refuse it after the upload
    client = state.client()
    dataset_id = upload_file(
        client, file, out, dataset_type=dataset_type, name=name, keep_original_file=keep_original, wait=wait,
        limits=state.settings().limits,
    )  # fmt: skip
    _show_dataset(state, client.get_dataset(dataset_id))


@datasets_app.command("list")
@command_errors
def list_datasets(
    ctx: typer.Context,
    dataset_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            "-t",
            help="Only datasets of this type (batch-chat-v2-input, batch-chat-v2-output, ...).",
            autocompletion=_complete_type,
        ),
    ] = None,
    validation: Annotated[
        str | None,
        typer.Option(
            "--validation",
            help="Only datasets in this validation status: queued, processing, validated, failed, skipped, unknown.",
            autocompletion=_complete_validation,
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-l", min=1, help="At most this many.")
    ] = None,
    json_out: JsonOpt = False,
    jsonl: JsonlOpt = False,
    quiet: QuietOpt = False,
    fmt: FormatOpt = None,
    query: DatasetQueryOpt = None,
    raw: RawOpt = False,
) -> None:
    """List datasets, with their type, validation status, rows and size.

    The API filters by type and validation status itself; every page is
    read (--limit bounds the listing).

    Example:

      cbatch datasets list --type batch-chat-v2-input
    """
    from .. import UsageError
    from ..output.batch_views import DATASET_COLUMNS, DATASET_CSV_FIELDS, DATASET_PLAIN_COLUMNS
    from ._completion import MAX_IDS, remember

    state = get_state(ctx)
    out = state.out.set_mode(
        json_out=json_out, jsonl=jsonl, quiet=quiet, fmt=fmt, query=query, raw=raw
    )
    if validation is not None and validation not in VALIDATION_STATUSES:
        raise UsageError(
            f"unknown validation status {validation!r}; use {', '.join(VALIDATION_STATUSES)}"
        )
    # Every page, streamed: a capped answer must not look complete, and a page that fails
    # must not take back the ones already shown.
    # One row past --limit, in the same request: it tells that the listing was cut.
    pages = state.client().iter_datasets(
        dataset_type=dataset_type,
        validation_status=validation,
        limit=None if limit is None else limit + 1,
    )
    first = next(pages, None)
    if dataset_type is not None and dataset_type not in DATASET_TYPES:
        if first is None:  # a typo, not a type of a newer API that holds datasets
            raise UsageError(
                f"unknown dataset type {dataset_type!r}; types: {', '.join(DATASET_TYPES)}"
            )
        out.warn(
            f"{dataset_type!r} is not a dataset type cbatch knows; listing what the API returned"
        )
    seen: list[tuple[str, str, str]] = []
    cut: list[str] = []

    def datasets() -> Iterator[DatasetInfo]:
        for shown, dataset in enumerate(itertools.chain([] if first is None else [first], pages)):
            if limit is not None and shown >= limit:
                cut.append(f"{limit} shown, more exist; without --limit, every one")
                return
            if len(seen) < MAX_IDS:
                seen.append((dataset.id, dataset.name, dataset.validation_status))
            yield dataset

    out.items(
        datasets(),
        columns=DATASET_COLUMNS,
        plain_columns=DATASET_PLAIN_COLUMNS,
        csv_fields=DATASET_CSV_FIELDS,
        raw=lambda d: d.raw,
        item_id=lambda d: d.id,
        empty="no datasets",
    )
    remember(seen, "dataset", state.cache_scope())
    for notice in cut:  # a pipe that stopped at --limit must not look like every dataset
        out.info(notice)


@datasets_app.command("get")
@command_errors
def get(
    ctx: typer.Context,
    dataset_id: DatasetIdArg,
    json_out: JsonOpt = False,
    jsonl: JsonlOpt = False,
    quiet: QuietOpt = False,
    query: DatasetQueryOpt = None,
    raw: RawOpt = False,
) -> None:
    """Show a dataset: type, validation, rows, size, parts, and when it expires.

    The service deletes datasets 30 days after they are made (the
    dataset_ttl setting); the API has no such field, so the expiry shown is
    the dataset's creation time plus that lifetime. With --json, the API's own object, including each part's download link
    (a pre-signed URL: treat it as a secret until it expires).

    Examples:

      cbatch datasets get my-requests-abc123 --json | jq .validation_status

      cbatch datasets get my-requests-abc123 --query "dataset_parts[].url"
    """
    from ..engine import DATASET, act_on

    state = get_state(ctx)
    state.out.set_mode(json_out=json_out, jsonl=jsonl, quiet=quiet, query=query, raw=raw)
    client = state.client()
    _show_dataset(state, act_on(client, dataset_id, DATASET, state.out, client.get_dataset))


@datasets_app.command("delete")
@command_errors
def delete(
    ctx: typer.Context,
    dataset_ids: Annotated[
        list[str],
        typer.Argument(
            metavar="DATASET_ID...",
            help="One or more dataset ids (a unique prefix or an exact name asks first).",
            autocompletion=complete_dataset_id,
        ),
    ],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Delete without asking, at a terminal too.")
    ] = False,
) -> None:
    """Delete datasets, after saying what stops working and asking at a terminal.

    Deleting a batch's output dataset deletes its results: 'cbatch results'
    for that batch then fails (exit 4: not found). Deleting an input dataset leaves the
    batches that used it and their results alone, but no new batch can use
    it. At a terminal each deletion is confirmed (--yes skips the question);
    off a terminal, ids are deleted as given, and a short id or a name is
    refused without --yes. Cohere also deletes datasets after 30 days.

    Examples:

      cbatch datasets delete my-requests-abc123

      cbatch datasets delete my-requests-abc123 --yes
    """
    from .. import UsageError
    from ..engine import DATASET, act_on, deletion_impact

    state = get_state(ctx)
    out = state.out
    client = state.client()
    ids: list[str] = []
    for token in dataset_ids:
        # At a terminal every deletion is asked below, so a short id needs no question of its own.
        ask_here = "delete" if not (out.interactive and not yes) else None
        found = act_on(
            client, token, DATASET, out, client.get_dataset, confirm=ask_here, yes=yes
        ).id
        ids.extend([found] if found not in ids else [])
    for dataset_id in ids:
        if not yes and out.interactive:
            impact = deletion_impact(client, dataset_id)
            answer = out.ask(f"delete dataset {dataset_id}? {impact} [y/N] ")
            if (answer or "").lower() not in ("y", "yes"):
                raise UsageError(f"dataset {dataset_id} not deleted: not confirmed")
        client.delete_dataset(dataset_id)
        out.info(f"deleted dataset {dataset_id}")


@datasets_app.command("usage")
@command_errors
def usage(ctx: typer.Context, json_out: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """Show the organisation's dataset storage use, batch outputs included.

    Cohere allows 10 GB of datasets per organisation (the org_max_bytes
    setting); uploads past it are refused. Delete old ones with 'cbatch
    datasets delete'.

    Example:

      cbatch datasets usage
    """
    from ..engine import human_bytes

    state = get_state(ctx)
    out = state.out.set_mode(json_out=json_out, jsonl=jsonl)
    used = state.client().dataset_usage()
    limit = state.settings().limits.org_max_bytes
    if out.for_machines:
        out.document({"organization_usage": used})
    else:
        out.line(
            f"{human_bytes(used)} of {human_bytes(limit)} ({used:,} bytes, {100 * used / limit:.0f} %)"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets", rich_help_panel="Datasets")
