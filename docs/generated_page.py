"""The one write-or-check of a page made from the code (docs/reference.md, docs/python-reference.md).

Each generator renders its page; this writes it, or with ``--check`` (as the
test suite runs it) says on stderr which command makes it again and returns 1
when the committed page differs from the rendered one.
"""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(page: Path, text: str, argv: list[str], generator: str) -> int:
    """Write ``text`` to ``page``; with ``--check`` in ``argv``, only compare (1 when stale)."""
    if "--check" in argv:
        if not page.exists() or page.read_text(encoding="utf-8") != text:
            print(f"docs/{page.name} is out of date: run python {generator}", file=sys.stderr)
            return 1
        return 0
    page.write_text(text, encoding="utf-8")
    print(f"wrote {page}")
    return 0
