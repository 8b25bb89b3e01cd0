"""Writing a destination so that nothing is lost: never half a file, never the wrong file.

Every file cbatch writes for a user (results, the config file, the completion
cache) goes through :func:`atomic_write`: the one place a destination is
opened for writing, and so the one place that knows what a destination can be
(:func:`describe_destination`):

- ``-``: stdout, through the output object's binary stream (the caller's
  ``stdout``), streamed;
- a **regular file**, or a name that does not exist yet: the new content goes
  to ``.<name>.part-<random>`` in the file's own folder (the same file system,
  so the final rename is atomic), is flushed and fsynced, renamed onto the
  name, and the folder is fsynced so the rename survives a power cut;
- a **symlink** is followed: its final target is written atomically as above,
  in the target's folder, and the link itself is left as it was (a dotfiles
  repository's link to the config file stays a link);
- a **character device, FIFO, socket or block device**, or a path through
  ``/dev/fd`` or ``/proc/*/fd`` (``/dev/stdout``): written in place and
  streamed, never replaced. ``-o /dev/null`` run as root must leave
  ``/dev/null`` a device; a FIFO's reader gets the bytes;
- a **folder**: an error.

Any failure of the write itself (no space, permission, a read-only file
system, a reader that went away) is a :class:`~cohere_batch_cli.errors.LocalWriteError`
naming the destination and the cause. On any exception, Ctrl-C and SIGTERM
included, the temporary file is removed and an existing file is left as it
was; bytes already streamed to a device or a pipe cannot be taken back.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, cast

from .errors import LocalWriteError

_CREATE_TRIES = 16  # random names: a clash is already unlikely; sixteen in a row is a broken folder
_MAX_LINKS = 40  # as the kernel's own limit on a chain of symlinks
_DESCRIPTOR_FOLDER = re.compile(r"/proc/(?:self|thread-self|\d+)(?:/task/\d+)?/fd|/dev/fd")

STDOUT = "-"

Kind = Literal["stdout", "file", "stream", "socket", "folder"]
OpenStdout = Callable[[], AbstractContextManager[BinaryIO]]
"""Opens stdout as a binary stream: the output object's ``Output.binary``."""


@dataclass(frozen=True)
class Destination:
    """Where a write lands: ``path`` is the final target (a symlink followed), ``given`` as asked."""

    given: str
    path: Path
    kind: Kind

    @property
    def in_place(self) -> bool:
        """Written where it is, streamed: a device, FIFO, socket or descriptor is never replaced."""
        return self.kind in ("stream", "socket")

    @property
    def folder(self) -> Path | None:
        """The folder temporary files belong in (the target's), or None when nothing is renamed."""
        return self.path.parent if self.kind == "file" else None


def describe_destination(path: str | os.PathLike[str]) -> Destination:
    """What writing ``path`` means: which file, and whether it is replaced or written in place."""
    given = os.fspath(path)
    if given == STDOUT:
        return Destination(given, Path(STDOUT), "stdout")
    if _through_a_descriptor(given):
        return Destination(given, Path(given), "stream")
    try:
        info = os.stat(given)
    except FileNotFoundError:
        return Destination(
            given, Path(os.path.realpath(given)), "file"
        )  # new, or a dangling link's target
    except OSError as exc:
        raise LocalWriteError(f"cannot write {given}: {_cause(exc)}") from None
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        return Destination(given, Path(given), "folder")
    if stat.S_ISREG(mode):
        return Destination(given, Path(os.path.realpath(given)), "file")
    if stat.S_ISSOCK(mode):
        return Destination(given, Path(given), "socket")
    return Destination(given, Path(given), "stream")  # a character or block device, a FIFO


def _through_a_descriptor(given: str) -> bool:
    """Whether ``given`` is, or links to, an open descriptor (``/dev/stdout``, ``/dev/fd/3``).

    Such a link points at whatever the descriptor is: a pipe, a terminal, or a
    file the shell opened (``>>`` appends to it). It is written in place, as
    the shell meant; replacing what it resolves to would lose what was there.
    """
    current = os.path.abspath(given)
    for _ in range(_MAX_LINKS):
        folder = os.path.realpath(os.path.dirname(current))
        if _DESCRIPTOR_FOLDER.fullmatch(folder):
            return True
        candidate = os.path.join(folder, os.path.basename(current))
        if not os.path.islink(candidate):
            return False
        current = os.path.join(folder, os.readlink(candidate))
    return False


@contextmanager
def atomic_write(
    path: str | os.PathLike[str], *, mode: int | None = None, stdout: OpenStdout | None = None
) -> Iterator[BinaryIO]:
    """A binary stream for ``path``'s new content, as :func:`describe_destination` says.

    A regular file (or a new name, or a symlink's target) is replaced on
    success and untouched on failure. ``mode`` is such a file's exact
    permission bits (``0o600`` for a file that holds a key), set when the
    temporary file is created, so the content is never readable by others,
    not even for a moment; None means what ``open()`` would give. The folder
    must exist: creating it, and with which mode, is the caller's decision.
    ``stdout`` opens the stream ``-`` writes to.
    """
    target = describe_destination(path)
    if target.kind == "stdout":
        if stdout is None:
            raise ValueError("writing to - needs the output object's binary stdout")
        with stdout() as out:
            yield out
        return
    if target.kind == "folder":
        raise LocalWriteError(f"cannot write {target.given}: it is a folder")
    if target.in_place:
        with _in_place(target) as stream:
            yield stream
        return
    # The temporary file's name is claimed before it is created, inside the ``try``: a
    # signal that lands the moment the file appears (as a test watching the folder
    # sends it) must still find a name to remove.
    claim = _Claim()
    guarded: _Guarded | None = None
    try:
        fd, temp = _create_temporary(target, mode, claim)
        guarded = _Guarded(os.fdopen(fd, "wb"), target.given)
        yield cast(BinaryIO, guarded)  # write() and flush() are all a writer uses
        guarded.commit()
        _replace(temp, target)
        claim.path = None  # renamed: nothing of ours is left to remove
    except BaseException:
        try:
            if guarded is not None:
                guarded.abandon()
        finally:  # a second signal during the cleanup must not leave the temporary file
            if claim.path is not None:
                with suppress(OSError):
                    claim.path.unlink()
        raise
    _fsync_directory(target.path.parent)


class _Claim:
    """The temporary file this write may have created, and so must remove if it stops."""

    path: Path | None = None


def write_text_atomic(
    path: str | os.PathLike[str], text: str, *, mode: int | None = None, encoding: str = "utf-8"
) -> None:
    """Replace ``path`` with ``text`` through :func:`atomic_write`."""
    with atomic_write(path, mode=mode) as handle:
        handle.write(text.encode(encoding))


class _Guarded:
    """A file whose write failures are :class:`LocalWriteError` naming the destination.

    Only the file's own operations are translated: an ``OSError`` raised by the
    code that produces the content stays what it is.
    """

    def __init__(self, raw: BinaryIO, given: str, *, stream: bool = False) -> None:
        self._raw = raw
        self._given = given
        self._stream = stream

    def write(self, data: bytes) -> int:
        try:
            return self._raw.write(data)
        except OSError as exc:
            raise self._failure(exc) from None

    def flush(self) -> None:
        try:
            self._raw.flush()
        except OSError as exc:
            raise self._failure(exc) from None

    def fileno(self) -> int:
        return self._raw.fileno()

    def __getattr__(self, name: str) -> object:  # seek, tell, ...: the file's own
        return getattr(self._raw, name)

    def commit(self) -> None:
        """Everything on disk (or handed to the device), then closed."""
        try:
            self._raw.flush()
            if not self._stream:
                os.fsync(self._raw.fileno())
            self._raw.close()
        except OSError as exc:
            raise self._failure(exc) from None

    def abandon(self) -> None:
        """Closed without another word: what is left in the buffer is dropped, not written."""
        with suppress(OSError, ValueError):
            self._raw.close()
        if not self._raw.closed:  # close() failed while flushing: let go of the descriptor itself
            with suppress(OSError, ValueError):
                os.close(self._raw.fileno())

    def _failure(self, exc: OSError) -> LocalWriteError:
        if isinstance(exc, BrokenPipeError):
            return LocalWriteError(
                f"cannot write {self._given}: its reader went away (broken pipe)"
            )
        return LocalWriteError(f"cannot write {self._given}: {_cause(exc)}")


@contextmanager
def _in_place(target: Destination) -> Iterator[BinaryIO]:
    """A device, FIFO, socket or descriptor, opened where it is: appended to, never replaced.

    Opening a FIFO waits for its reader, as ``cat > fifo`` does.
    """
    try:
        if target.kind == "socket":
            raw = _connect(target.path)
        else:
            flags = (
                os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
            )
            raw = os.fdopen(os.open(target.path, flags), "wb")
    except OSError as exc:
        raise LocalWriteError(f"cannot write {target.given}: {_cause(exc)}") from None
    guarded = _Guarded(raw, target.given, stream=True)
    try:
        yield cast(BinaryIO, guarded)
        guarded.commit()
    except BaseException:
        guarded.abandon()
        raise


def _connect(path: Path) -> BinaryIO:
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(os.fspath(path))
        return sock.makefile("wb")
    finally:
        sock.close()  # the file object keeps its own reference to the connection


def _create_temporary(target: Destination, mode: int | None, claim: _Claim) -> tuple[int, Path]:
    """A new file beside the target, opened for writing; never one that already exists.

    ``claim`` holds each name before it is tried, so a stop at any moment leaves the
    caller the name to remove; a name that was someone else's is given back at once.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    destination = target.path
    for _ in range(_CREATE_TRIES):
        temp = destination.parent / f".{destination.name}.part-{secrets.token_hex(4)}"
        claim.path = temp
        try:
            fd = os.open(temp, flags, 0o666 if mode is None else mode)
        except FileExistsError:
            claim.path = None
            continue
        except OSError as exc:
            claim.path = None
            raise LocalWriteError(
                f"cannot write {target.given}: {_cause(exc, destination.parent)}"
            ) from None
        if mode is not None:
            try:
                _set_mode(fd, temp, mode)  # exactly ``mode``: the umask may have taken bits away
            except BaseException:
                os.close(fd)
                temp.unlink(missing_ok=True)
                raise
        return fd, temp
    raise LocalWriteError(
        f"cannot write {target.given}: no free temporary name in {destination.parent}"
    )


def _replace(temp: Path, target: Destination) -> None:
    try:
        os.replace(temp, target.path)
    except IsADirectoryError:
        raise LocalWriteError(f"cannot write {target.given}: it is a folder") from None
    except OSError as exc:
        raise LocalWriteError(f"cannot write {target.given}: {_cause(exc)}") from None


def _cause(exc: OSError, folder: Path | None = None) -> str:
    """The reason in words: ``No space left on device``, ``Read-only file system``, ..."""
    reason = exc.strerror or type(exc).__name__
    if folder is not None and isinstance(exc, (PermissionError, FileNotFoundError)):
        return f"{reason} ({folder})"
    return reason


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
