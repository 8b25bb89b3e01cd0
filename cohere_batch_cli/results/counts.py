"""What writing results came to, in a module of its own.

JSON lines (:mod:`.writer`) and tables (:mod:`.table`) both count into it; a
JSONL download must not import the table machinery (csv, the column model) just
to learn the shape of its tally.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Counts:
    """Records seen, written (after ``failed_only``) and failed; bodies kept as text (not JSON)."""

    total: int = 0
    written: int = 0
    failed: int = 0
    not_json: int = 0
    warnings: list[str] = field(default_factory=list)
    """Sentences about values the table could not hold as they are."""
