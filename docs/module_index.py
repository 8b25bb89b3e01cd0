"""The module index of docs/architecture.md, made from each module's own docstring.

    python docs/module_index.py --check     # exit 1 when the page's index is stale (tests)
    python docs/module_index.py --write     # rewrite it

Every module of the package has a line: its path and the first paragraph of its
docstring, which says the one job the module has. The index sits between the
``<!-- modules -->`` and ``<!-- /modules -->`` markers of the page; the rest of the
page is prose written by hand.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cohere_batch_cli"
PAGE = ROOT / "docs" / "architecture.md"
START, END = "<!-- modules -->\n", "<!-- /modules -->\n"


def first_paragraph(path: Path) -> str:
    """The first paragraph of a module's docstring, on one line ('' when it has none)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def index() -> str:
    """The index as Markdown: one table, a row a module, in path order."""
    rows = ["| module | its one job |", "|---|---|"]
    for path in sorted(PACKAGE.rglob("*.py"), key=lambda p: p.relative_to(PACKAGE).as_posix()):
        relative = path.relative_to(PACKAGE).as_posix()
        job = first_paragraph(path).replace("|", "\\|") or "(no docstring)"
        rows.append(f"| `{relative}` | {job} |")
    return "\n".join(rows) + "\n"


def current(text: str) -> str:
    if START not in text or END not in text:
        raise SystemExit(f"{PAGE}: no {START.strip()} ... {END.strip()} markers")
    return text.split(START, 1)[1].split(END, 1)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the page's index")
    parser.add_argument("--check", action="store_true", help="only report (the default)")
    args = parser.parse_args(argv)
    text = PAGE.read_text(encoding="utf-8")
    fresh = index()
    if current(text) == fresh:
        return 0
    if args.write:
        head, rest = text.split(START, 1)
        PAGE.write_text(head + START + fresh + END + rest.split(END, 1)[1], encoding="utf-8")
        return 0
    print(f"{PAGE} is stale: run python docs/module_index.py --write", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
