"""docs/jobs.md shows real output: every captured session is run again against a sandbox
and must print what the page says, ids, job ids and times aside.

The machinery is the retry guide's (``tests/test_doc_retrying.py``): ``$`` lines run in
bash with the installed ``cbatch`` first on PATH, against a sandbox started with the
options of the page's ``cbatch sandbox serve`` line; ids are numbered by first appearance
on both sides. A job id is one more id: ``JOB`` in a command stands for this run's job,
and writing the page puts the id in its place. To write the page again::

    CBATCH_WRITE_DOCS=1 .venv/bin/python -m pytest tests/test_doc_jobs.py
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from tests.test_doc_retrying import _BLOCK, _SERVE, DOC_HOME, DOC_URL, KEY, VENV_BIN, Ids

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parent.parent / "docs" / "jobs.md"
_JOB = re.compile(r"\bjob ([a-z][a-z0-9]{9})\b")
_RATE = re.compile(r", [\d.,]+ records/s, about \d+(?:\.\d)? (?:s|min|h) left")
"""How fast a job goes, and how long it has left, differ from run to run."""
_PROGRESS = re.compile(r"^job \S+: (\d+) of (\d+) parts ended, [^\n]*\n", re.M)
"""A job line for each poll parts end in: how many parts end in one poll differs from run to
run, so a page and a run are compared on the line that says every part ended."""
_PART_INPUT = re.compile(r"\S+/retry-input-(\d+)\.jsonl")
"""A retry's input cut from the job's file, in a private folder whose name is random."""


def settings(text: str, data_dir: Path) -> tuple[SandboxSettings, dict[str, str]]:
    """The page's sandbox, and the environment its session exports beyond the URL and key."""
    match = _SERVE.search(text)
    assert match, "docs/jobs.md shows no 'cbatch sandbox serve' line"
    args = shlex.split(match.group(1))
    values: dict[str, Any] = {}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        name = flag.removeprefix("--").replace("-", "_")
        if name != "port":
            values[name] = int(value) if value.isdigit() and name != "queue_delay" else float(value)
    exported = dict(re.findall(r"\b(CBATCH_[A-Z_]+)=(\S+)", text))
    return SandboxSettings(data_dir=data_dir, port=0, output_ready_delay=0.0, **values), exported


def run(
    command: str, cwd: Path, url: str, last_code: int, extra: dict[str, str]
) -> tuple[str, int]:
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(cwd), "CO_API_URL": url,
        "CO_API_KEY": KEY, "CBATCH_CONFIG": str(cwd / "config.toml"), "CBATCH_STATE_DIR": str(cwd / "state"),
        "XDG_CACHE_HOME": str(cwd / "cache"), "NO_COLOR": "1", "COLUMNS": "120", "LANG": "C.UTF-8", **extra,
    }  # fmt: skip
    script = f"exec 2>&1\n(exit {last_code})\n{command.replace(DOC_URL, url)}"
    done = subprocess.run(["bash", "--noprofile", "--norc", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    return done.stdout, done.returncode


def this_job(work: Path) -> str | None:
    path = work / "state" / "state.sqlite3"
    if not path.exists():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute("SELECT id FROM jobs ORDER BY created_at DESC").fetchone()
    return row[0] if row else None


def normal(ids: Ids, text: str, url: str, job: str | None) -> str:
    text = _PART_INPUT.sub(lambda m: f"<work>/retry-input-{m.group(1)}.jsonl", text)
    text = _PROGRESS.sub(lambda m: m.group(0) if m.group(1) == m.group(2) else "", text)
    text = ids.normal(_RATE.sub(", <rate>", text), url)
    text = text.replace(job, "<job>") if job else text
    return _steps_sorted(text)


def _steps_sorted(text: str) -> str:
    """Each run of ``part N of M: ...`` lines sorted: a part is created as soon as the service has
    validated its dataset, while later parts upload, so the order of those lines is the service's."""
    out: list[str] = []
    run: list[str] = []
    for line in [*text.split("\n"), None]:
        if line is not None and re.match(r"part \d+ of \d+: ", line):
            run.append(line)
            continue
        out.extend(sorted(run))
        run = []
        if line is not None:
            out.append(line)
    return "\n".join(out)


def test_the_jobs_guide_shows_what_cbatch_prints(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    writing = bool(os.environ.get("CBATCH_WRITE_DOCS"))
    page_job = next(iter(_JOB.findall(text)), None)
    work = tmp_path / "work"
    work.mkdir()
    sandbox, extra = settings(text, tmp_path / "sandbox")
    server = SandboxServer(sandbox).start()
    page_ids, run_ids = Ids(), Ids()
    written: list[str] = []
    code = 0
    try:
        for block in _BLOCK.finditer(text):
            session: list[str] = []
            for line in block.group(2).splitlines():
                if not line.startswith("$ "):
                    continue
                job = this_job(work)
                command = line[2:]
                if job is not None:
                    command = re.sub(
                        r"\bJOB\b", job, command.replace(page_job, job) if page_job else command
                    )
                output, code = run(command, work, server.base_url, code, extra)
                session.append(f"$ {command}\n{output}")
                run_ids.see(session[-1])
            got = "".join(session).replace(server.base_url, DOC_URL).replace(str(work), DOC_HOME)
            written.append(got)
            if not writing:
                theirs = normal(run_ids, got, server.base_url, this_job(work))
                ours = normal(page_ids, block.group(2), server.base_url, page_job)
                diff = "\n".join(
                    difflib.unified_diff(
                        ours.splitlines(),
                        theirs.splitlines(),
                        "docs/jobs.md",
                        "this run",
                        lineterm="",
                    )
                )
                assert theirs == ours, (
                    "docs/jobs.md is out of date: write it again with CBATCH_WRITE_DOCS=1 "
                    f".venv/bin/python -m pytest tests/test_doc_jobs.py\n{diff}"
                )
    finally:
        server.stop()
    if writing:
        pieces = iter(written)
        DOC.write_text(
            _BLOCK.sub(lambda m: m.group(1) + next(pieces) + m.group(3), text), encoding="utf-8"
        )
