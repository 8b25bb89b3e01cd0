"""Per-record outcome totals of an input dataset, as prefix sums in a small sidecar file.

Validation parses every record once and stores, for each prefix of the dataset, how many
records succeeded and failed and how many tokens they used. A batch that has processed
``n`` records then reads its counters in O(1), so the worker can advance ten thousand
batches per tick without re-reading any input.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from pathlib import Path

STATS_FILE = "stats.bin"


@dataclass(frozen=True)
class Totals:
    successful: int
    failed: int
    input_tokens: int
    output_tokens: int


class StatsBuilder:
    """Accumulates prefix sums record by record."""

    def __init__(self) -> None:
        self._cols = [array("q", [0]) for _ in range(4)]

    def add(self, failed: bool, input_tokens: int, output_tokens: int) -> None:
        ok, bad, tin, tout = self._cols
        ok.append(ok[-1] + (0 if failed else 1))
        bad.append(bad[-1] + (1 if failed else 0))
        tin.append(tin[-1] + input_tokens)
        tout.append(tout[-1] + output_tokens)

    def save(self, path: Path) -> None:
        with open(path, "wb") as fh:
            for col in self._cols:
                col.tofile(fh)


class Stats:
    """Prefix sums loaded from a sidecar file."""

    def __init__(self, path: Path) -> None:
        data = array("q")
        with open(path, "rb") as fh:
            data.frombytes(fh.read())
        n = len(data) // 4
        self.records = n - 1
        self._cols = [data[i * n : (i + 1) * n] for i in range(4)]

    def at(self, processed: int) -> Totals:
        i = max(0, min(processed, self.records))
        ok, bad, tin, tout = self._cols
        return Totals(ok[i], bad[i], tin[i], tout[i])
