"""The benchmark harness runs: one quick case end to end, a row per measure, no timings asserted.

Timings are never test assertions here (shared machines drift); this only proves that
``benchmarks/run.py`` starts, measures and prints its table, so it cannot rot unnoticed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_run_py_quick_p1_produces_its_rows(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "--only",
            "P1",
            "--quick",
            "--no-sdk",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    # 0: every target met, 1: some missed; both mean the harness worked. 2 is an error.
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    measures = [r["measure"] for r in rows if r["case"] == "P1"]
    assert any("--version" in m for m in measures), rows
    assert any("--help" in m for m in measures), rows
    assert all(r["case"] == "P1" for r in rows)
    assert not any(r["result"].startswith("ERROR") for r in rows), rows
    assert "| P1" in proc.stdout and "target" in proc.stdout


def test_run_py_rejects_an_unknown_case() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--only", "P99"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert "unknown case P99" in proc.stderr
