"""An input that can be read only once (stdin, a pipe, ``<(...)``), made readable twice.

``cbatch datasets upload`` reads its file twice: the local check, then the
upload. A pipe gives its bytes once: the check read them all and the upload
sent an empty file, which the API then refused ("the file holds no
records") after cbatch had said "4 records checked". So such an input is
first copied to a private temporary file, in constant memory, and both the
check and the upload read that copy: what is checked is what is sent.

A regular file is read where it is, as before.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import InputFileError, LocalWriteError

STDIN = "-"
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Input:
    """A file to read as often as needed, and how messages name what the user gave."""

    path: Path
    label: str
    """``stdin`` for ``-``, else the path as given."""
    default_name: str
    """What a dataset made from it is called when no ``--name`` is given."""


def is_stdin(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is ``-``: the input is read from stdin (and spooled, as it can be read once)."""
    return os.fspath(path) == STDIN


@contextmanager
def rereadable(path: str | os.PathLike[str]) -> Iterator[Input]:
    """``path`` itself when it is a regular file (or not one at all: the check says why), else a copy.

    ``-`` is stdin. The copy lives in the temporary folder, readable by its
    owner only, and is removed whatever happens.
    """
    given = os.fspath(path)
    if is_stdin(given):
        source = sys.stdin.buffer if sys.stdin is not None else None
        if source is None:
            raise InputFileError("cannot read stdin: it is closed")
        with _spooled(source, "stdin") as copy:
            yield Input(copy, "stdin", "stdin")
        return
    try:
        mode = os.stat(given).st_mode
    except OSError:
        mode = 0  # missing or unreadable: the check that opens it gives the clear sentence
    if mode == 0 or stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        yield Input(Path(given), given, Path(given).stem)
        return
    try:
        fh = open(given, "rb")  # noqa: SIM115 - closed right below
    except OSError as exc:
        raise InputFileError(f"cannot open {given}: {exc.strerror or exc}") from exc
    with fh, _spooled(fh, given) as copy:
        yield Input(copy, given, _name_of(given))


def _name_of(given: str) -> str:
    stem = Path(given).stem
    return "input" if stem.isdigit() or stem in ("stdin", "fd") else stem  # /dev/fd/63 from <(...)


@contextmanager
def _spooled(source: BinaryIO, label: str) -> Iterator[Path]:
    try:
        fd, name = tempfile.mkstemp(prefix=".cbatch-input-", suffix=".jsonl")
    except OSError as exc:
        raise LocalWriteError(
            f"cannot keep a copy of {label} to check and send: {exc.strerror or exc}"
        ) from None
    copy = Path(name)
    out = os.fdopen(fd, "wb")
    try:
        _copy(source, out, label, copy)
        try:
            out.close()
        except OSError as exc:
            raise _no_room(label, copy, exc) from None
        yield copy
    finally:
        with suppress(OSError):
            out.close()
        copy.unlink(missing_ok=True)


def _no_room(label: str, copy: Path, exc: OSError) -> LocalWriteError:
    return LocalWriteError(
        f"cannot keep a copy of {label} in {copy.parent} to check and send: {exc.strerror or exc}"
    )


def _copy(source: BinaryIO, out: BinaryIO, label: str, copy: Path) -> None:
    while True:
        try:
            chunk = source.read(_CHUNK)
        except OSError as exc:
            raise InputFileError(f"cannot read {label}: {exc.strerror or exc}") from exc
        if not chunk:
            return
        try:
            out.write(chunk)
        except OSError as exc:
            raise _no_room(label, copy, exc) from None
