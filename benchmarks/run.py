"""cbatch's benchmarks: start-up, one call, listing, results, upload, watching (issue 6), retry (P7, P7b),
estimating (P11), Parquet (P12).

    .venv/bin/python benchmarks/run.py                 # every case, about 5 minutes
    .venv/bin/python benchmarks/run.py --quick         # fewer runs, smaller data
    .venv/bin/python benchmarks/run.py --only P1,P3    # some cases
    .venv/bin/python benchmarks/run.py --no-sdk        # skip the official-SDK comparisons
    .venv/bin/python benchmarks/run.py --write-docs    # also record the table in docs/performance.md
    .venv/bin/python benchmarks/run.py --only P12 --write-docs   # into P12's own block there
    .venv/bin/python benchmarks/run.py --only P11 --write-docs   # P11 has its own section there

Run it with the project venv's python (the README's set-up). It starts sandboxes on free
loopback ports, prepares the data under ``benchmarks/.work/`` (gitignored), runs each
command several times after a warm-up, interleaving the commands it compares, and prints
medians, ratios, targets and a pass/MISS mark. The official Cohere SDK is a benchmark-only
dependency: it is installed on first use into ``benchmarks/.work/sdk-venv`` (with
pyinstrument and py-spy for profiling), never into the project's venv.
Exit status: 0 when every measured target is met, 1 when one is missed, 2 on an error.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lib import REPO, WORK, Context, Row, sdk_python, sdk_version
from cases import CASES, p1_detail

DOCS = REPO / "docs" / "performance.md"
BLOCKS = {
    "latest": ("<!-- benchmarks:start -->", "<!-- benchmarks:end -->"),
    "candidate": ("<!-- benchmarks:candidate:start -->", "<!-- benchmarks:candidate:end -->"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer runs and smaller data (a minute or two)"
    )
    parser.add_argument("--only", default="", help="comma-separated cases, e.g. P1,P3")
    parser.add_argument(
        "--no-sdk", action="store_true", help="skip the comparisons with the official SDK"
    )
    parser.add_argument(
        "--write-docs", action="store_true", help="record the results in docs/performance.md"
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    parser.add_argument(
        "--pythonpath",
        metavar="DIR",
        help="run cbatch with a candidate copy of cohere_batch_cli from DIR (to measure a change before it lands)",
    )
    args = parser.parse_args(argv)
    if args.pythonpath:
        os.environ["CBATCH_BENCH_PYTHONPATH"] = str(Path(args.pythonpath).resolve())

    by_name = {case.upper(): case for case in CASES}  # --only p7b names P7b
    wanted = [
        by_name.get(c.strip().upper(), c.strip()) for c in args.only.split(",") if c.strip()
    ] or list(CASES)
    unknown = [c for c in wanted if c not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]}; choose from {', '.join(CASES)}")
    WORK.mkdir(parents=True, exist_ok=True)
    ctx = Context(quick=args.quick, no_sdk=args.no_sdk)
    started = time.monotonic()
    rows: list[Row] = []
    errors = 0
    for case in wanted:
        title, run = CASES[case]
        print(f"{case} {title} ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            rows.extend(run(ctx))
        except Exception as exc:  # one broken case must not hide the others
            errors += 1
            traceback.print_exc()
            rows.append(
                Row(
                    case,
                    title,
                    f"ERROR: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}",
                    "",
                    False,
                )
            )
        print(f"{case} done in {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    elapsed = time.monotonic() - started

    table = markdown_table(rows)
    print()
    print(table)
    print(
        f"\n{sum(r.ok is True for r in rows)} met, {sum(r.ok is False for r in rows)} missed, in {elapsed:.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=2) + "\n")
    if args.write_docs:
        # A case with a block of its own on the page (benchmarks:P11, benchmarks:P12) is
        # written there, so a run of it alone never replaces the table of a full run; a
        # candidate's rows go to the candidate block.
        block = "candidate" if args.pythonpath else "latest"
        write_docs(rows, ctx, argv if argv is not None else sys.argv[1:], elapsed, block)
        print(f"wrote {DOCS.relative_to(REPO)}", file=sys.stderr)
    if errors:
        return 2
    return 1 if any(r.ok is False for r in rows) else 0


def markdown_table(rows: list[Row]) -> str:
    head = ["case", "measure", "result (medians)", "target", "mark"]
    body = [[r.case, r.measure, r.result, r.target, r.mark] for r in rows]
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)
    ]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join(
        [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)]
    )


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    except (ValueError, OSError):
        mem = 0
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem} GiB RAM, {platform.system()} {platform.release()}"
    )


def versions(ctx: Context) -> str:
    from importlib.metadata import version

    parts = [f"CPython {platform.python_version()}"]
    for dist in ("typer", "httpx", "rich", "fastavro", "pyarrow", "tokenizers"):
        with contextlib.suppress(Exception):
            parts.append(f"{dist} {version(dist)}")
    sdk = None if ctx.no_sdk else sdk_python(install=False)
    if sdk:
        parts.append(f"cohere SDK {sdk_version(sdk)}")
    return ", ".join(parts)


def case_block(case: str) -> tuple[str, str]:
    """The markers of a case recorded in a section of its own (P11), rather than the latest table."""
    return f"<!-- benchmarks:{case}:start -->", f"<!-- benchmarks:{case}:end -->"


def write_docs(
    rows: list[Row], ctx: Context, argv: list[str], elapsed: float, block_name: str = "latest"
) -> None:
    """Replace the marked blocks of docs/performance.md with this run's rows.

    A case whose own block is on the page (``<!-- benchmarks:P11:start -->``) is written
    there; the rest go to the latest block (with --pythonpath: the candidate block), so a
    run of one such case leaves every other case's figures as they were.
    """
    text = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    own = set()
    if block_name == "latest":
        own = {
            r.case for r in rows if case_block(r.case)[0] in text and case_block(r.case)[1] in text
        }
    for case in sorted(own):
        text = _replace(
            text,
            case_block(case),
            _block(
                case_block(case), [r for r in rows if r.case == case], ctx, argv, elapsed, {case}
            ),
        )
    rest = [r for r in rows if r.case not in own]
    if rest:
        cases = {r.case for r in rest}
        text = _replace(
            text, BLOCKS[block_name], _block(BLOCKS[block_name], rest, ctx, argv, elapsed, cases)
        )
    DOCS.write_text(text)


def _block(
    markers: tuple[str, str],
    rows: list[Row],
    ctx: Context,
    argv: list[str],
    elapsed: float,
    cases: set[str],
) -> str:
    start, end = markers
    command = ".venv/bin/python benchmarks/run.py" + ("" if not argv else " " + shlex.join(argv))
    lines = [
        start,
        f"Produced by `{command}` on {dt.date.today().isoformat()}, in {elapsed:.0f} s.",
        f"Machine: {machine()}.  ",
        f"Software: {versions(ctx)}.",
        "",
        markdown_table(rows),
        "",
    ]
    notes = [
        f"- {case}: {text}" for case, texts in ctx.notes.items() if case in cases for text in texts
    ]
    detail = p1_detail()
    if detail and "P1" in cases:
        notes.append(
            "- P1: slowest cbatch modules under `-X importtime` for `--help`: " + "; ".join(detail)
        )
    if notes:
        lines += ["Notes from this run:", "", *notes, ""]
    lines.append(end)
    return "\n".join(lines)


def _replace(text: str, markers: tuple[str, str], block: str) -> str:
    start, end = markers
    if start in text and end in text:
        head, rest = text.split(start, 1)
        return head + block + rest.split(end, 1)[1]
    return text.rstrip() + "\n\n" + block + "\n"


if __name__ == "__main__":
    sys.exit(main())
