"""Worker processes for the CPU-bound halves of a selection, or none for small work.

Decoding a million Avro records and reading a gigabyte of JSONL are pure
Python work; threads would take turns on one core. A small pool of
processes (``spawn``: nothing of the parent's threads or sockets is copied)
uses the machine's second core. Work too small to repay a process's
start-up (a fifth of a second) runs in the calling process, through the
very same functions.

A worker ignores SIGINT and SIGHUP: a Ctrl-C at the terminal reaches the
whole process group, and the parent alone decides what it means (it stops
the workers itself). SIGTERM keeps its default, which is how the parent
stops them: quietly, with no traceback on the user's terminal. A parent
killed with SIGKILL leaves workers whose queue is closed; they exit.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_PROCESSES = 2


def _quiet_worker() -> None:
    for name in ("SIGINT", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(signum, signal.SIG_IGN)


def worker_count(work_bytes: int, threshold: int) -> int:
    """How many processes ``work_bytes`` of work is worth: 0 (run here) below ``threshold``."""
    if work_bytes < threshold:
        return 0
    return max(0, min(MAX_PROCESSES, os.cpu_count() or 1))


class Workers:
    """``map`` in worker processes (``processes`` > 0) or here (0), results in order."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: Any = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if self._pool is None:
            return
        if exc_type is None:
            self._pool.close()
        else:
            self._pool.terminate()
        self._pool.join()
        self._pool = None

    def map(self, func: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """``func(item)`` for each item, in order; a worker's exception is raised here."""
        if self.processes <= 0:
            for item in items:
                yield func(item)
            return
        import multiprocessing

        if self._pool is None:
            self._pool = multiprocessing.get_context("spawn").Pool(self.processes, initializer=_quiet_worker)
        pending = self._pool.imap(func, items)
        while True:
            try:
                yield pending.next(timeout=0.2)  # wakes often, so Ctrl-C is acted on at once
            except StopIteration:
                return
            except multiprocessing.TimeoutError:
                continue
