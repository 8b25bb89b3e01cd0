"""``watch --on-done COMMAND``: run a command of the user's as each batch ends, for notifications.

The outcome reaches the command in environment variables only, never spliced
into its text: a batch name is text from outside, and ``notify-send "$CBATCH_BATCH_NAME"``
can quote a variable where cbatch could never safely quote a name. The command
runs through the shell (it is the user's own line, as in ``git``'s hooks),
with no standard input; what it prints is relayed on stderr, made safe, so
stdout keeps only cbatch's data (JSON lines stay parseable). A command that
fails earns a warning and changes nothing else: a notification is not the
outcome of the watch.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..watcher import BatchDone
    from .reporting import Reporter

HOOK_TIMEOUT = 300.0
"""Seconds a command may take before it is stopped and the watch goes on."""

ENVIRONMENT = (
    ("CBATCH_BATCH_ID", "the batch's id"),
    ("CBATCH_BATCH_NAME", "its name"),
    ("CBATCH_BATCH_STATUS", "completed, failed or canceled"),
    ("CBATCH_EXIT_CODE", "the batch's own exit code: 0, 8 failed, 9 canceled"),
    ("CBATCH_RECORDS", "records in the batch"),
    ("CBATCH_SUCCEEDED", "records that succeeded"),
    ("CBATCH_FAILED", "records that failed"),
    ("CBATCH_STATUS_REASON", "why it failed, when the API says (else empty)"),
    ("CBATCH_OUTPUT_DATASET_ID", "the dataset holding the results (else empty)"),
    ("CBATCH_RESULTS_COMMAND", "the cbatch command that downloads them (else empty)"),
)
"""What ``--on-done`` commands find in their environment, for the docs and ``--help``."""


def outcome_environment(event: BatchDone) -> dict[str, str]:
    """The variables that tell one batch's outcome (values made safe for an environment)."""
    batch = event.batch
    results = ""
    if batch.output_dataset_id:
        import shlex

        results = shlex.join(["cbatch", "results", batch.id, "-o", f"results-{batch.id}.jsonl"])
    values = {
        "CBATCH_BATCH_ID": batch.id,
        "CBATCH_BATCH_NAME": batch.name,
        "CBATCH_BATCH_STATUS": batch.status.removeprefix("BATCH_STATUS_").lower(),
        "CBATCH_EXIT_CODE": str(int(event.exit_code)),
        "CBATCH_RECORDS": "" if batch.num_records is None else str(batch.num_records),
        "CBATCH_SUCCEEDED": str(batch.num_successful_records),
        "CBATCH_FAILED": str(batch.num_failed_records),
        "CBATCH_STATUS_REASON": batch.status_reason or "",
        "CBATCH_OUTPUT_DATASET_ID": batch.output_dataset_id or "",
        "CBATCH_RESULTS_COMMAND": results,
    }
    return {
        name: value.replace("\x00", "") for name, value in values.items()
    }  # NUL cannot be in one


class OnDone:
    """Runs ``command`` once per batch that ends, reporting its output and failures."""

    def __init__(self, command: str, reporter: Reporter, *, timeout: float = HOOK_TIMEOUT) -> None:
        self.command = command
        self.reporter = reporter
        self.timeout = timeout

    def __call__(self, event: BatchDone) -> None:
        env = {**os.environ, **outcome_environment(event)}
        batch_id = event.batch.id
        try:
            result = subprocess.run(
                self.command,
                shell=True,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            self.reporter.warn(
                f"--on-done for batch {batch_id} still ran after {self.timeout:.0f}s; stopped it"
            )
            return
        except OSError as exc:
            self.reporter.warn(
                f"--on-done for batch {batch_id} could not start: {exc.strerror or exc}"
            )
            return
        for line in result.stdout.decode("utf-8", errors="replace").splitlines():
            self.reporter.info(f"on-done: {line}")
        if result.returncode != 0:
            self.reporter.warn(f"--on-done for batch {batch_id} exited {result.returncode}")
