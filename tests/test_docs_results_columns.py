"""docs/results-columns.md shows real output: its examples are run here and compared line by line.

The page's blocks are marked: ``<!-- file: NAME -->`` before a JSON block writes that
file, ``<!-- setup -->`` before a sh block runs it (its output is not shown), and
``<!-- console: NAME -->`` before a console block runs each ``$ `` line in the same bash
session and expects the lines below it. Output dataset ids differ on every run and are
compared as ``-output-XXXXXX``. ``CBATCH_WRITE_DOCS=1`` writes what was printed into the page
instead, after a change that alters it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "results-columns.md"
BLOCK = re.compile(
    r"<!-- (file|setup|console)(?:: ([\w.-]+))? -->\n```(\w+)\n(.*?)\n```", re.DOTALL
)
MARK = "@@cbatch-docs-command@@"


def normal(text: str) -> str:
    return re.sub(r"-output-[a-z0-9]{6}\b", "-output-XXXXXX", text)


def consoles(page: str) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """Each console block as (name, [(command, expected lines)])."""
    found = []
    for kind, name, _, body in BLOCK.findall(page):
        if kind != "console":
            continue
        commands: list[tuple[str, list[str]]] = []
        for line in body.splitlines():
            if line.startswith("$ "):
                commands.append((line[2:], []))
            else:
                commands[-1][1].append(line)
        found.append((name, commands))
    return found


def run_page(page: str, cwd: Path, base_url: str) -> list[list[str]]:
    """Write the files, run the set-up and every command in one bash session; each command's output lines."""
    script = ["set -e"]
    for kind, name, _, body in BLOCK.findall(page):
        if kind == "file":
            (cwd / name).write_text(body + "\n", encoding="utf-8")
        elif kind == "setup":
            script.append("{\n" + body + "\n} 2>> setup.log")
    script.append("set +e")
    for _, commands in consoles(page):
        for command, _ in commands:
            script += [f"echo {MARK}", f"{command} 2>&1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CO_", "COHERE_", "CBATCH_"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        CO_API_URL=base_url, CO_API_KEY="docs-key", CBATCH_CONFIG=str(cwd / "config.toml"),
        XDG_CACHE_HOME=str(cwd / "cache"), NO_COLOR="1", COLUMNS="100",
    )  # fmt: skip
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", "\n".join(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    setup_log = (cwd / "setup.log").read_text() if (cwd / "setup.log").exists() else ""
    assert result.returncode == 0 and MARK in result.stdout, (
        f"{result.stdout}\n{result.stderr}\n{setup_log}"
    )
    return [chunk.strip("\n").splitlines() for chunk in result.stdout.split(MARK + "\n")[1:]]


def rewritten(page: str, outputs: list[list[str]]) -> str:
    """The page with each console block's output replaced by what was printed."""
    queue = iter(outputs)

    def block(match: re.Match[str]) -> str:
        kind, name, lang, body = match.groups()
        if kind != "console":
            return match.group(0)
        lines = []
        for line in body.splitlines():
            if line.startswith("$ "):
                lines += [line, *next(queue)]
        return f"<!-- console: {name} -->\n```{lang}\n" + "\n".join(lines) + "\n```"

    return BLOCK.sub(block, page)


def test_the_examples_print_what_the_page_shows(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    page = PAGE.read_text(encoding="utf-8")
    settings = SandboxSettings(
        data_dir=tmp_path_factory.mktemp("docs-sandbox"),
        port=0,
        shuffle=False,
        seed=1,
        records_per_second=2000,
    )
    with SandboxServer(settings) as server:
        outputs = run_page(page, tmp_path, server.base_url)
    if os.environ.get("CBATCH_WRITE_DOCS") == "1":
        PAGE.write_text(rewritten(page, outputs), encoding="utf-8")
        return
    expected = [
        (f"{name}: $ {command}", lines)
        for name, commands in consoles(page)
        for command, lines in commands
    ]
    assert len(expected) == len(outputs)
    for (where, lines), got in zip(expected, outputs, strict=True):
        assert normal("\n".join(got)) == normal("\n".join(lines)), (
            f"docs/results-columns.md, {where}"
        )
