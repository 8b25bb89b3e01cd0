"""T2 (issue 25): a table run's results written as its table, beside a plain results -o x.parquet and --join.

    python benchmarks/t2_table_out.py [--rows 100000]

Makes (once, in ``benchmarks/.work/t2/``) a Parquet table of ROWS rows (three text columns
of about 100 characters), the records a chat batch with a three-property answer schema
would give back for it (in a shuffled order, as the service writes them, each answer a
JSON object that follows the schema), and the requests file. Then, each in a fresh
process (its own peak RSS), it writes the same records three ways through the one
results writer (``results.writer.write_records``), from the decoded records on:

- ``table``: the input table again with the answers as typed columns (Parquet);
- ``plain``: the records as ``results -o x.parquet`` writes them;
- ``join``: the records beside their requests, as ``results --join requests.jsonl`` writes them.

It prints one JSON line a mode: records/s, peak RSS. The download and the Avro decoding,
the same for all three, are left out.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "t2"
SCHEMA = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "score": {"type": "number"},
        "topics": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["sentiment", "score", "topics"],
}


def _text(rng: random.Random, n: int) -> str:
    words = ("good", "bad", "phone", "battery", "screen", "fast", "slow", "cheap", "sturdy")
    out: list[str] = []
    while sum(len(w) + 1 for w in out) < n:
        out.append(rng.choice(words) + str(rng.randrange(1000)))
    return " ".join(out)


def prepare(rows: int) -> Path:
    """The table, the records (shuffled) and the requests of ``rows`` rows; made once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = WORK / str(rows)
    if (folder / "done").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    cols: dict[str, list[str]] = {"title": [], "review": [], "product": []}
    for _ in range(rows):
        for c in cols.values():
            c.append(_text(rng, 100))
    pq.write_table(pa.table(cols), folder / "table.parquet", row_group_size=100_000)
    order = list(range(rows))
    rng.shuffle(order)
    with open(folder / "records.jsonl", "w") as fh:
        for i in order:
            answer = {
                "sentiment": rng.choice(["positive", "neutral", "negative"]),
                "score": round(rng.random() * 5, 2),
                "topics": [cols["title"][i][:12], cols["product"][i][:9]],
            }
            body = {
                "id": f"r{i}",
                "finish_reason": "COMPLETE",
                "message": {
                    "role": "assistant",
                    "content": [{"type": "text", "text": json.dumps(answer)}],
                },
                "usage": {"billed_units": {"input_tokens": 80, "output_tokens": 20}},
            }
            fh.write(json.dumps({"custom_id": str(i + 1), "body": json.dumps(body), "error": ""}))
            fh.write("\n")
    with open(folder / "requests.jsonl", "w") as fh:
        for i in range(rows):
            text = f"{cols['title'][i]}\n{cols['review'][i]}\n{cols['product'][i]}"
            request = {
                "custom_id": str(i + 1),
                "body": {"messages": [{"role": "user", "content": text}]},
            }
            fh.write(json.dumps(request) + "\n")
    (folder / "done").touch()
    return folder


def _records(path: Path) -> Any:
    import orjson

    with open(path, "rb") as fh:
        for line in fh:
            yield orjson.loads(line)


class _Null:
    def start(self, **_: Any) -> None: ...
    def advance(self, **_: Any) -> None: ...
    def finish(self) -> None: ...


def measure(folder: Path, mode: str) -> dict[str, Any]:
    from cohere_batch_cli.results.answer_columns import TypedAnswers
    from cohere_batch_cli.results.columns import TableOptions
    from cohere_batch_cli.results.writer import write_records
    from cohere_batch_cli.tasks.tables import TableRows

    spool = Path(tempfile.mkdtemp(prefix="t2-", dir=WORK))
    joiner = None
    fmt = "parquet"
    options = TableOptions(kind="chat")
    if mode == "table":
        from cohere_batch_cli.results.table_out import InputTable

        table = InputTable(
            TableRows(folder / "table.parquet"), "table.parquet", None,
            typed=TypedAnswers.of_schema(SCHEMA),
        )  # fmt: skip
        options = TableOptions(kind="chat", input_table=table)
    elif mode == "join":
        from cohere_batch_cli.results.join import Joiner

        fmt = "jsonl"
    started = time.perf_counter()
    cpu = time.process_time()
    if mode == "join":
        joiner = Joiner.open(folder / "requests.jsonl")
    with open(spool / f"out.{fmt}", "wb") as out:
        counts = write_records(
            _records(folder / "records.jsonl"), out, fmt=fmt, failed_only=False,  # type: ignore[arg-type]
            joiner=joiner, sink=_Null(), table=options, spool_dir=spool,  # type: ignore[arg-type]
        )  # fmt: skip
    took = time.perf_counter() - started
    cpu = time.process_time() - cpu
    return {
        "mode": mode,
        "records": counts.total,
        "written": counts.written,
        "seconds": round(took, 2),
        "records_per_s": round(counts.total / took),
        "records_per_cpu_s": round(counts.total / cpu),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--modes", default="plain,table,join")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    if args.prepare:
        prepare(args.rows)
        return 0
    if args.measure:
        print(json.dumps(measure(prepare(args.rows), args.measure)))
        return 0
    # Made in a child of its own: Linux keeps a process's peak RSS across exec, so a parent
    # that built the table would lend its peak to every measured child.
    subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--prepare"], check=True)
    for mode in args.modes.split(","):
        subprocess.run(
            [sys.executable, __file__, "--rows", str(args.rows), "--measure", mode], check=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
