"""A job's output datasets: deleted only once every record they hold is in the file; gone is one rule.

Against the real sandbox: `jobs results --delete-outputs` frees the organisation's
storage, so it must never delete what the file does not hold (issue 23, case 1); and an
output that vanishes while a job's results are downloaded follows the rule a batch's
results follow (issue 23, case 12b).
"""

from __future__ import annotations

import json
from pathlib import Path

from cohere_batch_cli import naming
from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.api.errors import NotFoundError
from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, write_jsonl


def _outputs(client: CohereClient, job_id: str) -> list[str]:
    found = []
    for batch in client.iter_batches(page_size=1000):
        lineage = naming.parse_batch_name(batch.name)[1]
        if lineage is not None and lineage.job_id == job_id and batch.output_dataset_id:
            found.append(batch.output_dataset_id)
    return found


def _exists(client: CohereClient, dataset_id: str) -> bool:
    try:
        client.get_dataset(dataset_id)
    except NotFoundError:
        return False
    return True


def test_failed_only_with_delete_outputs_is_refused_and_deletes_nothing(
    cli: Cli, sandbox: object, tmp_path: Path
) -> None:
    records = chat_records(30, fail={3, 17, 25}, prefix="del")
    write_jsonl(tmp_path / "in.jsonl", records)
    job_id = cli(
        "jobs", "create", "in.jsonl", "--model", "command-r", "--max-records-per-batch", "10", "-q"
    ).stdout.strip()
    cli("jobs", "watch", job_id)
    with CohereClient(TEST_KEY, sandbox.base_url) as client:  # type: ignore[attr-defined]
        outputs = _outputs(client, job_id)
        assert len(outputs) == 3

        refused = cli(
            "jobs", "results", job_id, "--failed-only", "--delete-outputs", "-o", "failed.jsonl",
            exit_code=ExitCode.USAGE,
        )  # fmt: skip
        assert "--failed-only and --delete-outputs mean nothing together" in refused.stderr
        assert not (tmp_path / "failed.jsonl").exists()
        assert all(_exists(client, d) for d in outputs), "an output was deleted: its successes lost"

        # Every record written: then the outputs go, and the file holds them all.
        done = cli("jobs", "results", job_id, "-o", "all.jsonl", "--delete-outputs")
        assert "deleted 3 output datasets" in done.stderr
        lines = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
        assert sorted(r["custom_id"] for r in lines) == sorted(r["custom_id"] for r in records)
        assert not any(_exists(client, d) for d in outputs)
