"""One fingerprint of an input file, computed by the local check's own read, and the read back that honours it.

A job's input is read once to be checked, then again, part by part, to be
sent, minutes or days later. Between the two the file may be rewritten (same
size, other bytes): what is sent must be what was checked, or nothing. So
the check hashes what it reads, and every later read is compared with it.

The file is hashed in *blocks*: a block ends at the first line end at or
after each multiple of :data:`BLOCK_BYTES`, so block boundaries are fixed by
the bytes alone and fall between lines. A reader of any range that begins on
a block boundary hashes the blocks it reads itself: the check's worker
processes, each reading ranges of the file cut on block boundaries, hash
exactly the bytes they check (no byte is hashed by one process and checked by
another, later). A part is read back by whole blocks, each compared with its
recorded SHA-256 before the part is handed on (:func:`copy_checked`); an upload
of a whole checked file reads it the same way, a block at a time, through
:class:`CheckedReader`; and a later reader that has only the fingerprint (a
retry's recorded input) copies the file by the read that compares it
(:func:`same_fingerprint` with ``copy_to``) and reads the copy. Every send is
of bytes a check read.

The fingerprint of the whole file is the SHA-256 of its blocks' end offsets
and SHA-256s in order (``sha256-blocks:HEX``): the same whatever the number
of processes that computed it. Standard library only.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

BLOCK_BYTES = 1 << 20
"""A block ends at the first line end at or after each multiple of this (1 MiB): reading a part
back reads at most about one block before it and one after it that it does not send."""
PREFIX = "sha256-blocks:"
_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class Block:
    """One block of a file: it ends at ``stop`` (it begins where the one before ends, or at 0)."""

    stop: int
    sha256: str


class BlockHasher:
    """Hashes a range of a file, read in order from a block boundary, into its blocks.

    Feed it every piece read (a line, or a piece of a long line); a block is
    closed after a piece that ends a line at or past the next multiple of
    ``block_bytes``, and the last one by :meth:`finish` (the end of the range
    is a block boundary or the end of the file).
    """

    def __init__(self, start: int = 0, block_bytes: int = BLOCK_BYTES) -> None:
        self.offset = start
        self.block_bytes = block_bytes
        self.blocks: list[Block] = []
        self._mark = (start // block_bytes + 1) * block_bytes
        self._hash = hashlib.sha256()
        self._open = False

    def feed(self, data: bytes) -> None:
        """The next bytes of the range, in any pieces (lines, or chunks of many lines)."""
        start, size = 0, len(data)
        while start < size:
            # A block ends at the first line end at or past the mark: a newline at or after
            # the byte just before it.
            at = start + max(0, self._mark - self.offset - 1)
            end = data.find(b"\n", at) if at < size else -1
            if end < 0:
                self._hash.update(data[start:] if start else data)
                self.offset += size - start
                self._open = True
                return
            self._hash.update(data[start : end + 1])
            self.offset += end + 1 - start
            self._close()
            start = end + 1

    def finish(self) -> list[Block]:
        if self._open:
            self._close()
        return self.blocks

    def _close(self) -> None:
        self.blocks.append(Block(self.offset, self._hash.hexdigest()))
        self._hash = hashlib.sha256()
        self._open = False
        self._mark = (self.offset // self.block_bytes + 1) * self.block_bytes


class HashingReader:
    """A binary file whose every line read (``readline``) is fed to a :class:`BlockHasher`:
    the local check reads through it, so what it checks is what is hashed."""

    def __init__(self, fh: BinaryIO, hasher: BlockHasher) -> None:
        self._fh = fh
        self._hasher = hasher

    def readline(self, limit: int = -1) -> bytes:
        line = self._fh.readline(limit)
        self._hasher.feed(line)
        return line


def file_fingerprint(path: Path) -> str:
    """The fingerprint of a whole file, read once in chunks (a later read that checks an earlier one)."""
    hasher = BlockHasher()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            hasher.feed(chunk)
    return fingerprint(hasher.finish())


def same_fingerprint(path: Path, recorded: str, *, copy_to: Path | None = None) -> bool:
    """Whether ``path`` holds the bytes ``recorded`` was made from (one read of it).

    With ``copy_to``, what is read is also written there as it is hashed: a caller that goes on
    to read the file reads that copy, the bytes this compared, never the file again (which may
    have been rewritten since). A record from before fingerprints is a plain SHA-256 of the
    file, and is read as one.
    """
    blocks = recorded.startswith(PREFIX)
    hasher, digest = BlockHasher(), hashlib.sha256()
    feed = hasher.feed if blocks else digest.update
    with open(path, "rb") as fh, open(copy_to, "wb") if copy_to else nullcontext() as dst:
        while chunk := fh.read(_CHUNK):
            feed(chunk)
            if dst is not None:
                dst.write(chunk)
    return (fingerprint(hasher.finish()) if blocks else digest.hexdigest()) == recorded


def fingerprint(blocks: Sequence[Block]) -> str:
    """The file's one fingerprint: SHA-256 over its blocks' end offsets and SHA-256s, in order."""
    digest = hashlib.sha256()
    for block in blocks:
        digest.update(block.stop.to_bytes(8, "big") + bytes.fromhex(block.sha256))
    return PREFIX + digest.hexdigest()


def block_cut(fh: BinaryIO, at: int, block_bytes: int = BLOCK_BYTES) -> int:
    """The block boundary a range cut near ``at`` falls on: the first line end at or after the
    multiple of ``block_bytes`` at or below ``at`` (0 for the start). ``fh`` is moved."""
    aligned = at // block_bytes * block_bytes
    if aligned <= 0:
        return 0
    fh.seek(aligned - 1)
    while True:  # a bounded read at a time: the line there may be long
        piece = fh.readline(_CHUNK)
        if not piece or piece.endswith(b"\n"):
            return fh.tell()


class Changed(Exception):
    """The bytes read back differ from those the check read: ``start`` to ``stop`` of the file."""

    def __init__(self, start: int, stop: int) -> None:
        super().__init__(f"bytes {start:,} to {stop:,}")
        self.start = start
        self.stop = stop


def copy_checked(
    src: BinaryIO, start: int, stop: int, blocks: Sequence[Block], dst: BinaryIO
) -> None:
    """Copy bytes ``start`` to ``stop`` of ``src`` to ``dst``, reading the whole blocks around them and
    comparing each with its recorded SHA-256: :class:`Changed` at the first that differs (or is short).

    ``dst`` is a local file the caller discards on :class:`Changed`: nothing of it is sent.
    """
    first = bisect_right([b.stop for b in blocks], start)
    at = blocks[first - 1].stop if first else 0
    src.seek(at)
    buffer = memoryview(bytearray(_CHUNK))
    for block in blocks[first:]:
        if at >= stop:
            break
        digest = hashlib.sha256()
        begin = at
        while at < block.stop:
            got = src.readinto(buffer[: min(_CHUNK, block.stop - at)])  # type: ignore[attr-defined]
            if not got:
                raise Changed(begin, block.stop)  # shorter than when it was checked
            data = buffer[:got]
            digest.update(data)
            keep_from, keep_to = max(start, at), min(stop, at + got)
            if keep_to > keep_from:
                dst.write(data[keep_from - at : keep_to - at])
            at += got
        if digest.hexdigest() != block.sha256:
            raise Changed(begin, block.stop)
    if at < stop:
        raise Changed(at, stop)  # the blocks recorded end before the part: not the file checked


class CheckedReader:
    """A checked file as an upload reads it: whole blocks, each compared with its recorded SHA-256
    (by :func:`copy_checked`) before a byte of it is handed on, and the file's end where the check's was.

    An upload streams from it (``httpx`` reads it in pieces): when the file no longer holds the
    bytes that were checked, :class:`Changed` is raised from :meth:`read` before the request's body
    is complete, so the request is abandoned and the service makes nothing of it. Its length, for
    the request's ``Content-Length``, is the checked size, never what the file holds now (it has no
    ``fileno``: the length is asked of :meth:`seek`).
    """

    def __init__(self, path: Path, blocks: Sequence[Block]) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close(), which the upload calls
        self._blocks = blocks
        self.size = blocks[-1].stop if blocks else 0
        self._next = 0
        self._pos = 0
        self._buffer = memoryview(b"")

    def read(self, size: int = -1) -> bytes:
        while not self._buffer and self._next < len(self._blocks):
            self._load()
        take = len(self._buffer) if size < 0 else size
        piece = bytes(self._buffer[:take])
        self._buffer = self._buffer[take:]
        self._pos += len(piece)
        return piece

    def _load(self) -> None:
        """The next block, read whole and compared; the last is handed on only if the file ends there."""
        import io

        block = self._blocks[self._next]
        start = self._blocks[self._next - 1].stop if self._next else 0
        out = io.BytesIO()
        copy_checked(self._fh, start, block.stop, self._blocks, out)
        self._next += 1
        if self._next == len(self._blocks) and self._fh.read(1):
            raise Changed(block.stop, block.stop + 1)  # longer than when it was checked
        self._buffer = out.getbuffer()

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        """Only to the start (read again from the first block) or to the end (the checked size)."""
        import io
        import os

        if whence == os.SEEK_END and offset == 0:
            self._next, self._pos, self._buffer = len(self._blocks), self.size, memoryview(b"")
        elif whence == os.SEEK_SET and offset in (0, self._pos):
            if offset == 0:
                self._next, self._pos, self._buffer = 0, 0, memoryview(b"")
        else:
            raise io.UnsupportedOperation("a checked file is read from its start only")
        return self._pos

    def close(self) -> None:
        self._buffer = memoryview(b"")
        self._fh.close()
