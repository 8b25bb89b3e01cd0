"""The background thread that moves datasets and batches through their life cycles.

Datasets: ``queued`` -> ``processing`` -> ``validated``/``failed`` (input) or
``processing`` -> ``validated`` (batch output), then deleted ``dataset_ttl`` after
creation. Batches: QUEUED for ``queue_delay``, then IN_PROGRESS at
``records_per_second``, then COMPLETED, or FAILED when every record that ran failed; a
CANCELING batch keeps working for ``cancel_grace`` seconds and ends COMPLETED if it
finishes in that time, CANCELED otherwise, with the records it finished written as its
output dataset either way.

When a batch starts, its :class:`.plan.Plan` decides every record; progress then sums
the plan over the records advanced, anchored in memory at (time, records done), so a
restarted sandbox resumes each batch from the count it had stored. Every tick's changes
go to SQLite in one transaction.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import OrderedDict
from typing import Any

from . import log
from .avro_output import OUTPUT_SCHEMA_JSON, write_output
from .clock import now_us, random_suffix, slug
from .kinds import endpoint_kind, output_type
from .plan import PLAN_FILE, Plan, build
from .settings import SandboxSettings
from .store import Store
from .validation import FACTS_FILE, ROWS_FILE, UPLOAD_FILE, rebuild_facts, validate

logger = log.get("worker")
_PLAN_CACHE = 64
US = 1_000_000
PURGE_EVERY = 1.0
FINISH_BUDGET = 0.02
"""Seconds of output writing per tick before the rest waits for the next tick.

The worker shares the GIL with the HTTP thread: left unbounded, ten thousand tiny
batches finishing back to back would make every request wait its turn for the GIL."""
_KEPT_ON_FAILURE = {UPLOAD_FILE}


class Worker:
    """Owns one daemon thread; ``wake()`` makes it look at new work at once."""

    def __init__(self, store: Store, settings: SandboxSettings) -> None:
        self.store = store
        self.settings = settings
        self.seed = str(settings.seed) if settings.seed is not None else store.seed
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cbatch-sandbox-worker", daemon=True)
        self._anchors: dict[str, tuple[int, int]] = {}
        self._plans: OrderedDict[str, Plan] = OrderedDict()
        self._next_purge = 0.0

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
                logger.exception("worker step failed")
                busy = True
            self._wake.wait(self.settings.tick if busy else self._idle_wait())
            self._wake.clear()

    def _idle_wait(self) -> float:
        now = now_us()
        due = [
            t
            for t in (self.store.next_queued_due(), self.store.next_dataset_due())
            if t is not None
        ]
        if not due:
            return 1.0
        return max(0.0, min(1.0, (min(due) - now) / US))

    # -- one step ---------------------------------------------------------------------

    def step(self) -> bool:
        """Advance everything that is due; True while some batch is running."""
        now = now_us()
        self._purge(now)
        self._datasets(now)
        return self._batches(now)

    def _purge(self, now: int) -> None:
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + PURGE_EVERY
        for dataset_id in self.store.purge_expired(now):
            logger.info("dataset %s expired and was deleted", dataset_id)

    def _datasets(self, now: int) -> None:
        for row in self.store.due_datasets(now):
            if self._stop.is_set():
                return
            if row["kind"] == "output":
                self.store.update_dataset(
                    row["id"], validation_status="validated", updated_us=now_us()
                )
                continue
            if row["validation_status"] == "queued":
                ready = row["created_us"] + int(self.settings.validation_delay * US)
                self.store.update_dataset(
                    row["id"], validation_status="processing", updated_us=now, ready_us=ready
                )
                if ready > now:
                    continue
            self._validate(row)

    def _validate(self, row: Any) -> None:
        directory = self.store.dataset_dir(row["id"])
        try:
            fields = validate(
                directory,
                row["dataset_type"],
                json.loads(row["flags"]),
                self.settings.part_max_records,
            )
        except FileNotFoundError:
            fields = {
                "validation_status": "failed",
                "validation_error": "the uploaded file is missing",
            }
        if fields["validation_status"] == "failed":
            for path in directory.glob("*"):
                if path.name not in _KEPT_ON_FAILURE:
                    path.unlink(missing_ok=True)
        if self.store.get_dataset(row["id"]) is not None:  # not deleted meanwhile
            self.store.update_dataset(row["id"], updated_us=now_us(), **fields)
            logger.info("dataset %s %s", row["id"], fields["validation_status"])

    # -- plans ------------------------------------------------------------------------

    def _plan_for(self, row: Any) -> Plan | None:
        """The batch's plan: cached, saved beside the batch, or (first time) built now."""
        bid = row["id"]
        plan = self._plans.get(bid)
        if plan is not None:
            self._plans.move_to_end(bid)
            return plan
        path = self.store.batch_dir(bid) / PLAN_FILE
        try:
            plan = Plan.load(path)
        except (FileNotFoundError, ValueError, EOFError):
            directory = self.store.dataset_dir(row["input_dataset_id"])
            facts = directory / FACTS_FILE
            if self.store.get_dataset(row["input_dataset_id"]) is None:
                return None
            if not facts.exists():
                if not (directory / ROWS_FILE).exists():
                    return None
                rebuild_facts(directory, row["dataset_type"])
            key = f"{self.seed}:{row['seq']}"
            plan = build(
                facts, endpoint_kind(row["dataset_type"]), row["model"], key, self.settings
            )
            plan.save(path)
        self._plans[bid] = plan
        while len(self._plans) > _PLAN_CACHE:
            self._plans.popitem(last=False)
        return plan

    def _forget(self, batch_id: str) -> None:
        self._anchors.pop(batch_id, None)
        self._plans.pop(batch_id, None)
        shutil.rmtree(self.store.batch_dir(batch_id), ignore_errors=True)

    # -- batches ----------------------------------------------------------------------

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
                if self._plan_for(row) is None:
                    updates.append(self._failed(row, now, self._gone(row)))
                    continue
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
                    updates.append(self._canceled_unstarted(row, now))
                else:
                    running = True  # tick until its grace ends, not the idle second
                continue
            plan = self._plan_for(row)
            if plan is None:
                updates.append(self._failed(row, now, self._gone(row)))
                continue
            running = True
            anchor = self._anchors.setdefault(bid, (now, row["processed"]))
            total = row["num_records"]
            target = min(total, anchor[1] + int((now - anchor[0]) / US * rps))
            if target >= total:
                if time.monotonic() < budget_end:
                    updates.append(self._finish(row, plan, total, "BATCH_STATUS_COMPLETED", now))
                continue
            if canceling and now - row["cancel_us"] >= grace:
                if time.monotonic() < budget_end:
                    updates.append(
                        self._finish(
                            row, plan, max(target, row["processed"]), "BATCH_STATUS_CANCELED", now
                        )
                    )
                continue
            if target > row["processed"]:
                ok, bad, tin, tout = plan.totals(row["processed"], target)
                updates.append(
                    {
                        "id": bid,
                        "updated_us": now,
                        "processed": target,
                        "num_successful": row["num_successful"] + ok,
                        "num_failed": row["num_failed"] + bad,
                        "input_tokens": row["input_tokens"] + tin,
                        "output_tokens": row["output_tokens"] + tout,
                    }
                )
        self.store.update_batches(updates)
        return running

    @staticmethod
    def _gone(row: Any) -> str:
        return f"input dataset {row['input_dataset_id']} is no longer available"

    def _canceled_unstarted(self, row: Any, now: int) -> dict[str, Any]:
        self._forget(row["id"])
        logger.info("batch %s canceled before it started", row["id"])
        return {"id": row["id"], "status": "BATCH_STATUS_CANCELED", "updated_us": now}

    def _failed(self, row: Any, now: int, reason: str) -> dict[str, Any]:
        self._forget(row["id"])
        logger.info("batch %s failed: %s", row["id"], reason)
        return {
            "id": row["id"],
            "status": "BATCH_STATUS_FAILED",
            "updated_us": now,
            "status_reason": reason,
        }

    def _finish(
        self, row: Any, plan: Plan, processed: int, status: str, now: int
    ) -> dict[str, Any]:
        """Write the output dataset of the first ``processed`` records and close the batch.

        COMPLETED becomes FAILED when records failed and none succeeded; a CANCELED batch
        keeps what it finished, so its ``output_dataset_id`` names a real dataset.
        """
        bid = row["id"]
        out_id = row["output_dataset_id"] or f"{slug(row['name'])}-output-{random_suffix()}"
        s = self.settings
        try:
            summary = write_output(
                self.store.dataset_dir(row["input_dataset_id"]),
                self.store.dataset_dir(out_id),
                plan,
                processed,
                bid,
                shuffle=s.shuffle,
                success_error="" if s.success_error == "empty" else None,
                part_max_records=s.part_max_records,
            )
        except FileNotFoundError:
            shutil.rmtree(self.store.dataset_dir(out_id), ignore_errors=True)
            return self._failed(row, now, self._gone(row))
        done = now_us()
        delay = max(s.output_ready_delay, s.validation_delay)
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
                "expires_us": done + int(s.dataset_ttl * US),
            },
            replace=True,
        )
        self._forget(bid)
        upd: dict[str, Any] = {
            "id": bid,
            "updated_us": done,
            "output_dataset_id": out_id,
            "processed": processed,
            "num_successful": summary.successful,
            "num_failed": summary.failed,
            "input_tokens": summary.input_tokens,
            "output_tokens": summary.output_tokens,
            "status": status,
        }
        if status == "BATCH_STATUS_COMPLETED" and summary.successful == 0 and summary.failed > 0:
            upd["status"] = "BATCH_STATUS_FAILED"
            upd["status_reason"] = (
                f"all {summary.failed} records failed; see the output dataset for each error"
            )
        logger.info("batch %s %s", bid, upd["status"].removeprefix("BATCH_STATUS_").lower())
        return upd
