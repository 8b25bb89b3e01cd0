"""Exit codes: one table that the code, the docs and ``cbatch help exit-codes`` all read.

Scripts and CI steps branch on these numbers, so a code never changes meaning.
"""

from __future__ import annotations

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
    INTERRUPTED = 130


DESCRIPTIONS: dict[ExitCode, str] = {
    ExitCode.OK: "Success (for watch: every batch COMPLETED).",
    ExitCode.UNEXPECTED: "An unexpected error: a bug in cbatch. Run again with --debug and report it.",
    ExitCode.USAGE: "Usage error: unknown command or option, a bad value, an unreadable file.",
    ExitCode.AUTH: "Authentication or configuration: no API key, a bad config file, 401, 403, 498.",
    ExitCode.NOT_FOUND: "The batch or dataset does not exist (404).",
    ExitCode.REFUSED: "The API refused the request (400, 422, other 4xx), or an input file failed its checks.",
    ExitCode.SERVER: "Rate limit or server error (429, 5xx, unreadable answer) still failing after retries.",
    ExitCode.NETWORK: "Network failure: could not connect, TLS error, or a timeout.",
    ExitCode.BATCH_FAILED: "watch: a watched batch ended FAILED.",
    ExitCode.BATCH_CANCELED: "watch: a watched batch ended CANCELED.",
    ExitCode.TIMEOUT: "A wait ran out of time (watch --timeout, dataset validation); batches are left running.",
    ExitCode.INTERRUPTED: "Interrupted (Ctrl-C): nothing was cancelled, no partial file was left.",
}
