"""Which format a results file is written in: ``--format``, else the name given to ``-o``.

``-o results.parquet`` means Parquet without saying it twice; a ``--format``
that contradicts the name (``--format csv -o results.parquet``) is a mistake in
the command, refused before anything is downloaded, since either reading of
it would surprise someone.
"""

from __future__ import annotations

from typing import Literal, get_args

from ..errors import OutputOptionError

OutputFormat = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)
TABLE_FORMATS: tuple[OutputFormat, ...] = ("csv", "parquet")
"""The formats made of columns: the ones ``--column`` and ``--body`` apply to."""

_EXTENSIONS: dict[str, OutputFormat] = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def format_of_name(output: str | None) -> OutputFormat | None:
    """The format a file name's extension names (case aside), or None for any other name."""
    if not output or output == "-":
        return None
    lowered = output.lower()
    for extension, fmt in _EXTENSIONS.items():
        if lowered.endswith(extension) and len(lowered) > len(extension):
            return fmt
    return None


def choose_format(output: str | None, explicit: str | None) -> OutputFormat:
    """``explicit`` when given, else the one ``output``'s extension names, else JSONL.

    Raises :class:`OutputOptionError` (exit 2) for an unknown format, or for a
    ``--format`` that contradicts the extension of ``-o``.
    """
    named = format_of_name(output)
    if explicit is None:
        return named or "jsonl"
    if explicit not in FORMATS:
        raise OutputOptionError(
            f"unknown results format {explicit!r}: choose jsonl, csv or parquet"
        )
    if named is not None and named != explicit:
        raise OutputOptionError(
            f"--format {explicit} contradicts -o {output}, a .{named} name",
            hint=f"drop --format (the name says {named}), or name the file .{explicit}",
        )
    return explicit
