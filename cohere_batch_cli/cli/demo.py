"""``cbatch demo``: a real batch, end to end, against a sandbox started for the occasion.

It is the README's first command: with no account and no network it writes a
request file, checks and uploads it, creates a batch, follows it to the end
and downloads the results, through exactly the code paths a real run takes.
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


def write_requests(path: Path, count: int, failures: int) -> None:
    """A chat request file of ``count`` records, the last ``failures`` asking the sandbox to fail."""
    topics = ["tides", "volcanoes", "bread", "comets", "bees", "glaciers", "jazz", "maps"]
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            text = f"In one sentence, why do {topics[i % len(topics)]} matter? (#{i})"
            if i >= count - failures:
                text += f" {FAIL_MARKER}"
            record = {
                "custom_id": f"req-{i:05d}",
                "body": {"messages": [{"role": "user", "content": text}], "max_tokens": 64},
            }
            handle.write(json.dumps(record) + "\n")


def register(app: typer.Typer) -> None:
    @app.command("demo", rich_help_panel="Sandbox")
    @command_errors
    def demo(
        ctx: typer.Context,
        directory: Annotated[Path, typer.Option("--dir", help="Where to write the request and result files.", file_okay=False)] = Path("cbatch-demo"),
        records: Annotated[int, typer.Option("--records", min=1, max=1_000_000, help="How many requests to send.")] = 500,
        failures: Annotated[int | None, typer.Option("--failures", min=0, help="How many of them the sandbox should fail on purpose [default: 3, and never all of them].", show_default=False)] = None,
        pace: Annotated[float, typer.Option("--records-per-second", min=1, help="The sandbox's processing pace.")] = 150.0,
    ) -> None:
        """Run a real batch end to end against a local sandbox: no account, no network.

        Writes DIR/requests.jsonl, checks and uploads it, creates a batch,
        watches it to the end, and downloads DIR/results.jsonl.

        Example:

          cbatch demo --records 1000
        """
        import tempfile

        from ..api.models import BatchStatus
        from ..config import Setting, Settings
        from ..exit_codes import ExitCode
        from ..tasks.batches import create_batch
        from ..tasks.datasets import upload_file
        from ..tasks.fetching import FetchOptions, fetch_results
        from ._extras import require_sandbox_extra
        from ._watching import run_watch

        require_sandbox_extra("cbatch demo")
        from ..sandbox.server import SandboxServer, SandboxSettings

        state = get_state(ctx)
        out = state.out
        directory.mkdir(parents=True, exist_ok=True)
        requests = directory / "requests.jsonl"
        results_path = directory / "results.jsonl"
        # By default some records fail, to show what a failure looks like, but never all of
        # them: a batch whose every record fails ends FAILED, and a demo should succeed.
        failing = min(3, records - 1) if failures is None else min(failures, records)
        write_requests(requests, records, failing)
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
                        model=Setting("command-r-08-2024", "demo"),
                        client_name=Setting("cbatch-demo", "demo"),
                    )
                )
                client = state.client()
                dataset_id = upload_file(client, requests, out, name="demo-requests")
                batch = create_batch(
                    client, name="cbatch-demo", dataset_id=dataset_id, model="command-r-08-2024", reporter=out
                )
                out.info(f"created batch {batch.id}")
                code = run_watch(state, [batch.id])
                if code not in (ExitCode.OK, ExitCode.BATCH_FAILED):
                    raise typer.Exit(code)
                fetch_results(client, batch.id, out, FetchOptions(output=str(results_path)))
                final = client.get_batch(batch.id)
        succeeded = final.num_successful_records
        out.info(
            f"demo done: batch {final.status.label}, {succeeded} succeeded, "
            f"{final.num_failed_records} failed (on purpose); results in {results_path}"
        )
        if final.status != BatchStatus.COMPLETED:
            raise typer.Exit(ExitCode.BATCH_FAILED)
