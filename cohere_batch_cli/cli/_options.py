"""Options that several commands share, declared once so they read the same everywhere."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the API's own JSON objects, and nothing else, on stdout.")
]
JsonlOpt = Annotated[bool, typer.Option("--jsonl", help="Print one JSON object a line (JSON lines).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only ids, one a line.")]
FormatOpt = Annotated[
    Optional[str],
    typer.Option(
        "--format",
        help="Output format: table, plain (tab-separated), json, jsonl, csv or ids.",
        show_default=False,
    ),
]
DatasetQueryOpt = Annotated[
    Optional[str],
    typer.Option(
        "--query",
        help="A JMESPath expression applied to the JSON output, e.g. \"[?validation_status=='failed'].id\".",
        show_default=False,
    ),
]
QueryOpt = Annotated[
    Optional[str],
    typer.Option(
        "--query",
        help="A JMESPath expression applied to the JSON output, e.g. \"[?status=='BATCH_STATUS_FAILED'].id\".",
        show_default=False,
    ),
]
