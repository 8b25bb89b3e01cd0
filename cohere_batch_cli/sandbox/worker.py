"""The background thread that moves datasets and batches through their life cycles.

Datasets: ``queued`` -> ``processing`` -> ``validated``/``failed`` (input) or
``processing`` -> ``validated`` (batch output). Batches: QUEUED for ``queue_delay``,
then IN_PROGRESS at ``records_per_second``, then COMPLETED, or FAILED when every record
failed; a CANCELING batch keeps working for ``cancel_grace`` seconds and ends COMPLETED
if it finishes in that time, CANCELED otherwise.

Progress is computed, not simulated record by record: a batch's counters after ``n``
records are read from the input dataset's prefix sums (:mod:`.stats`), and the pace is
anchored in memory at (time, records done), so a restarted sandbox resumes each batch
from the count it had stored. Every tick's changes go to SQLite in one transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from .avro_output import OUTPUT_SCHEMA_JSON, write_output
from .clock import now_us, random_suffix, slug
from .kinds import endpoint_kind, output_type
from .settings import SandboxSettings
from .stats import STATS_FILE, Stats
from .store import Store
from .validation import ROWS_FILE, UPLOAD_FILE, validate

log = logging.getLogger("cohere_batch_cli.sandbox")
_STATS_CACHE = 16
US = 1_000_000
FINISH_BUDGET = 0.02
"""Seconds of output writing per tick before the rest waits for the next tick.

The worker shares the GIL with the HTTP thread: left unbounded, ten thousand tiny
batches finishing back to back would make every request wait its turn for the GIL."""


class Worker:
    """Owns one daemon thread; ``wake()`` makes it look at new work at once."""

    def __init__(self, store: Store, settings: SandboxSettings) -> None:
        self.store = store
        self.settings = settings
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cbatch-sandbox-worker", daemon=True)
        self._anchors: dict[str, tuple[int, int]] = {}
        self._stats: OrderedDict[str, Stats] = OrderedDict()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.step()
            except Exception:  # keep the sandbox alive; the log says what broke
                log.exception("sandbox worker step failed")
                busy = True
            self._wake.wait(self.settings.tick if busy else self._idle_wait())
            self._wake.clear()

    def _idle_wait(self) -> float:
        now = now_us()
        due = [t for t in (self.store.next_queued_due(), self.store.next_dataset_due()) if t is not None]
        if not due:
            return 1.0
        return max(0.0, min(1.0, (min(due) - now) / US))

    # -- one step ---------------------------------------------------------------------

    def step(self) -> bool:
        """Advance everything that is due; True while some batch is running."""
        now = now_us()
        self._datasets(now)
        return self._batches(now)

    def _datasets(self, now: int) -> None:
        for row in self.store.due_datasets(now):
            if self._stop.is_set():
                return
            if row["kind"] == "output":
                self.store.update_dataset(row["id"], validation_status="validated", updated_us=now_us())
                continue
            if row["validation_status"] == "queued":
                ready = row["created_us"] + int(self.settings.validation_delay * US)
                self.store.update_dataset(row["id"], validation_status="processing", updated_us=now, ready_us=ready)
                if ready > now:
                    continue
            self._validate(row)

    def _validate(self, row: Any) -> None:
        import json

        directory = self.store.dataset_dir(row["id"])
        try:
            fields = validate(directory, row["dataset_type"], json.loads(row["flags"]))
        except FileNotFoundError:
            fields = {"validation_status": "failed", "validation_error": "the uploaded file is missing"}
        if fields["validation_status"] == "failed":
            (directory / ROWS_FILE).unlink(missing_ok=True)
            upload = directory / UPLOAD_FILE
            fields["size_bytes"] = upload.stat().st_size if upload.exists() else 0
        if self.store.get_dataset(row["id"]) is not None:  # not deleted meanwhile
            self.store.update_dataset(row["id"], updated_us=now_us(), **fields)

    def _stats_for(self, dataset_id: str) -> Stats | None:
        stats = self._stats.get(dataset_id)
        if stats is None:
            try:
                stats = Stats(self.store.dataset_dir(dataset_id) / STATS_FILE)
            except FileNotFoundError:
                return None
            self._stats[dataset_id] = stats
            while len(self._stats) > _STATS_CACHE:
                self._stats.popitem(last=False)
        else:
            self._stats.move_to_end(dataset_id)
        return stats

    def _batches(self, now: int) -> bool:
        updates: list[dict[str, Any]] = []
        running = False
        rps = self.settings.records_per_second
        grace = int(self.settings.cancel_grace * US)
        budget_end = time.monotonic() + FINISH_BUDGET
        for row in self.store.active_batches(now):
            if self._stop.is_set():
                break
            bid, status = row["id"], row["status"]
            if status == "BATCH_STATUS_QUEUED":
                updates.append(
                    {
                        "id": bid,
                        "status": "BATCH_STATUS_IN_PROGRESS",
                        "if_status": "BATCH_STATUS_QUEUED",
                        "started_us": now,
                        "updated_us": now,
                        "output_dataset_id": f"{slug(row['name'])}-output-{random_suffix()}",
                    }
                )
                self._anchors[bid] = (now, row["processed"])
                running = True
                continue
            canceling = status == "BATCH_STATUS_CANCELING"
            if canceling and row["started_us"] is None:
                if now - row["cancel_us"] >= grace:
                    updates.append(self._canceled(row, now))
                continue
            stats = self._stats_for(row["input_dataset_id"])
            if stats is None:
                updates.append(self._failed(row, now, f"input dataset {row['input_dataset_id']} is no longer available"))
                continue
            anchor = self._anchors.setdefault(bid, (now, row["processed"]))
            total = row["num_records"]
            target = min(total, anchor[1] + int((now - anchor[0]) / US * rps))
            if target >= total:
                if time.monotonic() < budget_end:
                    updates.append(self._finish(row, now))
                running = True
                continue
            running = True
            if canceling and now - row["cancel_us"] >= grace:
                target = max(target, row["processed"])
                upd = self._canceled(row, now)
                upd.update(self._progress(stats, target))
                updates.append(upd)
                continue
            if target > row["processed"]:
                upd = {"id": bid, "updated_us": now, "processed": target}
                upd.update(self._progress(stats, target))
                updates.append(upd)
        self.store.update_batches(updates)
        return running

    @staticmethod
    def _progress(stats: Stats, processed: int) -> dict[str, Any]:
        totals = stats.at(processed)
        return {
            "processed": processed,
            "num_successful": totals.successful,
            "num_failed": totals.failed,
            "input_tokens": totals.input_tokens,
            "output_tokens": totals.output_tokens,
        }

    def _canceled(self, row: Any, now: int) -> dict[str, Any]:
        self._anchors.pop(row["id"], None)
        return {"id": row["id"], "status": "BATCH_STATUS_CANCELED", "updated_us": now}

    def _failed(self, row: Any, now: int, reason: str) -> dict[str, Any]:
        self._anchors.pop(row["id"], None)
        return {"id": row["id"], "status": "BATCH_STATUS_FAILED", "updated_us": now, "status_reason": reason}

    def _finish(self, row: Any, now: int) -> dict[str, Any]:
        """Write the output dataset and close the batch as COMPLETED or FAILED."""
        bid = row["id"]
        out_id = row["output_dataset_id"] or f"{slug(row['name'])}-output-{random_suffix()}"
        rows_path = self.store.dataset_dir(row["input_dataset_id"]) / ROWS_FILE
        try:
            summary = write_output(
                rows_path,
                self.store.dataset_dir(out_id),
                endpoint_kind(row["dataset_type"]),
                bid,
                self.settings.part_max_records,
            )
        except FileNotFoundError:
            return self._failed(row, now, f"input dataset {row['input_dataset_id']} is no longer available")
        done = now_us()
        delay = max(self.settings.output_ready_delay, self.settings.validation_delay)
        self.store.insert_dataset(
            {
                "id": out_id,
                "name": out_id,
                "dataset_type": output_type(row["dataset_type"]),
                "created_us": done,
                "updated_us": done,
                "validation_status": "processing",
                "validation_warnings": [],
                "schema": OUTPUT_SCHEMA_JSON,
                "required_fields": [],
                "preserve_fields": [],
                "parts": summary.parts,
                "size_bytes": summary.size_bytes,
                "num_rows": summary.successful + summary.failed,
                "ready_us": done + int(delay * US),
                "flags": {"batch_id": bid},
                "kind": "output",
            },
            replace=True,
        )
        self._anchors.pop(bid, None)
        upd: dict[str, Any] = {
            "id": bid,
            "updated_us": done,
            "output_dataset_id": out_id,
            "processed": row["num_records"],
            "num_successful": summary.successful,
            "num_failed": summary.failed,
            "input_tokens": summary.input_tokens,
            "output_tokens": summary.output_tokens,
            "status": "BATCH_STATUS_COMPLETED",
        }
        if summary.successful == 0:
            upd["status"] = "BATCH_STATUS_FAILED"
            upd["status_reason"] = f"all {summary.failed} records failed; see the output dataset for each error"
        return upd
