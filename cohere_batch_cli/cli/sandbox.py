"""``cbatch sandbox serve``: run the local stand-in for Cohere's batch API in the foreground.

Only typer is imported at module level; the server (starlette, uvicorn, behind the
``[sandbox]`` extra) and platformdirs are imported when the command runs.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import LocalWriteError, UsageError
from ._context import get_state
from ._errors import command_errors

app = typer.Typer(
    help="""A local Cohere batch and dataset API for tests, demos and CI: no account, no network.

It speaks the same batch and dataset endpoints, with the same error bodies
and Avro output, so a client cannot tell the difference on the calls it
makes. See docs/sandbox.md.

Example:

  cbatch sandbox serve --port 8787
""",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.callback()
def sandbox() -> None:
    """A local Cohere batch and dataset API for tests, demos and CI: no account, no network."""


def default_data_dir() -> Path:
    """Where a sandbox keeps its state unless told otherwise (survives restarts)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("cbatch")) / "sandbox"


def check_data_dir(path: Path) -> None:
    """Refuse a --data-dir that cannot hold the sandbox's state, naming the folder and why."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".cbatch-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except FileExistsError:
        raise LocalWriteError(f"cannot use --data-dir {path}: it is a file, not a folder") from None
    except OSError as exc:
        raise LocalWriteError(f"cannot use --data-dir {path}: {exc.strerror or exc}") from None


def listen_error(host: str, port: int, exc: OSError) -> UsageError:
    """Why the sandbox could not listen, as a usage error that says what to change."""
    where = f"cannot listen on {host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return UsageError(
            f"{where}: the port is in use; choose another --port (0 picks a free one)"
        )
    if exc.errno == errno.EACCES:
        return UsageError(
            f"{where}: permission denied (ports below 1024 need privileges); choose another --port"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return UsageError(f"{where}: {host} is not an address of this machine; check --host")
    return UsageError(f"{where}: {exc.strerror or exc}")


@app.command()
@command_errors
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: a free one).")
    ] = 8787,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            file_okay=False,
            help="Where datasets and batches are kept [default: the user data dir]/sandbox.",
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key",
            help="Accept only this bearer key (repeatable); without it any non-empty key works.",
            show_default=False,
        ),
    ] = None,
    realistic: Annotated[
        bool,
        typer.Option(
            "--realistic",
            help="The recorded pace: batches QUEUED 7 minutes, about 6 records a second, validation taking seconds. Pace options given as well win.",
        ),
    ] = False,
    records_per_second: Annotated[
        float | None,
        typer.Option(
            "--records-per-second",
            min=0.001,
            help="Pace of each batch [default: 1000; --realistic: 6].",
            show_default=False,
        ),
    ] = None,
    queue_delay: Annotated[
        float | None,
        typer.Option(
            "--queue-delay",
            min=0,
            help="Seconds a new batch stays QUEUED [default: 0; --realistic: 420].",
            show_default=False,
        ),
    ] = None,
    validation_delay: Annotated[
        float | None,
        typer.Option(
            "--validation-delay",
            min=0,
            help="Seconds a new dataset takes to validate [default: 0; --realistic: 6].",
            show_default=False,
        ),
    ] = None,
    output_ready_delay: Annotated[
        float | None,
        typer.Option(
            "--output-ready-delay",
            min=0,
            help="Seconds a batch's output dataset reads processing before validated [default: 0.2; --realistic: 5].",
            show_default=False,
        ),
    ] = None,
    missing_rate: Annotated[
        float,
        typer.Option(
            "--missing-rate",
            min=0,
            max=1,
            help="Share of records a COMPLETED batch silently leaves out of its output and counts.",
        ),
    ] = 0.0,
    transient_fail_rate: Annotated[
        float,
        typer.Option(
            "--transient-fail-rate",
            min=0,
            max=1,
            help="Share of records that fail afresh each run (a timeout, an internal error); sent again, they eventually succeed.",
        ),
    ] = 0.0,
    invalid_output_rate: Annotated[
        float,
        typer.Option(
            "--invalid-output-rate",
            min=0,
            max=1,
            help="Share of structured answers (response_format json_object) that break their schema or stop at MAX_TOKENS mid-object, drawn afresh each run.",
        ),
    ] = 0.0,
    permanent_fail_rate: Annotated[
        float,
        typer.Option(
            "--permanent-fail-rate",
            min=0,
            max=1,
            help="Share of request bodies that fail in every run (an invalid request, a too-long prompt).",
        ),
    ] = 0.0,
    shuffle: Annotated[
        bool,
        typer.Option(
            "--shuffle/--no-shuffle",
            help="Output records in a seeded shuffled order, as recorded, or in input order.",
        ),
    ] = True,
    success_error: Annotated[
        str,
        typer.Option(
            "--success-error",
            help='error of a successful output record: empty ("", as recorded) or null.',
        ),
    ] = "empty",
    part_max_records: Annotated[
        int,
        typer.Option(
            "--part-max-records", min=1, help="Records per dataset part (input and output)."
        ),
    ] = 10000,
    context_length: Annotated[
        int | None,
        typer.Option(
            "--context-length",
            min=1,
            help="Context length of every model, instead of each model's own.",
            show_default=False,
        ),
    ] = None,
    embed_dimension: Annotated[
        int | None,
        typer.Option(
            "--embed-dimension",
            min=8,
            help="Embedding dimension of every embed model, instead of each model's own.",
            show_default=False,
        ),
    ] = None,
    chat_request_overhead: Annotated[
        int,
        typer.Option(
            "--chat-request-overhead", min=0, help="Template tokens billed once per chat request."
        ),
    ] = 3,
    chat_message_overhead: Annotated[
        int,
        typer.Option(
            "--chat-message-overhead", min=0, help="Template tokens billed per chat message."
        ),
    ] = 4,
    link_ttl: Annotated[
        int, typer.Option("--link-ttl", min=1, help="Seconds a signed part link stays valid.")
    ] = 3600,
    dataset_max_bytes: Annotated[
        int,
        typer.Option(
            "--dataset-max-bytes", min=1, help="Largest upload one dataset may hold (1.5 GB)."
        ),
    ] = 1_500_000_000,
    org_max_bytes: Annotated[
        int,
        typer.Option(
            "--org-max-bytes",
            min=1,
            help="Storage of all datasets together, batch outputs included (10 GB).",
        ),
    ] = 10_000_000_000,
    dataset_name_max_length: Annotated[
        int,
        typer.Option(
            "--dataset-name-max-length", min=1, help="Longest accepted dataset name, in characters."
        ),
    ] = 49,
    dataset_ttl: Annotated[
        float,
        typer.Option(
            "--dataset-ttl",
            min=0.001,
            help="Seconds a dataset lives before it is deleted (30 days).",
        ),
    ] = 2_592_000.0,
    fail_rate_429: Annotated[
        float,
        typer.Option(
            "--fail-rate-429",
            min=0,
            max=1,
            help="Share of API requests answered 429 (Retry-After: 1).",
        ),
    ] = 0.0,
    fail_rate_5xx: Annotated[
        float,
        typer.Option(
            "--fail-rate-5xx", min=0, max=1, help="Share of API requests answered 500/503."
        ),
    ] = 0.0,
    latency: Annotated[
        float, typer.Option("--latency", min=0, help="Seconds added to every API request.")
    ] = 0.0,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Makes the injected faults, the output order and the record outcomes repeat exactly (without it, the faults vary and the rest follows a seed kept in --data-dir).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level", help="The sandbox's own log on stderr: debug, info, warning or error."
        ),
    ] = "warning",
) -> None:
    """Serve the sandbox until Ctrl-C, then stop cleanly.

    Point cbatch (or any Cohere client) at it with the two exports it prints.
    State lives in --data-dir and survives restarts. Shapes, limits and
    lifetimes are the real service's; the pace is quick unless --realistic.
    --fail-rate-429, --fail-rate-5xx and --latency inject request faults,
    --transient-fail-rate, --permanent-fail-rate and --missing-rate record
    outcomes, for testing clients. See docs/sandbox.md.

    Examples:

      cbatch sandbox serve --port 8787

      cbatch sandbox serve --port 0 --data-dir ./sandbox --records-per-second 50
    """
    from ._extras import require_sandbox_extra

    require_sandbox_extra()
    out = get_state(ctx).out
    from ..engine import (
        DataDirInUse,
        SandboxServer,
        SandboxSettings,
        configure_sandbox_log,
        run_foreground,
    )

    keys = tuple(api_key or ())
    pace = {
        "records_per_second": records_per_second,
        "queue_delay": queue_delay,
        "validation_delay": validation_delay,
        "output_ready_delay": output_ready_delay,
    }
    try:
        configure_sandbox_log(log_level)
        options: dict[str, Any] = dict(
            host=host,
            port=port,
            api_keys=keys,
            missing_rate=missing_rate,
            transient_fail_rate=transient_fail_rate,
            permanent_fail_rate=permanent_fail_rate,
            invalid_output_rate=invalid_output_rate,
            shuffle=shuffle,
            success_error=success_error,
            part_max_records=part_max_records,
            context_length=context_length,
            embed_dimension=embed_dimension,
            chat_request_overhead=chat_request_overhead,
            chat_message_overhead=chat_message_overhead,
            link_ttl=link_ttl,
            dataset_max_bytes=dataset_max_bytes,
            org_max_bytes=org_max_bytes,
            dataset_name_max_length=dataset_name_max_length,
            dataset_ttl=dataset_ttl,
            fail_rate_429=fail_rate_429,
            fail_rate_5xx=fail_rate_5xx,
            latency=latency,
            seed=seed,
            **{k: v for k, v in pace.items() if v is not None},
        )
        build = SandboxSettings.realistic if realistic else SandboxSettings
        settings = build(data_dir=data_dir or default_data_dir(), **options)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    def ready(server: SandboxServer) -> None:
        key_hint = "<one of your --api-key values>" if keys else "any-key"
        out.raw_line(f"cbatch sandbox listening on {server.base_url}")
        out.info(f"  data in {settings.data_dir}")
        out.info("Point cbatch at it with:")
        out.raw_line(f"  export CO_API_URL={server.base_url}")
        out.raw_line(f"  export CO_API_KEY={key_hint}")
        out.info("Ctrl-C stops it.")

    check_data_dir(settings.data_dir)
    try:
        run_foreground(settings, ready)
    except DataDirInUse as exc:
        raise UsageError(
            f"cannot use --data-dir {exc.data_dir}: another sandbox ({exc.holder}) is serving from"
            " it; stop that one, or choose another --data-dir"
        ) from None
    except OSError as exc:
        raise listen_error(host, port, exc) from None
    out.info("cbatch sandbox stopped")
