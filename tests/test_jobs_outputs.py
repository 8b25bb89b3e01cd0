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


def test_a_job_output_that_expires_mid_download_is_exit_13_as_a_batchs_is(tmp_path: Path) -> None:
    # Issue 23, case 12b: a batch download whose output expires mid-way says 13 (expired);
    # a job's said 4 (not found). One rule for both: the lifetime decides.
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
    from tests.support.storage_proxy import StorageProxy

    server = SandboxServer(
        SandboxSettings(
            data_dir=tmp_path / "sandbox", port=0, records_per_second=5000.0,
            output_ready_delay=0.0, dataset_ttl=3.0, link_ttl=1,
        )
    ).start()  # fmt: skip
    env = {"CBATCH_DATASET_TTL": "3s"}
    try:
        write_jsonl(tmp_path / "in.jsonl", chat_records(20, prefix="ttl"))
        job_id = Cli(server.base_url, TEST_KEY)(
            "jobs", "create", "in.jsonl", "--model", "command-r", "--max-records-per-batch", "10",
            "--watch", "-q", env=env,
        ).stdout.strip()  # fmt: skip
        # Each part's first download is cut after 5 s: by then its link and its dataset
        # (3 s) have expired, and reading the dataset again for a fresh link finds nothing
        # (2 s to spare for the sandbox's sweep on a loaded machine).
        with StorageProxy(server.base_url, hold=5.0) as proxy:
            gone = Cli(proxy.base_url, TEST_KEY)(
                "jobs", "results", job_id, "-o", "out.jsonl", env=env,
                exit_code=ExitCode.RESULTS_EXPIRED,
            )  # fmt: skip
        line = gone.stderr.strip().splitlines()[-1]
        assert line.startswith("error: the results of batch ") and " expired at " in line, (
            gone.stderr
        )
        assert not list(tmp_path.glob("out.jsonl*")) and not list(tmp_path.glob(".out.jsonl*"))
    finally:
        server.stop()
