"""T3 (issue 25): a re-run of a table where 1 % of the rows changed, with the answer cache full.

    python benchmarks/t3_cache.py [--rows 1000000] [--changed 0.01] [--duplicates 0.4]

Makes (once, in ``benchmarks/.work/t3/``) a Parquet table of ROWS rows, three text columns
of about 100 characters with DUPLICATES of the rows repeating an earlier one, and fills a
fresh answer cache with an answer for each of its distinct requests (as the results of a
first run would). Then it makes a copy with CHANGED of the rows rewritten and measures, in
this one process, what ``create --from`` does locally before anything is sent: read the
table in batches, render each row (Jinja2 sandbox), hash its canonical request, dedupe
through the scratch database, look the new keys up in the cache and copy the answers it
gives into the run's map (a run keeps them: the cache may go before its results), write
what is left. It prints one JSON line: rows/s of that local work, peak RSS, and the
counts, checked against the distinct requests among the changed rows computed
independently.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "t3"
TEMPLATE = "Title: {{ title }}\nReview: {{ review }}\nProduct: {{ product }}\nRate it from 1 to 5."
MODEL = "command-r-08-2024"


class Quiet:
    def info(self, message: str) -> None:
        print(message, file=sys.stderr)

    def warn(self, message: str) -> None:
        print("warning:", message, file=sys.stderr)

    def debug(self, message: str) -> None:
        pass


def _text(rng: random.Random, n: int) -> str:
    words = (
        "good",
        "bad",
        "phone",
        "battery",
        "screen",
        "fast",
        "slow",
        "cheap",
        "sturdy",
        "broke",
    )
    out = []
    while sum(len(w) + 1 for w in out) < n:
        out.append(rng.choice(words) + str(rng.randrange(1000)))
    return " ".join(out)


def make_table(path: Path, rows: int, duplicates: float, seed: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    writer = None
    block = 100_000
    made: list[tuple[str, str, str]] = []
    for start in range(0, rows, block):
        cols: tuple[list[str], list[str], list[str]] = ([], [], [])
        for _ in range(min(block, rows - start)):
            if made and rng.random() < duplicates:
                row = made[rng.randrange(len(made))]
            else:
                row = (_text(rng, 100), _text(rng, 100), _text(rng, 100))
                if len(made) < 50_000:
                    made.append(row)
            for c, v in zip(cols, row, strict=True):
                c.append(v)
        table = pa.table({"title": cols[0], "review": cols[1], "product": cols[2]})
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=100_000)
    assert writer is not None
    writer.close()


def change_rows(source: Path, target: Path, share: float, seed: int) -> set[int]:
    """A copy of ``source`` with ``share`` of its rows' review rewritten; the rows changed (from 0)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    table = pq.read_table(source)
    n = table.num_rows
    changed = set(rng.sample(range(n), int(n * share)))
    reviews = table.column("review").to_pylist()
    for i in changed:
        reviews[i] = f"changed {i}: " + reviews[i]
    table = table.set_column(1, "review", pa.array(reviews))
    pq.write_table(table, target, row_group_size=100_000)
    return changed


def render(table: Path, cache_on: bool, out_path: Path) -> tuple[object, float]:
    from cohere_batch_cli.tasks.request_reuse import table_requests
    from cohere_batch_cli.tasks.table_prompts import TableSpec, render_requests

    run = TableSpec(table=table, template=TEMPLATE, cache=cache_on)
    started = time.perf_counter()
    cpu = time.process_time()
    with table_requests(run, MODEL, None, Quiet()) as requests, open(out_path, "wb") as out:
        requests.start(out)
        render_requests(run, out, Quiet(), requests)
        summary = requests.summary
        took = time.perf_counter() - started
        render.cpu = time.process_time() - cpu  # type: ignore[attr-defined]
        if not cache_on:  # the first run's answers, as results would keep them
            fill_cache(requests)
    return summary, took


def fill_cache(requests: object) -> None:
    import sqlite3

    from cohere_batch_cli.state.answer_cache import Entry, open_cache

    db = sqlite3.connect(requests._path)  # type: ignore[attr-defined]
    body = json.dumps(
        {
            "message": {"role": "assistant", "content": [{"type": "text", "text": "4"}]},
            "usage": {"billed_units": {"input_tokens": 60, "output_tokens": 1}},
        }
    ).encode()
    with open_cache() as cache:
        batch = []
        for (key,) in db.execute("SELECT key FROM requests"):
            batch.append(Entry(key, MODEL, body, 60, 1))
            if len(batch) >= 50_000:
                cache.put(batch)
                batch = []
        cache.put(batch)
    db.close()


def measure(table: Path) -> int:
    """The measured child: the re-run's local work alone, in a fresh process (its own peak RSS)."""
    summary, took = render(table, cache_on=True, out_path=WORK / "rerun.jsonl")
    cpu = render.cpu  # type: ignore[attr-defined]
    rows = summary.rows  # type: ignore[attr-defined]
    print(
        json.dumps(
            {
                "rows": rows,
                "distinct": summary.distinct,  # type: ignore[attr-defined]
                "cached": summary.cached,  # type: ignore[attr-defined]
                "sent": summary.sent,  # type: ignore[attr-defined]
                "seconds": round(took, 2),
                "rows_per_s": round(rows / took),
                "cpu_seconds": round(cpu, 2),
                "rows_per_cpu_s": round(rows / cpu),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )
    return 0


def prepare(rows: int, duplicates: float, share: float) -> int:
    """The table, the first run's answers in a fresh cache, and the re-run's table (a child of its own)."""
    base = WORK / f"table-{rows}.parquet"
    if not base.exists():
        make_table(base, rows, duplicates, seed=1)
    shutil.rmtree(WORK / "cache", ignore_errors=True)
    first, first_took = render(base, cache_on=False, out_path=WORK / "first.jsonl")
    rerun = WORK / f"rerun-{rows}.parquet"
    changed = change_rows(base, rerun, share, seed=2)
    import pyarrow.parquet as pq

    t = pq.read_table(rerun, columns=["title", "review", "product"])
    distinct_changed = len(
        {tuple(t.column(c)[i].as_py() for c in ("title", "review", "product")) for i in changed}
    )
    print(
        json.dumps(
            {
                "rerun": str(rerun),
                "changed_rows": len(changed),
                "distinct_changed_requests": distinct_changed,
                "first_run_rows_per_s": round(first.rows / first_took),  # type: ignore[attr-defined]
            }
        )
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--duplicates", type=float, default=0.4)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    os.environ["CBATCH_CACHE_DIR"] = str(WORK / "cache")
    os.environ["CBATCH_CACHE_MAX_BYTES"] = "10GB"
    if args.measure is not None:
        return measure(args.measure)
    if args.prepare:
        return prepare(args.rows, args.duplicates, args.changed)
    # This process stays small: a child's peak RSS starts from its parent's (vfork, exec).
    import subprocess

    def child(*extra: str) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, __file__, "--rows", str(args.rows), "--changed", str(args.changed),
             "--duplicates", str(args.duplicates), *extra],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

    prepared = child("--prepare")
    runs = [child("--measure", str(prepared["rerun"])) for _ in range(args.runs)]
    with open(WORK / "rerun.jsonl", encoding="utf-8") as fh:
        sent_lines = sum(1 for _ in fh)
    print(
        json.dumps(
            {
                "rows": args.rows,
                **prepared,
                "sent_lines": sent_lines,
                "exact": sent_lines == prepared["distinct_changed_requests"],
                "reruns": runs,
                "load": os.getloadavg(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
