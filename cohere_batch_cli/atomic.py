"""Writing a file so that it is either the old one or the complete new one, never half.

Every file cbatch writes for a user (results, the config file, the completion
cache) goes through :func:`atomic_write`, so this is the one place that opens
a destination for writing, and the one place that will learn what a
destination can be beyond a plain file.

The new content goes to ``.<name>.part-<random>`` in the destination's own
folder: the same file system, so the final rename is atomic, and cleaned up
with the folder if all else fails. On success the file is flushed and
fsynced, renamed onto the destination, and the folder is fsynced so the rename
itself survives a power cut. On any exception, Ctrl-C included, the temporary
file is removed and an existing destination is left as it was.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_CREATE_TRIES = 16  # random names: a clash is already unlikely; sixteen in a row is a broken folder


@contextmanager
def atomic_write(path: str | os.PathLike[str], *, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content into; it replaces ``path`` on success.

    ``mode`` is the file's exact permission bits (``0o600`` for a file that holds
    a key), set when the temporary file is created, so the content is never
    readable by others, not even for a moment. None means what ``open()`` would
    give: ``0o666`` less the umask. The folder must exist: creating it, and with
    which mode, is the caller's decision.
    """
    destination = Path(path)
    fd, temp = _create_temporary(destination, mode)
    handle = os.fdopen(fd, "wb")
    try:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(temp, destination)
    except BaseException:
        handle.close()
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(destination.parent)


def write_text_atomic(
    path: str | os.PathLike[str], text: str, *, mode: int | None = None, encoding: str = "utf-8"
) -> None:
    """Replace ``path`` with ``text`` through :func:`atomic_write`."""
    with atomic_write(path, mode=mode) as handle:
        handle.write(text.encode(encoding))


def _create_temporary(destination: Path, mode: int | None) -> tuple[int, Path]:
    """A new file beside ``destination``, opened for writing; never one that already exists."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_CREATE_TRIES):
        temp = destination.parent / f".{destination.name}.part-{secrets.token_hex(4)}"
        try:
            fd = os.open(temp, flags, 0o666 if mode is None else mode)
        except FileExistsError:
            continue
        if mode is not None:
            try:
                _set_mode(fd, temp, mode)  # exactly ``mode``: the umask may have taken bits away
            except BaseException:
                os.close(fd)
                temp.unlink(missing_ok=True)
                raise
        return fd, temp
    raise FileExistsError(f"could not create a temporary file beside {destination}")


def _set_mode(fd: int, temp: Path, mode: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:  # pragma: no cover - Windows has no fchmod
        os.chmod(temp, mode)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; best effort (not every platform can open a folder)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
