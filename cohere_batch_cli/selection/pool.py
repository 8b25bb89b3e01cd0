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

import itertools
import os
import signal
from collections import deque
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
    """How many processes ``work_bytes`` of work is worth: 0 (run here) below ``threshold``.

    Workers pay only on a core that is free: with one core, or a machine whose
    load leaves less than a core idle, they would take turns with the parent
    and cost their start-up and the hand-over of every result for nothing.
    """
    if work_bytes < threshold:
        return 0
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    if cores < 2:
        return 0
    try:
        idle = cores - os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - no load average (Windows)
        idle = cores
    return min(MAX_PROCESSES, cores) if idle >= 1.0 else 0


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
        """``func(item)`` for each item, in order; a worker's exception is raised here.

        At most two tasks per worker are in flight: results wait in the parent
        only as long as it takes to use them, so memory does not grow with the
        number of tasks (``Pool.imap`` would queue every result a fast worker
        made while the parent was busy).
        """
        if self.processes <= 0:
            for item in items:
                yield func(item)
            return
        import multiprocessing

        if self._pool is None:
            self._pool = multiprocessing.get_context("spawn").Pool(
                self.processes, initializer=_quiet_worker
            )
        pending: deque[Any] = deque()
        source = iter(items)
        while True:
            for item in itertools.islice(source, 2 * self.processes - len(pending)):
                pending.append(self._pool.apply_async(func, (item,)))
            if not pending:
                return
            head = pending.popleft()
            while True:
                try:
                    yield head.get(timeout=0.2)  # wakes often, so Ctrl-C is acted on at once
                    break
                except multiprocessing.TimeoutError:
                    continue
