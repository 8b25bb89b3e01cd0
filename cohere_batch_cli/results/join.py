"""The ``--join`` index: each result beside the request that asked for it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import InputFileError
from ..validate import MAX_LINE_BYTES

_EXAMPLES = 3
"""How many ids a warning names before it says how many more there are."""


@dataclass(frozen=True)
class JoinReport:
    """How the results and the join file's requests met, for the lines the command prints."""

    path: Path
    results: int
    matched: int
    without_request: int
    without_request_examples: tuple[str, ...]
    without_result: int
    without_result_examples: tuple[str, ...]
    repeated: int
    repeated_examples: tuple[str, ...]

    def warnings(self, *, without_result: bool = True) -> list[str]:
        """One sentence for each way the two did not match; none when every pair met once.

        ``without_result=False`` leaves out the requests that got no result,
        for a caller that says them within its own sentence on the counts.
        """
        out = []
        if self.without_request and self.matched:
            out.append(
                f"{_records(self.without_request)} no request in {self.path}: "
                f"{_names(self.without_request_examples, self.without_request)} ('request' is null)"
            )
        if self.without_result and without_result:
            out.append(self.without_result_line())
        if self.repeated:
            out.append(
                f"{_plural(self.repeated, 'custom_id')} came back more than once: "
                f"{_names(self.repeated_examples, self.repeated)}"
            )
        return out

    def without_result_line(self) -> str:
        """``3 requests in in.jsonl have no result: r-4, r-17, r-33``."""
        return (
            f"{_plural(self.without_result, 'request')} in {self.path} "
            f"{'has' if self.without_result == 1 else 'have'} no result: "
            f"{_names(self.without_result_examples, self.without_result)}"
        )


class Joiner:
    """The input file's requests by ``custom_id``, read from disk on demand.

    Only ``custom_id -> byte offset`` is held (for a million requests, some
    tens of MB), never the requests themselves. The first line with an id wins;
    lines that are not JSON objects with a string ``custom_id`` are ignored.
    Which results found their request, which did not, and which ids came back
    twice are counted as they go by, for :meth:`report`.
    """

    def __init__(self, path: Path, fh: IO[bytes], offsets: dict[str, int]) -> None:
        self.path = path
        self._fh = fh
        self._offsets = offsets
        self._seen: set[Any] = set()
        self._matched = 0
        self._results = 0
        self._without: list[str] = []
        self._without_count = 0
        self._repeated: list[str] = []
        self._repeated_count = 0

    @classmethod
    def open(cls, path: Path) -> Joiner:
        """Index ``path``, or InputFileError when it cannot be read or holds no request at all."""
        if Path(path).is_dir():
            raise InputFileError(f"--join {path} is a directory, not a JSONL file")
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise InputFileError(
                f"cannot read the --join file {path}: {exc.strerror or exc}"
            ) from exc
        try:
            offsets = _index_custom_ids(fh)
            if not offsets:
                raise InputFileError(
                    f"--join {path} holds no JSON line with a custom_id: it is not a batch's input file"
                )
            return cls(path, fh, offsets)
        except BaseException:
            fh.close()
            raise

    def request(self, custom_id: Any) -> Any:
        """The ``body`` of the input line with this ``custom_id``, or None when there is none."""
        self._results += 1
        key = custom_id if isinstance(custom_id, (str, int, float, type(None))) else repr(custom_id)
        if key in self._seen:
            self._repeated_count += 1
            if len(self._repeated) < _EXAMPLES and str(key) not in self._repeated:
                self._repeated.append(str(key))
        else:
            self._seen.add(key)
        offset = self._offsets.get(custom_id) if isinstance(custom_id, str) else None
        if offset is None:
            self._without_count += 1
            if len(self._without) < _EXAMPLES:
                self._without.append(str(custom_id))
            return None
        self._matched += 1
        self._fh.seek(offset)
        record = _parse_line(self._fh.readline(MAX_LINE_BYTES + 1))
        return record.get("body") if record is not None else None

    def report(self) -> JoinReport:
        """What matched, once every result went by."""
        missing = [cid for cid in self._offsets if cid not in self._seen]
        return JoinReport(
            path=self.path,
            results=self._results,
            matched=self._matched,
            without_request=self._without_count,
            without_request_examples=tuple(self._without),
            without_result=len(missing),
            without_result_examples=tuple(missing[:_EXAMPLES]),
            repeated=self._repeated_count,
            repeated_examples=tuple(self._repeated),
        )

    def examples(self) -> tuple[str, ...]:
        """A few of the file's own ids, for a message that says they match nothing."""
        return tuple(list(self._offsets)[:_EXAMPLES])

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Joiner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _records(n: int) -> str:
    return f"{n:,} result has" if n == 1 else f"{n:,} results have"


def _names(examples: tuple[str, ...], count: int) -> str:
    shown = ", ".join(examples)
    return shown + (f" and {count - len(examples):,} more" if count > len(examples) else "")


def _index_custom_ids(fh: IO[bytes]) -> dict[str, int]:
    offsets: dict[str, int] = {}
    offset = 0
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return offsets
        record = _parse_line(raw)
        custom_id = record.get("custom_id") if record is not None else None
        if isinstance(custom_id, str) and custom_id not in offsets:
            offsets[custom_id] = offset
        offset += len(raw)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            offset = _skip_long_line(fh, offset)


def _skip_long_line(fh: IO[bytes], offset: int) -> int:
    while True:
        chunk = fh.readline(1024 * 1024)
        offset += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return offset


def _parse_line(raw: bytes) -> dict[str, Any] | None:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None
