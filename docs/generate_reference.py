"""Write docs/reference.md from the CLI itself: every command's --help, and the help topics.

Run ``python docs/generate_reference.py`` after changing a command; the test
suite runs it with ``--check`` and fails when the committed file is stale.
The pages come from running the real app (typer's CliRunner at a fixed
width), so the reference is exactly what users see.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from generated_page import write_or_check

REFERENCE = Path(__file__).with_name("reference.md")
WIDTH = "100"


def _help(args: list[str]) -> str:
    from typer.testing import CliRunner

    from cohere_batch_cli.cli.app import app

    result = CliRunner().invoke(
        app, [*args, "--help"], env={"COLUMNS": WIDTH, "NO_COLOR": "1", "TERM": "dumb"}
    )
    if result.exit_code != 0:
        raise SystemExit(f"cbatch {' '.join(args)} --help failed: {result.output}")
    return result.stdout.rstrip() + "\n"


NOT_COMMANDS = ("Usage:", "Options:", "Arguments:")


def _subcommands(help_text: str) -> list[str]:
    """Command names from the command sections of a help page (Batches:, Commands:...), in order."""
    names, inside = [], False
    for line in help_text.splitlines():
        if line and not line[0].isspace() and line.endswith(":") and line not in NOT_COMMANDS:
            inside = True
            continue
        if inside:
            if not line.startswith("  "):
                inside = False
                continue
            if line.startswith("  ") and not line.startswith("   ") and line.split():
                names.append(line.split()[0])
    return names


def _walk(path: list[str]) -> list[tuple[list[str], str]]:
    text = _help(path)
    pages = [(path, text)]
    for name in _subcommands(text):
        pages += _walk([*path, name])
    return pages


def render() -> str:
    from cohere_batch_cli.cli.help_topics import TOPICS

    os.environ["COLUMNS"] = WIDTH
    out = [
        "# Command reference",
        "",
        "Generated from the CLI by `python docs/generate_reference.py`; do not edit by hand.",
        "",
    ]
    for path, text in _walk([]):
        title = " ".join(["cbatch", *path])
        out += [
            f"## {title}",
            "",
            "```text",
            text.replace("Usage: root", "Usage: cbatch").rstrip(),
            "```",
            "",
        ]
    for topic, make in TOPICS.items():
        out += [f"## cbatch help {topic}", "", "```text", make(), "```", ""]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    return write_or_check(REFERENCE, render(), argv, "docs/generate_reference.py")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main(sys.argv[1:]))
