"""Exit codes: the one enum the code, the docs and ``cbatch help exit-codes`` all read.

Scripts and CI steps branch on these numbers, so a code never changes meaning.
When one run has several outcomes (a watch of three batches: one failed, one
was not found, one still running when ``--timeout`` ran out), the exit code
is the first of :data:`PRECEDENCE` that applies: :func:`combine` is the one
place that rule lives. What each code means, in words, is the command line's
help (``cli/help_topics.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """Every code cbatch exits with."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    AUTH = 3
    NOT_FOUND = 4
    REFUSED = 5
    SERVER = 6
    NETWORK = 7
    BATCH_FAILED = 8
    BATCH_CANCELED = 9
    TIMEOUT = 10
    LOCAL_WRITE = 11
    RECORDS_FAILED = 12
    RESULTS_EXPIRED = 13
    NEVER_RAN = 14
    STATE_BUSY = 15
    STATE_DAMAGED = 16
    KEY_REUSED = 17
    HANGUP = 129
    INTERRUPTED = 130
    TERMINATED = 143


PRECEDENCE: tuple[ExitCode, ...] = (
    ExitCode.INTERRUPTED,
    ExitCode.TERMINATED,
    ExitCode.HANGUP,
    ExitCode.AUTH,
    ExitCode.NETWORK,
    ExitCode.SERVER,
    ExitCode.LOCAL_WRITE,
    ExitCode.NOT_FOUND,
    ExitCode.NEVER_RAN,
    ExitCode.TIMEOUT,
    ExitCode.BATCH_FAILED,
    ExitCode.BATCH_CANCELED,
    ExitCode.RECORDS_FAILED,
)
"""Which outcome wins when one run has several, first first.

A signal ends everything. Then what stopped cbatch from finishing its own
work (a refused key, a lasting outage, a file it could not write). Then a
mistake in the command itself (an id that does not exist: running it again
can never succeed). Then a run that never ran (a job stopped while splitting,
or parts never sent): waiting longer cannot help it, carrying on can. Then a
wait that ran out (nothing final can be said of a
batch still running). Then how batches ended: FAILED before CANCELED (a
failure needs looking at; a cancel was asked for), and records that still
failed after the last retry round after both. Codes not listed (usage,
refusals, 1) end a run at once and never combine.
"""


def combine(codes: Iterable[ExitCode]) -> ExitCode:
    """The exit code of a run with several outcomes: the first of PRECEDENCE present, else 0.

    A code outside PRECEDENCE (which ends a run alone) wins over all of it.
    """
    present = set(codes)
    for code in present:
        if code != ExitCode.OK and code not in PRECEDENCE:
            return code
    for code in PRECEDENCE:
        if code in present:
            return code
    return ExitCode.OK


def for_interruption(exc: BaseException) -> ExitCode:
    """The code a stopped run exits with: 130 for Ctrl-C, 128 + the signal for SIGTERM and SIGHUP."""
    signum = getattr(exc, "signum", None)
    if isinstance(signum, int):
        try:
            return ExitCode(128 + signum)
        except ValueError:
            pass
    return ExitCode.INTERRUPTED
