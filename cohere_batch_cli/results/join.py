"""The ``--join`` index: each result beside the request that asked for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from ..errors import InputFileError
from ..validate import MAX_LINE_BYTES


class Joiner:
    """The input file's requests by ``custom_id``, read from disk on demand.

    Only ``custom_id -> byte offset`` is held (for a million requests, some
    tens of MB), never the requests themselves. The first line with an id wins;
    lines that are not JSON objects with a string ``custom_id`` are ignored.
    """

    def __init__(self, path: Path, fh: IO[bytes], offsets: dict[str, int]) -> None:
        self.path = path
        self._fh = fh
        self._offsets = offsets

    @classmethod
    def open(cls, path: Path) -> Joiner:
        """Index ``path``, or InputFileError when it cannot be read at all."""
        if Path(path).is_dir():
            raise InputFileError(f"--join {path} is a directory, not a JSONL file")
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise InputFileError(f"cannot read the --join file {path}: {exc.strerror or exc}") from exc
        try:
            return cls(path, fh, _index_custom_ids(fh))
        except BaseException:
            fh.close()
            raise

    def request(self, custom_id: Any) -> Any:
        """The ``body`` of the input line with this ``custom_id``, or None when there is none."""
        offset = self._offsets.get(custom_id) if isinstance(custom_id, str) else None
        if offset is None:
            return None
        self._fh.seek(offset)
        record = _parse_line(self._fh.readline(MAX_LINE_BYTES + 1))
        return record.get("body") if record is not None else None

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Joiner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
