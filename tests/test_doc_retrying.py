"""docs/retrying.md shows real output: every captured session is run again against a sandbox
and must print what the page says, ids and times aside.

A ``console`` block after a ``<!-- capture -->`` marker is a shell session: its ``$`` lines
are commands, run in order by bash (stderr into stdout, as a terminal shows both) with the
installed ``cbatch`` first on PATH, against a sandbox started with the options of the page's
``cbatch sandbox serve`` line. The rest of the block is what they must print. Ids differ from
run to run, so both sides are compared with each id, time and dataset suffix replaced by a
placeholder numbered by first appearance; an id in a command stands for the id found at the
same place in this run's output.

To write the page's output again (after changing what cbatch prints)::

    CBATCH_WRITE_DOCS=1 .venv/bin/python -m pytest tests/test_doc_retrying.py

In a command, ``BATCH`` and ``RETRY_N`` stand for the first batch and its attempt N; writing
the page replaces them with this run's ids.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli import naming
from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parent.parent / "docs" / "retrying.md"
VENV_BIN = Path(sys.executable).parent
DOC_URL = "http://127.0.0.1:8787"
DOC_HOME = "/home/me/support"
"""The folder the page's sessions run in, as the page names it."""
KEY = "any-key"

_BLOCK = re.compile(r"(<!-- capture -->\n```console\n)(.*?)(```)", re.S)
_SERVE = re.compile(r"^cbatch sandbox serve (.*)$", re.M)
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_TIME = re.compile(r"\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?Z?")
_DATASET = re.compile(
    r"(?<=dataset )[a-z0-9][a-z0-9-]*-[a-z0-9]{6}\b|(?<=dataset:) +[a-z0-9][a-z0-9-]*-[a-z0-9]{6}\b"
)
_PASSING = re.compile(r"^dataset <dataset-\d+>: (?:queued|processing)\n", re.M)
"""A dataset's passing validation states show or not, depending on when cbatch looks."""
_PLACEHOLDER = re.compile(r"\b(BATCH|RETRY_(\d+))\b")


class Ids:
    """Each id numbered by its first appearance, so two runs compare place for place."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}
        self.datasets: dict[str, int] = {}

    def see(self, text: str) -> None:
        for found in _UUID.findall(text):
            self.numbers.setdefault(found, len(self.numbers) + 1)

    def normal(self, text: str, url: str) -> str:
        self.see(text)
        text = text.replace(url, DOC_URL)
        text = re.sub(
            r"/\S+/work(?=/)", DOC_HOME, text
        )  # the session's folder, wherever the test ran
        text = _DATASET.sub(self._dataset, text)
        text = _UUID.sub(lambda m: f"<id-{self.numbers[m.group(0)]}>", text)
        for uuid, number in self.numbers.items():
            text = text.replace(uuid[:8], f"<id-{number}:8>")
        return _PASSING.sub("", _TIME.sub("<time>", text))

    def _dataset(self, match: re.Match[str]) -> str:
        name = match.group(0).strip()
        number = self.datasets.setdefault(name, len(self.datasets) + 1)
        return (
            match.group(0)[: len(match.group(0)) - len(match.group(0).lstrip())]
            + f"<dataset-{number}>"
        )


def sandbox_settings(text: str, data_dir: Path) -> SandboxSettings:
    """The settings of the page's ``cbatch sandbox serve`` line."""
    match = _SERVE.search(text)
    assert match, "docs/retrying.md shows no 'cbatch sandbox serve' line"
    args = shlex.split(match.group(1))
    values: dict[str, Any] = {}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        name = flag.removeprefix("--").replace("-", "_")
        if name != "port":
            values[name] = int(value) if name == "seed" else float(value)
    return SandboxSettings(data_dir=data_dir, port=0, output_ready_delay=0.0, **values)


def attempt_ids(client: CohereClient) -> dict[int, str]:
    """The first batch of the sandbox (attempt 1) and each of its retries, by attempt number."""
    batches = list(client.iter_batches(page_size=1000))
    if not batches:
        return {}
    root = batches[-1]
    found = {1: root.id}
    for batch in batches:
        lineage = naming.parse_batch_name(batch.name)[1]
        if lineage is not None and lineage.root_batch_id == root.id:
            found[lineage.attempt] = batch.id
    return found


def translate(command: str, page: Ids, this_run: Ids, attempts: dict[int, str]) -> str:
    """A page's command for this run: each id the one at the same place here, placeholders filled."""
    by_number = {n: uuid for uuid, n in this_run.numbers.items()}
    command = _UUID.sub(lambda m: by_number.get(page.numbers[m.group(0)], m.group(0)), command)
    return _PLACEHOLDER.sub(lambda m: attempts[int(m.group(2) or 1)], command)


def run(command: str, cwd: Path, url: str, last_code: int) -> tuple[str, int]:
    """One command in bash (``$?`` as the command before left it), stderr into stdout."""
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(cwd),
        "CO_API_URL": url,
        "CO_API_KEY": KEY,
        "CBATCH_CONFIG": str(cwd / "config.toml"),
        "CBATCH_STATE_DIR": str(cwd / "state"),
        "XDG_CACHE_HOME": str(cwd / "cache"),
        "NO_COLOR": "1",
        "COLUMNS": "120",
        "LANG": "C.UTF-8",
    }
    script = f"exec 2>&1\n(exit {last_code})\n{command.replace(DOC_URL, url)}"
    done = subprocess.run(["bash", "--noprofile", "--norc", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    return done.stdout, done.returncode


def test_the_retry_guide_shows_what_cbatch_prints(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    writing = bool(os.environ.get("CBATCH_WRITE_DOCS"))
    work = tmp_path / "work"
    work.mkdir()
    server = SandboxServer(sandbox_settings(text, tmp_path / "sandbox")).start()
    client = CohereClient(KEY, server.base_url)
    page_ids, run_ids = Ids(), Ids()
    written: list[str] = []
    code = 0
    try:
        for block in _BLOCK.finditer(text):
            lines = block.group(2).splitlines()
            session: list[str] = []
            for i, line in enumerate(lines):
                if not line.startswith("$ "):
                    continue
                page_ids.see("\n".join(lines[: i + 1]))
                command = translate(line[2:], page_ids, run_ids, attempt_ids(client))
                output, code = run(command, work, server.base_url, code)
                session.append(f"$ {command}\n{output}")
                run_ids.see(session[-1])
            got = "".join(session).replace(server.base_url, DOC_URL).replace(str(work), DOC_HOME)
            written.append(got)
            if not writing:
                theirs, ours = (
                    run_ids.normal(got, server.base_url),
                    page_ids.normal(block.group(2), server.base_url),
                )
                diff = "\n".join(
                    difflib.unified_diff(
                        ours.splitlines(),
                        theirs.splitlines(),
                        "docs/retrying.md",
                        "this run",
                        lineterm="",
                    )
                )
                assert theirs == ours, (
                    "docs/retrying.md is out of date: write it again with CBATCH_WRITE_DOCS=1 "
                    f".venv/bin/python -m pytest tests/test_doc_retrying.py\n{diff}"
                )
    finally:
        client.close()
        server.stop()
    if writing:
        pieces = iter(written)
        DOC.write_text(
            _BLOCK.sub(lambda m: m.group(1) + next(pieces) + m.group(3), text), encoding="utf-8"
        )


def test_the_retry_guides_prose_counts_what_its_output_shows() -> None:
    """The sentence under the first batch's watch says the counts its last line shows (issue 24, item 11)."""
    text = DOC.read_text(encoding="utf-8")
    shown = re.search(r"completed: (\d+)/(\d+) records \((\d+) ok, (\d+) failed\); output", text)
    assert shown is not None
    done, total, _ok, failed = map(int, shown.groups())
    prose = re.search(
        r"The batch completed with (\d+) records failed and (\d+) that never came back \((\d+) of (\d+) processed\)",
        text,
    )
    assert prose is not None, "the page no longer says what the first batch did"
    assert tuple(map(int, prose.groups())) == (failed, total - done, done, total)
