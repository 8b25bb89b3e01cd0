"""Pace and completeness as recorded (CONTRACT.md, "What real clients have seen": Lifecycle):
a small batch QUEUED for minutes, and COMPLETED batches with records neither done nor failed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from cohere_batch_cli.sandbox.settings import REALISTIC_PACE, SandboxSettings
from tests.sandbox.sandbox_client import KEY, chat_lines


def test_the_realistic_preset_is_the_recorded_pace_and_explicit_values_win(tmp_path: Path) -> None:
    real = SandboxSettings.realistic(tmp_path)
    assert (real.queue_delay, real.validation_delay) == (420.0, REALISTIC_PACE["validation_delay"])
    assert 30_000 / real.records_per_second / 3600 > 1.0, "a 30,000-record batch takes over an hour"
    assert SandboxSettings.realistic(tmp_path, queue_delay=2.0).queue_delay == 2.0
    quick = SandboxSettings(tmp_path)
    assert (quick.queue_delay, quick.validation_delay) == (0.0, 0.0)


def test_serve_realistic_keeps_a_small_batch_queued(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cohere_batch_cli.sandbox", "--port", "0", "--data-dir", str(tmp_path),
         "--realistic", "--validation-delay", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().rsplit(" ", 1)[1].strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as http:
            up = http.post(
                "/v1/datasets",
                params={"name": "r", "type": "batch-chat-v2-input"},
                files={"data": ("f", chat_lines(10))},
            )
            dataset_id = up.json()["id"]
            deadline = time.monotonic() + 10
            while (
                http.get(f"/v1/datasets/{dataset_id}").json()["dataset"]["validation_status"]
                != "validated"
            ):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            batch = http.post(
                "/v2/batches",
                json={"name": "b", "input_dataset_id": dataset_id, "model": "command-r"},
            ).json()["batch"]
            time.sleep(0.5)  # a quick sandbox starts a batch within a tick (20 ms)
            assert (
                http.get(f"/v2/batches/{batch['id']}").json()["batch"]["status"]
                == "BATCH_STATUS_QUEUED"
            )
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
        if proc.stdout:
            proc.stdout.close()


def test_missing_records_leave_a_completed_batch_short(start: Any) -> None:
    api = start(missing_rate=0.25, seed=3)
    done = api.run(chat_lines(200))
    assert done["status"] == "BATCH_STATUS_COMPLETED" and done["num_records"] == 200
    accounted = done["num_successful_records"] + done["num_failed_records"]
    assert 100 < accounted < 200
    records = api.by_id(done["output_dataset_id"])
    assert len(records) == accounted
    assert set(records) < {f"r{i}" for i in range(200)}
    bodies = [r["body"] for r in records.values()]
    assert all(bodies) and all(r["error"] == "" for r in records.values()), (
        "missing is neither failed nor done"
    )


def test_missing_records_repeat_with_the_seed_and_differ_between_batches(
    start: Any, tmp_path: Path
) -> None:
    def missing(api: Any) -> set[str]:
        done = api.run(chat_lines(100))
        return {f"r{i}" for i in range(100)} - set(api.by_id(done["output_dataset_id"]))

    first = start(data_dir=tmp_path / "a", missing_rate=0.2, seed=9)
    again = start(data_dir=tmp_path / "b", missing_rate=0.2, seed=9)
    one = missing(first)
    assert one and one == missing(again)
    assert missing(first) != one, "a second batch of the same records loses others"
