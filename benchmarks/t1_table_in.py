"""T1 (issue 25): a Parquet table into checked, deduplicated requests, beside a pandas script doing the same.

    python benchmarks/t1_table_in.py [--rows 1000000] [--duplicates 0.4] [--runs 1]
        [--only cbatch,pandas] [--pythonpath DIR ...] [--split]

Makes (once, in ``benchmarks/.work/t1/``) a Parquet table of ROWS rows, three text columns
of about 100 characters with DUPLICATES of the rows repeating an earlier one (the table
T3 uses, made by the same code). Then, each in a child process of its own pinned to one
core (``taskset -c 0``: one process, and the check's workers never start), against a
sandbox on loopback:

- ``cbatch``: ``cbatch create --from table.parquet --prompt TEMPLATE --model M --dry-run``
  with an empty answer cache: every row read in batches, rendered (Jinja2 sandbox),
  hashed, deduplicated on disk, looked up in the cache, written, and the requests file
  checked as ``create --file`` checks it (the model's one API call included). Nothing
  is sent.
- ``pandas``: the script a user would write: ``pd.read_parquet``, ``to_dict("records")``,
  the same template rendered by Jinja2's sandbox, a set of BLAKE2b-128 keys of each
  body's sorted JSON for the duplicates, and the standard library's ``json`` lines.
  It checks nothing.

``--split`` adds ``--split`` to cbatch's command: a table whose requests are over the
1.5 GB dataset limit (10,000,000 rows of this one: 2.6 GB) is a job of several batches,
and its dry run plans the parts (each request checked as the split reads the file).

It prints one JSON line a run: wall seconds, rows/s, CPU seconds, peak RSS (the child's
own, from ``wait4``), and the machine's load average. ``--pythonpath DIR`` (repeatable)
runs cbatch from a copy of the package in DIR instead of the installed one, each copy in
turn within a run, so a change is measured interleaved with the code before it
(``git archive REV cohere_batch_cli | tar -x -C DIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "t1"
sys.path.insert(0, str(HERE))

from t3_cache import MODEL, TEMPLATE, make_table  # noqa: E402  (one table maker for T1 and T3)

PANDAS = """
import hashlib, json, sys
import pandas as pd
from jinja2.sandbox import SandboxedEnvironment

table, out, model, template = sys.argv[1:5]
render = SandboxedEnvironment().from_string(template).render
seen = set()
with open(out, "w", encoding="utf-8") as fh:
    for number, row in enumerate(pd.read_parquet(table).to_dict("records"), 1):
        body = {"messages": [{"role": "user", "content": render(row)}]}
        key = hashlib.blake2b(
            json.dumps([model, body], sort_keys=True).encode(), digest_size=16
        ).digest()
        if key in seen:
            continue
        seen.add(key)
        fh.write(json.dumps({"custom_id": str(number), "body": body}) + "\\n")
"""


def pinned(argv: list[str]) -> list[str]:
    """``argv`` on one core when taskset is there (one process, as the target says)."""
    return ["taskset", "-c", "0", *argv] if shutil.which("taskset") else argv


# A child's peak RSS starts from the mm it was forked (or vfork-exec'd) from, so the measured
# command is forked by this small trampoline, never by the parent that holds the sandbox.
TRAMPOLINE = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    json.dump([os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, usage.ru_maxrss], fh)
"""


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> dict[str, object]:
    """Run ``argv`` to the end: wall and CPU seconds and its own peak RSS (wait4)."""
    report = WORK / "usage.json"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", TRAMPOLINE, str(report), *argv],
        env=env, cwd=cwd, capture_output=True, text=True,
    )  # fmt: skip
    took = time.perf_counter() - started
    code, cpu, rss = json.loads(report.read_text())
    if done.returncode != 0 or code != 0:
        raise SystemExit(f"{argv[:6]} exited {code}:\n{done.stderr[-2000:]}")
    return {
        "seconds": round(took, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mib": round(rss / 1024),
        "said": done.stderr.strip().splitlines()[:1],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--duplicates", type=float, default=0.4)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--only", default="cbatch,pandas")
    parser.add_argument("--pythonpath", action="append", default=[], metavar="DIR")
    parser.add_argument("--split", action="store_true")
    args = parser.parse_args()
    copies = [str(Path(d).resolve()) for d in args.pythonpath] or [None]
    WORK.mkdir(parents=True, exist_ok=True)
    table = WORK / f"table-{args.rows}.parquet"
    if not table.exists():
        make_table(table, args.rows, args.duplicates, seed=1)
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    settings = SandboxSettings(
        data_dir=WORK / "sandbox", port=0, queue_delay=0.0, validation_delay=0.0
    )
    script = WORK / "pandas_requests.py"
    script.write_text(PANDAS, encoding="utf-8")
    bin_dir = Path(sys.executable).parent
    with SandboxServer(settings) as server:
        for _ in range(args.runs):
            runs = [
                (name, copy)
                for name in args.only.split(",")
                for copy in (copies if name == "cbatch" else [None])
            ]
            for who, copy in runs:
                shutil.rmtree(WORK / "home", ignore_errors=True)
                (WORK / "home").mkdir()
                env = {
                    "PATH": os.environ.get("PATH", ""),
                    "HOME": str(WORK / "home"),
                    "CBATCH_CACHE_DIR": str(WORK / "home" / "cache"),
                    "CBATCH_STATE_DIR": str(WORK / "home" / "state"),
                    "CO_API_KEY": "sandbox-key-0123456789abcd9f3a",
                    "CO_API_URL": server.base_url,
                }
                if copy is not None:
                    env["PYTHONPATH"] = copy
                if who == "cbatch":
                    argv = [
                        str(bin_dir / "cbatch"), "create", "--from", str(table), "--prompt",
                        TEMPLATE, "--model", MODEL, "--dry-run", *(["--split"] if args.split else []),
                    ]  # fmt: skip
                else:
                    argv = [
                        sys.executable, str(script), str(table), str(WORK / "pandas.jsonl"),
                        MODEL, TEMPLATE,
                    ]  # fmt: skip
                load = os.getloadavg()[0]
                got = timed(pinned(argv), env, WORK)
                got.update(
                    who=who,
                    pythonpath=copy,
                    rows=args.rows,
                    rows_per_s=round(args.rows / float(got["seconds"])),  # type: ignore[arg-type]
                    rows_per_cpu_s=round(args.rows / float(got["cpu_seconds"])),  # type: ignore[arg-type]
                    load_before=round(load, 2),
                    load_after=round(os.getloadavg()[0], 2),
                )
                print(json.dumps(got), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
