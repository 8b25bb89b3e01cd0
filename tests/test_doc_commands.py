"""Every cbatch command the docs name exists, with every option it is shown with.

The console examples are run (tests/test_docs.py); this covers the rest: commands
in prose code spans, in shell and YAML blocks, and in the hints shown inside
output. Each is parsed against the real command tree (no command is run), and a
failure names the page, the command and what is wrong with it, page by page.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from cohere_batch_cli.cli.app import GLOBAL_OPTION_NAMES, app

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    ROOT / "README.md",
    *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "reference.md"),
]
"""docs/reference.md is --help itself, regenerated and compared by tests/test_docs.py."""
SHELL = {"sh", "bash", "shell", "yaml", "yml"}
FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
SPAN = re.compile(r"`([^`\n]+)`")
COMMAND = re.compile(r"(?:^|[\s(\"'=:$])cbatch((?: +[^\s].*)?)$")
STOP = {"|", "||", "&&", ";", "&", ")", "(", ">", ">>", "<", "2>", "#"}
PLACEHOLDERS = {"...", "…"}


def _code(text: str) -> list[tuple[str, bool]]:
    """Every line of code on a page, and whether it is a command as typed (a console block's
    ``$`` lines, shell and YAML blocks, inline spans) rather than output that may name one
    (the hints a command prints, in console and text blocks)."""
    lines: list[tuple[str, bool]] = []
    for match in FENCE.finditer(text):
        kind = match.group(1)
        for line in match.group(2).splitlines():
            lines.append((line, kind in SHELL or (kind == "console" and line.startswith("$ "))))
    outside = FENCE.sub("", text)
    lines.extend((m.group(1), True) for m in SPAN.finditer(outside))
    return lines


def _commands(line: str) -> list[list[str]]:
    """The argument lists after each ``cbatch`` on one line of code, up to a pipe or the like."""
    found = []
    line = line.removeprefix("$ ")
    for match in re.finditer(r"(?<![\w/.-])cbatch(?= |$)", line):
        if line[: match.start()].endswith("--only "):  # a benchmark naming the tool it measures
            continue
        rest = line[match.end() :]
        lexer = shlex.shlex(rest, posix=True, punctuation_chars="|&;()<>")
        lexer.whitespace_split = True
        lexer.commenters = ""
        tokens: list[str] = []
        try:
            for token in lexer:
                if token in STOP or token.startswith(("|", "&", ";", ")", ">", "<")):
                    break
                tokens.append(token)
        except ValueError:  # an unclosed quote in an abridged line: keep what was read
            pass
        found.append(tokens)
    return found


def _options(command: object) -> dict[str, bool]:
    """Every spelling of an option of ``command``, and whether it takes a value."""
    table: dict[str, bool] = {}
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") != "option":
            continue
        takes = not (param.is_flag or param.count)  # type: ignore[attr-defined]
        for name in [*param.opts, *param.secondary_opts]:  # type: ignore[attr-defined]
            table[name] = takes
    return table


ROOT_COMMAND = typer.main.get_command(app)
ROOT_OPTIONS = _options(ROOT_COMMAND)


def problem(args: list[str]) -> str | None:
    """What is wrong with ``cbatch ARGS`` (None: it parses)."""
    command: object = ROOT_COMMAND
    path = ["cbatch"]
    position = 0
    # Global options before the command.
    while position < len(args) and args[position].startswith("-"):
        name = args[position].split("=", 1)[0]
        if name in ("--help", "-h", "--version"):
            return None
        if name not in ROOT_OPTIONS:
            return f"no global option {name}"
        position += 2 if ROOT_OPTIONS[name] and "=" not in args[position] else 1
    # The command, and its sub-commands.
    while hasattr(command, "get_command"):
        if position >= len(args) or args[position] in PLACEHOLDERS:
            return None  # "cbatch jobs ...": the group itself
        name = args[position]
        if name.isupper() or name.startswith("[") or "/" in name:
            return None  # "cbatch COMMAND", "cbatch [OPTIONS]", "datasets get/delete": shorthand
        sub = command.get_command(None, name)  # type: ignore[attr-defined]
        if sub is None:
            return f"no command {' '.join([*path, name])!r}"
        command, position = sub, position + 1
        path.append(name)
    options = {**_options(command), **{n: ROOT_OPTIONS[n] for n in GLOBAL_OPTION_NAMES}}
    while position < len(args):
        token = args[position]
        position += 1
        if token == "--":
            break
        if not token.startswith("-") or token == "-" or re.fullmatch(r"-\d+(\.\d+)?", token):
            continue
        name = token.split("=", 1)[0]
        if name in ("--help", "-h"):
            continue
        if name not in options:
            return f"{' '.join(path)} has no option {name}"
        if options[name] and "=" not in token:
            position += 1
    return None


def _page_problems(page: Path) -> list[str]:
    problems = []
    for line, typed in _code(page.read_text(encoding="utf-8")):
        for args in _commands(line):
            if not args:
                continue
            wrong = problem(args)
            if wrong and not typed and wrong.startswith("no command"):
                continue  # output that says "cbatch sandbox listening on ...": not a command
            if wrong:
                problems.append(f"{wrong}: cbatch {' '.join(args)}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_command_a_page_names_exists_with_its_options(page: Path) -> None:
    assert _page_problems(page) == []


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_no_page_installs_cbatch_from_an_index_it_is_not_on(page: Path) -> None:
    """cbatch is not on PyPI: an install line names a clone, a wheel or a repository."""
    text = page.read_text(encoding="utf-8")
    assert (
        re.findall(r"pip install ['\"]?cohere-batch-cli(?:\[[a-z,]+\])?['\"]?(?![\[\w-]| @)", text)
        == []
    )


def test_the_checker_finds_a_wrong_command_and_a_wrong_option() -> None:
    assert problem(["list", "--all", "-q"]) is None
    assert problem(["--profile", "ci", "jobs", "watch", "JOB", "--plain"]) is None
    assert problem(["jobs", "results", "JOB", "--own"]) == (
        "cbatch jobs results has no option --own"
    )
    assert problem(["lst"]) == "no command 'cbatch lst'"
    assert _commands("$ cbatch list -q --status queued --all | cbatch cancel - --yes") == [
        ["list", "-q", "--status", "queued", "--all"],
        ["cancel", "-", "--yes"],
    ]
