"""Options that several commands share, declared once so they read the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the API's own JSON objects, and nothing else, on stdout.")
]
JsonlOpt = Annotated[bool, typer.Option("--jsonl", help="Print one JSON object a line (JSON lines).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only ids, one a line.")]
