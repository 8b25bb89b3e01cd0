"""``cbatch demo``: a real batch, end to end, against a sandbox started for the occasion.

It is the README's first command: with no account and no network it writes a
request file, checks and uploads it, creates a batch, follows it to the end
and downloads the results, through exactly the code paths a real run takes.
An embed batch runs beside it, its results written as Parquet (vectors as
float32 arrays) when the ``[parquet]`` extra is installed, as JSONL otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ._context import get_state
from ._errors import command_errors

DEMO_KEY = "sandbox-demo-key"
FAIL_MARKER = "[[sandbox:fail]]"
CHAT_MODEL = "command-r-08-2024"
EMBED_MODEL = "embed-v4.0"
TOPICS = ["tides", "volcanoes", "bread", "comets", "bees", "glaciers", "jazz", "maps"]


def write_requests(path: Path, count: int, failures: int) -> None:
    """A chat request file of ``count`` records, the last ``failures`` asking the sandbox to fail."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            text = f"In one sentence, why do {TOPICS[i % len(TOPICS)]} matter? (#{i})"
            if i >= count - failures:
                text += f" {FAIL_MARKER}"
            record = {
                "custom_id": f"req-{i:05d}",
                "body": {"messages": [{"role": "user", "content": text}], "max_tokens": 64},
            }
            handle.write(json.dumps(record) + "\n")


def write_embed_requests(path: Path, count: int) -> None:
    """An embed request file of ``count`` records, two texts each, float and int8 vectors."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            topic = TOPICS[i % len(TOPICS)]
            record = {
                "custom_id": f"emb-{i:05d}",
                "body": {
                    "texts": [f"A note about {topic} (#{i})", f"Another view of {topic} (#{i})"],
                    "input_type": "search_document",
                    "embedding_types": ["float", "int8"],
                },
            }
            handle.write(json.dumps(record) + "\n")


def _has_pyarrow() -> bool:
    from .. import MissingExtra
    from ..engine import require_pyarrow

    try:
        require_pyarrow()
    except MissingExtra:
        return False
    return True


def register(app: typer.Typer) -> None:
    @app.command("demo", rich_help_panel="Sandbox")
    @command_errors
    def demo(
        ctx: typer.Context,
        directory: Annotated[
            Path,
            typer.Option(
                "--dir", help="Where to write the request and result files.", file_okay=False
            ),
        ] = Path("cbatch-demo"),
        records: Annotated[
            int, typer.Option("--records", min=1, max=1_000_000, help="How many requests to send.")
        ] = 500,
        failures: Annotated[
            int | None,
            typer.Option(
                "--failures",
                min=0,
                help="How many of them the sandbox should fail on purpose [default: 3, and never all of them].",
                show_default=False,
            ),
        ] = None,
        pace: Annotated[
            float,
            typer.Option("--records-per-second", min=1, help="The sandbox's processing pace."),
        ] = 150.0,
        embeddings: Annotated[
            int,
            typer.Option(
                "--embeddings",
                min=0,
                max=100_000,
                help="Records of the embed batch run beside it (0: none).",
            ),
        ] = 100,
    ) -> None:
        """Run a real batch end to end against a local sandbox: no account, no network.

        Writes DIR/requests.jsonl, checks and uploads it, creates a batch,
        watches it to the end, and downloads DIR/results.jsonl. An embed
        batch runs beside it; its results go to DIR/embeddings.parquet
        (with the [parquet] extra; DIR/embeddings.jsonl without it).

        Example:

          cbatch demo --records 1000
        """
        import tempfile

        from .. import BatchStatus, ExitCode
        from ..engine import (
            ResultsSpec,
            Setting,
            Settings,
            WatchSpec,
            create_batch,
            install_hint,
            upload_file,
            write_results,
        )
        from ._extras import require_sandbox_extra
        from ._watching import run_watch

        require_sandbox_extra("cbatch demo")
        from ..engine import SandboxServer, SandboxSettings

        state = get_state(ctx)
        out = state.out
        directory.mkdir(parents=True, exist_ok=True)
        requests = directory / "requests.jsonl"
        results_path = directory / "results.jsonl"
        # By default some records fail, to show what a failure looks like, but never all of
        # them: a batch whose every record fails ends FAILED, and a demo should succeed.
        failing = min(3, records - 1) if failures is None else min(failures, records)
        write_requests(requests, records, failing)
        parquet = _has_pyarrow()
        embed_requests = directory / "embed-requests.jsonl"
        embed_path = directory / ("embeddings.parquet" if parquet else "embeddings.jsonl")
        if embeddings:
            write_embed_requests(embed_requests, embeddings)
        with tempfile.TemporaryDirectory(prefix="cbatch-demo-") as data_dir:
            sandbox = SandboxSettings(
                data_dir=Path(data_dir), port=0, records_per_second=pace, queue_delay=1.0
            )
            with SandboxServer(sandbox) as server:
                out.info(f"sandbox listening on {server.base_url} (data in {data_dir})")
                state.use_settings(
                    Settings(
                        profile="demo",
                        config_path=Path(data_dir) / "unused.toml",
                        api_key=Setting(DEMO_KEY, "demo"),
                        base_url=Setting(server.base_url, "demo sandbox"),
                        model=Setting(CHAT_MODEL, "demo"),
                        client_name=Setting("cbatch-demo", "demo"),
                    )
                )
                client = state.client()
                dataset_id = upload_file(client, requests, out, name="demo-requests")
                batch = create_batch(
                    client,
                    name="cbatch-demo",
                    dataset_id=dataset_id,
                    model=CHAT_MODEL,
                    reporter=out,
                )
                out.info(f"created batch {batch.id}")
                ids = [batch.id]
                embed_batch = None
                if embeddings:
                    embed_dataset = upload_file(
                        client, embed_requests, out, name="demo-embed-requests"
                    )
                    embed_batch = create_batch(
                        client,
                        name="cbatch-demo-embed",
                        dataset_id=embed_dataset,
                        model=EMBED_MODEL,
                        reporter=out,
                    )
                    out.info(f"created embed batch {embed_batch.id}")
                    ids.append(embed_batch.id)
                # The sandbox goes when the demo ends: no hint may name its batches (no 'cbatch
                # results ID', no 'resume with: cbatch watch ID'); the demo writes the results itself.
                code = run_watch(
                    state,
                    ids,
                    WatchSpec(),
                    resume="",
                    results=f"the demo writes them into {directory}",
                )
                if code not in (ExitCode.OK, ExitCode.BATCH_FAILED):
                    raise typer.Exit(code)
                write_results(client, ResultsSpec(output=str(results_path)), out, batch.id)
                if embed_batch is not None:
                    write_results(client, ResultsSpec(output=str(embed_path)), out, embed_batch.id)
                final = client.get_batch(batch.id)
        succeeded = final.num_successful_records
        out.info(
            f"demo done: batch {final.status.label}, {succeeded} succeeded, "
            f"{final.num_failed_records} failed (on purpose); results in {results_path}"
        )
        if embed_batch is not None:
            if parquet:
                out.info(
                    f"embeddings in {embed_path}: one row a record, embeddings_float a list of float32 "
                    "vectors (pandas, polars, DuckDB and Spark read it as it is)"
                )
            else:
                out.info(
                    f"embeddings in {embed_path}; for them as Parquet (float32 arrays): {install_hint('parquet')}"
                )
        if final.status != BatchStatus.COMPLETED:
            raise typer.Exit(ExitCode.BATCH_FAILED)
