"""Every console example in README.md and docs/ is real output: run, and checked or rewritten.

    python docs/console_examples.py --check     # exit 1 when an example differs (tests/test_docs.py)
    python docs/console_examples.py --write     # rewrite the examples with this run's output

Each ```console block is a session: ``$ command`` lines, each followed by what it
prints (stdout and stderr together, as a terminal shows them). The blocks of one
page run in order, in one scratch folder, against one sandbox made for the page
(:data:`PAGES`), so ``create`` in one block makes the batch ``watch`` follows in
the next. The commands run off a terminal, as in a CI log; a page that shows a
table asks for one (``--format table``) at the width it names.

What differs from run to run is matched, not compared: batch ids (UUIDs),
dataset ids (``name-`` and six letters and digits), times, durations, ports and
the scratch folder (shown as ``/home/me``). An id seen in an example's output
stands for the id this run printed in the same place, in the commands that
follow. A line ``...`` stands for any number of lines, and ``...`` inside a line
for any text, so a long line may be shown abridged.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CBATCH = str(Path(sys.executable).parent / "cbatch")
BLOCK = re.compile(r"```console\n(.*?)```", re.DOTALL)
WAIT = 60.0

VARIABLE = re.compile(
    r"(?P<uuid>\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b)"
    r"|(?P<time>\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?)"
    r"|(?P<dataset>\b[a-z0-9]+(?:-[a-z0-9]+)*-[a-z0-9]{6}\b)"
    r"|(?P<port>127\.0\.0\.1:\d+)"
    r"|(?P<duration>\b\d+(?:\.\d+)?(?:ms|s)\b|\b\d+m\d\ds\b|\b\d+h\d\dm\b)"
)


def normalize(line: str) -> tuple[str, list[str]]:
    """A line with what varies replaced by its kind, and the values replaced, in order."""
    found: list[str] = []

    def swap(match: re.Match[str]) -> str:
        kind = match.lastgroup or "x"
        if kind in ("uuid", "dataset"):
            found.append(match.group())
        return f"<{kind}>"

    text = VARIABLE.sub(swap, line.rstrip())
    return re.sub(r" {2,}", "  ", text), found


def _is_uuid(value: str) -> bool:
    return (
        re.fullmatch(VARIABLE.pattern, value) is not None
        and len(value) == 36
        and value.count("-") == 4
    )


def _is_dataset(value: str) -> bool:
    return not _is_uuid(value)


def line_matches(doc: str, actual: str, bindings: dict[str, str]) -> bool:
    """One documented line against one printed line; binds the ids it shows."""
    doc_text, doc_ids = normalize(doc)
    real_text, real_ids = normalize(actual)
    if "..." in doc_text:
        pattern = ".*".join(re.escape(part) for part in doc_text.split("..."))
        if not re.fullmatch(pattern, real_text):
            return False
    elif doc_text != real_text:
        return False
    if "..." not in doc_text:
        for d, r in zip(doc_ids, real_ids, strict=False):
            bindings.setdefault(d, r)
    return True


def block_matches(doc: list[str], actual: list[str], bindings: dict[str, str]) -> bool:
    """Documented lines against printed ones; a ``...`` line takes any number of lines."""
    if not doc:
        return not actual
    if doc[0].strip() == "...":
        return any(block_matches(doc[1:], actual[n:], bindings) for n in range(len(actual) + 1))
    return (
        bool(actual)
        and line_matches(doc[0], actual[0], bindings)
        and block_matches(doc[1:], actual[1:], bindings)
    )


@dataclass
class Page:
    """How one page's examples run: the sandbox they talk to, and the files they find."""

    queue_delay: float = 3.0
    records_per_second: float = 1000.0
    cancel_grace: float = 3.0
    columns: int = 100
    setup: Callable[[Path, dict[str, str]], None] = lambda work, env: None
    config: dict[str, str] = field(default_factory=dict)


def _requests_from_guide(work: Path, env: dict[str, str]) -> None:
    text = (ROOT / "docs" / "guide-file-to-results.md").read_text(encoding="utf-8")
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    (work / "requests.jsonl").write_text(block, encoding="utf-8")
    bad = [
        {"custom_id": "a", "body": {"messages": [{"role": "user", "content": "hello"}]}},
        {"custom_id": "a", "body": {"messages": [{"role": "user", "content": "hello again"}]}},
        {"custom_id": "b", "body": {"messages": []}},
    ]
    (work / "bad.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in bad) + "oops\n", encoding="utf-8"
    )


def _files_from_page(page: str, work: Path) -> None:
    """Each ```json, ```csv or ```python block is the file its paragraph's last line names (`tickets.jsonl`:)."""
    text = (ROOT / page).read_text(encoding="utf-8")
    for match in re.finditer(r"([^\n]*)\n\n```(?:json|csv|python)\n(.*?)```", text, re.DOTALL):
        names = re.findall(r"`([\w.-]+\.(?:jsonl?|csv|py))`", match[1])
        if names:
            (work / names[-1]).write_text(match[2], encoding="utf-8")


def _tables(work: Path, env: dict[str, str]) -> None:
    text = (ROOT / "docs" / "tables.md").read_text(encoding="utf-8")
    (work / "reviews.csv").write_text(
        text.split("```csv\n", 1)[1].split("```", 1)[0], encoding="utf-8"
    )
    _files_from_page("docs/tables.md", work)


def _tables_guide(work: Path, env: dict[str, str]) -> None:
    _files_from_page("docs/tables-guide.md", work)


def _requests_for_readme(work: Path, env: dict[str, str]) -> None:
    records = [
        {
            "custom_id": f"q{i}",
            "body": {
                "messages": [
                    {
                        "role": "user",
                        "content": f"Question {i}" + (" [[sandbox:fail]]" if i == 7 else ""),
                    }
                ]
            },
        }
        for i in range(8)
    ]
    (work / "requests.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )


def _requests_for_ci(work: Path, env: dict[str, str]) -> None:
    _requests_for_readme(work, env)
    fail = [
        {
            "custom_id": f"f{i}",
            "body": {"messages": [{"role": "user", "content": "[[sandbox:fail]]"}]},
        }
        for i in range(3)
    ]
    (work / "all-fail.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in fail), encoding="utf-8"
    )
    big = [
        {"custom_id": f"b{i}", "body": {"messages": [{"role": "user", "content": f"q {i}"}]}}
        for i in range(200)
    ]
    (work / "big.jsonl").write_text("".join(json.dumps(r) + "\n" for r in big), encoding="utf-8")


def _config_profile(work: Path, env: dict[str, str]) -> None:
    path = Path(env["CBATCH_CONFIG"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '[profiles.default]\nmodel = "command-r-08-2024"\n\n'
        '[profiles.default.prices."command-r-08-2024"]\ninput = 0.15\noutput = 0.60\n',
        encoding="utf-8",
    )
    path.chmod(0o600)


PAGES: dict[str, Page] = {
    "README.md": Page(setup=_requests_for_readme),
    # Queued for 6 s: its watch must see the batch queued first, even on a loaded machine.
    "docs/guide-file-to-results.md": Page(setup=_requests_from_guide, queue_delay=6.0),
    # Queued for 6 s: the timeout, cancel and watch of one example must land while "big" is
    # still queued (0/200), even on a loaded machine (3 s was not enough under a full suite).
    "docs/watch-and-ci.md": Page(setup=_requests_for_ci, queue_delay=6.0),
    "docs/sandbox.md": Page(),
    "docs/configuration.md": Page(setup=_config_profile),
    "docs/tables.md": Page(setup=_tables),
    # polars is left out of the test extra (a 55 MB wheel): its reader runs where it is installed.
    "docs/tables-guide.md": Page(setup=_tables_guide),
}
"""The pages with console examples, and how each runs (its prose names the sandbox settings)."""


class Session:
    """The scratch folder, environment and sandbox one page's examples share."""

    def __init__(self, page: Page, scratch: Path) -> None:
        from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

        self.work = scratch / "work"
        self.home = scratch / "home"
        self.work.mkdir()
        self.home.mkdir()
        self.server = SandboxServer(
            SandboxSettings(
                data_dir=scratch / "sandbox",
                port=0,
                records_per_second=page.records_per_second,
                queue_delay=page.queue_delay,
                validation_delay=0.0,
                cancel_grace=page.cancel_grace,
                seed=7,  # the same record order and failures every run, so examples can show them
            )
        ).__enter__()
        keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")
        self.env = {k: v for k, v in os.environ.items() if k in keep}
        self.env.update(
            HOME=str(self.home),
            PATH=f"{Path(CBATCH).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            CO_API_URL=self.server.base_url,
            CO_API_KEY="sandbox-key-0123456789abcd9f3a",
            CBATCH_CONFIG=str(self.home / ".config" / "cbatch" / "config.toml"),
            COLUMNS=str(page.columns),
            NO_COLOR="1",
            PYTHONUNBUFFERED="1",
        )
        page.setup(self.work, self.env)
        self.last_code = 0

    def close(self) -> None:
        self.server.__exit__(None, None, None)

    def run(self, command: str) -> list[str]:
        if command.strip() == "echo $?":
            return [str(self.last_code)]
        if command.startswith("cbatch sandbox serve"):
            return self._serve(command)
        done = subprocess.run(
            ["bash", "-c", command], cwd=self.work, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=WAIT,
        )  # fmt: skip
        self.last_code = done.returncode
        return self._shown(done.stdout)

    def _serve(self, command: str) -> list[str]:
        """A server runs until stopped: read what it prints at the start, then Ctrl-C it."""
        argv = command.replace("--port 8787", "--port 0").split()
        child = subprocess.Popen(
            argv,
            cwd=self.work,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines = []
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C stops it"):
                break
        child.send_signal(signal.SIGINT)
        child.communicate(timeout=WAIT)
        return self._shown("".join(lines))

    def _shown(self, text: str) -> list[str]:
        text = text.replace(str(self.home), "/home/me").replace(str(self.work), "/home/me/work")
        return text.rstrip("\n").split("\n") if text.strip() else []


def sessions(text: str) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """Each console block as (its text, [(command, documented output lines)])."""
    blocks = []
    for match in BLOCK.finditer(text):
        steps: list[tuple[str, list[str]]] = []
        for line in match.group(1).rstrip("\n").split("\n"):
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line)
        blocks.append((match.group(0), steps))
    return blocks


def substitute(command: str, bindings: dict[str, str]) -> str:
    """The command with each documented id (and the first 8 characters of a batch id) made this run's."""
    pairs = dict(bindings)
    pairs.update(
        {
            d[:8]: r[:8]
            for d, r in bindings.items()
            if re.fullmatch(VARIABLE.pattern, d) and len(d) == 36
        }
    )
    for documented, real in sorted(pairs.items(), key=lambda kv: -len(kv[0])):
        command = command.replace(documented, real)
    return command


def run_page(name: str, page: Page, *, write: bool) -> list[str]:
    """Run a page's examples; returns what differs (and rewrites the page with ``write``)."""
    path = ROOT / name
    text = path.read_text(encoding="utf-8")
    problems: list[str] = []
    bindings: dict[str, str] = {}
    scratch = Path(tempfile.mkdtemp(prefix="cbatch-docs-"))
    session = Session(page, scratch)
    new_text = text
    try:
        for block, steps in sessions(text):
            written = ["```console"]
            for command, documented in steps:
                real = session.run(substitute(command, bindings))
                written.append(f"$ {command}")
                if block_matches(documented, real, bindings):
                    written += documented
                    continue
                # The ids the example showed stand for those printed now, in order.
                shown = [i for line in documented for i in normalize(line)[1]]
                printed = [i for line in real for i in normalize(line)[1]]
                for kind in (
                    _is_uuid,
                    _is_dataset,
                ):  # a batch id stands for a batch id, never a dataset's
                    for d, r in zip(filter(kind, shown), filter(kind, printed), strict=False):
                        bindings.setdefault(d, r)
                problems.append(
                    f"{name}: $ {command}\n--- documented\n"
                    + "\n".join(documented)
                    + "\n--- printed\n"
                    + "\n".join(real)
                )
                # Written back with the page's own spelling of every id it already knows, so
                # one id reads the same in every block; ids new to the page are kept as printed.
                page_id = {r: d for d, r in bindings.items()}
                written += [substitute(line, page_id) for line in real]
                known = set(bindings.values())
                bindings.update({r: r for r in printed if r not in known})
            new_text = new_text.replace(block, "\n".join(written) + "\n```", 1)
    finally:
        session.close()
        shutil.rmtree(scratch, ignore_errors=True)
    if write and new_text != text:
        path.write_text(new_text, encoding="utf-8")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the examples that differ")
    parser.add_argument("--check", action="store_true", help="only report (the default)")
    parser.add_argument("pages", nargs="*", default=list(PAGES))
    args = parser.parse_args(argv)
    problems = []
    for name in args.pages:
        problems += run_page(name, PAGES[name], write=args.write)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems and not args.write else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
