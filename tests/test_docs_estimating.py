"""docs/estimating.md shows real output: its console sessions are run against a sandbox here.

The page's input files are the blocks after ``<!-- file: NAME -->`` markers; each
```` ```console ```` block after ``<!-- session -->`` is a sequence of ``$ command``
lines, each followed by what it printed (stdout and stderr as a terminal shows them,
in order). The commands run in a fresh directory with the installed ``cbatch``, pointed
at the session's sandbox, with the page's ``config.toml`` as the config file. Batch ids
written in the page stand for the batch the session created; ids, dataset suffixes and
the sandbox's port are the only things that may differ.

``CBATCH_REWRITE_DOCS=1 pytest tests/test_docs_estimating.py`` writes the output it got
into the page instead, for after a deliberate change.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import TEST_KEY

DOC = Path(__file__).resolve().parent.parent / "docs" / "estimating.md"
CBATCH = str(Path(sys.executable).parent / "cbatch")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DATASET = re.compile(r"\b([a-z]+)-(?:output-)?[a-z0-9]{6}\b")
SESSION = re.compile(r"<!-- session -->\s*```console\n(.*?)```", re.DOTALL)
MARKED = re.compile(r"<!-- (?:file: (\S+)|session) -->\s*```\w*\n(.*?)```", re.DOTALL)
"""A file (its name and content) or a session (no name, its block), in page order."""


PASSING = re.compile(r"^dataset \S+: (queued|processing)\n", re.MULTILINE)
"""A validation status seen on the way, or not, depending on when the poll lands."""


def normal(text: str, base_url: str) -> str:
    text = UUID.sub("<batch id>", text.replace(base_url, "http://127.0.0.1:8787"))
    return DATASET.sub(r"\1-<id>", PASSING.sub("", text))


def run(command: str, cwd: Path, env: dict[str, str], batch_id: str | None) -> str:
    if batch_id:
        command = UUID.sub(batch_id, command)
    argv = shlex.split(command)
    assert argv[0] == "cbatch", command
    done = subprocess.run(
        [CBATCH, *argv[1:]],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    return done.stdout


def wait_done(env: dict[str, str], batch_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = subprocess.run(
            [CBATCH, "get", batch_id, "--query", "status"], env=env, capture_output=True, text=True
        ).stdout
        if "COMPLETED" in status or "FAILED" in status:
            return
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} did not end")


def test_the_estimating_page_shows_what_cbatch_prints(sandbox: Any, tmp_path: Path) -> None:
    page = DOC.read_text(encoding="utf-8")
    env = {
        **os.environ,
        "CO_API_URL": sandbox.base_url,
        "CO_API_KEY": TEST_KEY,
        "CBATCH_CONFIG": str(tmp_path / "config.toml"),
        "COLUMNS": "100",
        "NO_COLOR": "1",
    }
    batch_id: str | None = None
    page_ids = [
        i
        for block in SESSION.findall(page)
        for line in block.splitlines()
        if line.startswith("$ ")
        for i in UUID.findall(line)
    ]
    rewritten, mismatches = page, []
    for match in MARKED.finditer(page):
        name, block = match.groups()
        if name:  # a file the sessions after it read: written when the reader meets it
            (tmp_path / name).write_text(block, encoding="utf-8")
            continue
        got_block = []
        for chunk in re.split(r"^(?=\$ )", block, flags=re.MULTILINE):
            if not chunk.strip():
                continue
            command, _, expected = chunk[2:].partition("\n")
            output = run(command, tmp_path, env, batch_id)
            if " -q" in command and UUID.fullmatch(output.strip().splitlines()[-1]):
                batch_id = output.strip().splitlines()[-1]
                wait_done(env, batch_id)
            shown = output.replace(sandbox.base_url, "http://127.0.0.1:8787").replace(
                str(tmp_path) + "/", ""
            )
            if batch_id and page_ids:
                shown = shown.replace(batch_id, page_ids[0])
            if normal(shown, sandbox.base_url) != normal(expected, sandbox.base_url):
                mismatches.append(f"$ {command}\n--- the page\n{expected}--- cbatch\n{shown}")
            got_block.append(f"$ {command}\n{shown}")
        at = match.start(2) + len(rewritten) - len(page)  # earlier blocks may have changed length
        rewritten = rewritten[:at] + "".join(got_block) + rewritten[at + len(block) :]
    if os.environ.get("CBATCH_REWRITE_DOCS"):
        DOC.write_text(rewritten, encoding="utf-8")
        return
    assert not mismatches, "docs/estimating.md differs from what cbatch prints:\n\n" + "\n".join(
        mismatches
    )
    assert SESSION.findall(page) and batch_id, "the page has sessions, and one creates a batch"
