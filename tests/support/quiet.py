"""Proof that code printed nothing: file descriptors 1 and 2 caught in files, not only ``sys.stdout``."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def nothing_printed() -> Iterator[None]:
    """File descriptors 1 and 2 caught in files for the block; both must stay empty.

    ``sys.stdout`` and ``sys.stderr`` write to those descriptors meanwhile (pytest's
    own capture would otherwise keep Python-level writes away from them).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    caught = {fd: tempfile.TemporaryFile() for fd in (1, 2)}  # noqa: SIM115 - closed below
    streams = sys.stdout, sys.stderr
    try:
        for fd, file in caught.items():
            os.dup2(file.fileno(), fd)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - closed below
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - closed below
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.close()
            sys.stdout, sys.stderr = streams
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
        for fd, file in caught.items():
            file.seek(0)
            written = file.read()
            assert written == b"", f"the library wrote to fd {fd}: {written[:500]!r}"
    finally:
        for file in caught.values():
            file.close()
