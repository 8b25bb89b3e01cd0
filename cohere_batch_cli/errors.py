"""cbatch's own errors, and the one base class of every error cbatch raises.

::

    CbatchError                     anything cbatch refuses or cannot do; ``exit_code`` says which
    ├── CohereAPIError              (in api/errors.py) the API's answers and the road to it
    ├── UsageError                  a bad value typer could not see (exit 2)
    │   ├── OutputOptionError       a bad --format, --query, or conflicting output flags
    │   ├── InputFileError          an input file that cannot be read at all
    │   ├── MissingExtra            an optional extra is not installed
    │   └── AmbiguousMatch          a short id or name matches several batches or datasets
    ├── NoMatch                     no batch or dataset has that id, id prefix or name (exit 4)
    ├── NoResults                   a canceled batch or job that finished no record (exit 4)
    ├── ConfigError                 a malformed config file, a missing profile or key (exit 3)
    │   └── InvalidBaseURL          (in api/errors.py) a base URL that cannot be used
    ├── InputRejected               an input file failed its local checks (exit 5)
    │   └── InputChanged            its bytes are no longer the ones that were checked
    ├── NotReady                    a local state stops the command: the batch still runs (exit 5)
    │   └── RunBusy                 another cbatch on this machine holds the run's lock (exit 5)
    ├── WaitTimeout                 a wait for a dataset or batch state ran out of time (exit 10)
    ├── ResultsError                an output part could not be fetched or decoded (exit 6)
    ├── TokenizerError              a model's tokenizer could not be fetched or read (exit 6)
    ├── ResultsExpired              the output dataset is gone with its lifetime (exit 13)
    ├── LocalWriteError             a local file could not be written (exit 11)
    ├── StoreError                  the local state store cannot be used
    │   ├── StoreBusy               another process held it past the wait (exit 15)
    │   ├── StoreDamaged            corrupt, or made by a newer cbatch (exit 16)
    │   └── StoreNotWritable        (also a LocalWriteError) read-only, full, no permission (exit 11)
    └── RecordsStillFailing         records still failing after the last retry round (exit 12)

Apart from the tree, :class:`Terminated` is what SIGTERM and SIGHUP raise: a
``KeyboardInterrupt``, so every path that cleans up after Ctrl-C cleans up
after them too.

Each class says its exit code as its ``exit_code`` attribute, and that is the
one table of them: the CLI (``cli/_errors.py``) exits with it, and a program
using the Python API reads it from the exception it caught. A subclass that
says none inherits its parent's; the base says 1, an unexpected error. The
API's own errors (:mod:`cohere_batch_cli.api.errors`) are the same kind of
error, a subtree under the same base, so one ``except CbatchError`` catches
everything cbatch raises on purpose. Every error may carry a ``hint``: the
next thing to try, set by the layer that knows the command to name.
"""

from __future__ import annotations

from typing import ClassVar

from .exit_codes import ExitCode


class CbatchError(Exception):
    """Base of every error cbatch raises for a reason of its own, the API's included."""

    exit_code: ClassVar[ExitCode] = ExitCode.UNEXPECTED
    """The exit code the command line ends with for this error (each subclass says its own)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(CbatchError):
    """A bad value that typer's own checks could not see (exit 2)."""

    exit_code = ExitCode.USAGE


class OutputOptionError(UsageError):
    """A bad --format or --query, or output flags that contradict each other (exit 2)."""


class InputFileError(UsageError):
    """A file cannot be read at all: missing, a directory, no permission (exit 2)."""


class MissingExtra(UsageError):
    """An optional extra is needed; the message holds the command that installs it (exit 2)."""


class AmbiguousMatch(UsageError):
    """A prefix or a name matches several batches or datasets; the message lists them (exit 2)."""


class NoMatch(CbatchError):
    """No batch or dataset has that id, id prefix or exact name (exit 4, as a 404)."""

    exit_code = ExitCode.NOT_FOUND


class NoResults(CbatchError):
    """A canceled batch or job that finished no record: there are no results to write (exit 4)."""

    exit_code = ExitCode.NOT_FOUND


class ConfigError(CbatchError):
    """The configuration cannot be used: a malformed file, a missing profile or key (exit 3)."""

    exit_code = ExitCode.AUTH


class InputRejected(CbatchError):
    """An input failed its local checks (size, records, context length, budget) (exit 5).

    An empty message means the details were already printed line by line.
    """

    exit_code = ExitCode.REFUSED


class InputChanged(InputRejected):
    """An input's bytes are no longer those its check read (its fingerprint differs): nothing of them is sent (exit 5)."""


class KeyReused(CbatchError):
    """An idempotency key already names a run of another request: nothing is sent (exit 17).

    The message names each field that differs (the input, the model, the
    prompt...), from this machine's state store, or, where it has no record,
    what the API's names can tell.
    """

    exit_code = ExitCode.KEY_REUSED


class NotReady(CbatchError):
    """A local state stops the command: the batch is still running, no output yet (exit 5)."""

    exit_code = ExitCode.REFUSED


class RunBusy(NotReady):
    """Another cbatch on this machine, or another thread of this program, holds the run's lock: it sends for that run now (exit 5)."""


class WaitTimeout(CbatchError):
    """A wait for a state (a dataset validated, a batch finished) ran out of time (exit 10)."""

    exit_code = ExitCode.TIMEOUT


class ResultsError(CbatchError):
    """A part could not be downloaded or decoded after every retry (exit 6)."""

    exit_code = ExitCode.SERVER


class TokenizerError(CbatchError):
    """A model's tokenizer file could not be downloaded, or is not one ``tokenizers`` reads (exit 6)."""

    exit_code = ExitCode.SERVER


class ResultsExpired(CbatchError):
    """The output dataset answered 404 after its lifetime: the results are gone (exit 13)."""

    exit_code = ExitCode.RESULTS_EXPIRED


class LocalWriteError(CbatchError):
    """A local file could not be written: no space, permission, read-only, closed stdout (exit 11)."""

    exit_code = ExitCode.LOCAL_WRITE


class StoreError(CbatchError):
    """The local state store cannot be used; the message names the file (see the subclasses)."""


class StoreBusy(StoreError):
    """Another process held the state store's write lock past the wait (exit 15): try again later."""

    exit_code = ExitCode.STATE_BUSY


class StoreDamaged(StoreError):
    """The state store file is corrupt, or was made by a newer cbatch (exit 16).

    The message names the file; the hint is the command that moves it aside.
    """

    exit_code = ExitCode.STATE_DAMAGED


class StoreNotWritable(StoreError, LocalWriteError):
    """The state store cannot be written: read-only, a full disk, no permission (exit 11)."""

    exit_code = ExitCode.LOCAL_WRITE


class RecordsStillFailing(CbatchError):
    """Records still failed after the last retry round (exit 12)."""

    exit_code = ExitCode.RECORDS_FAILED


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C raises ``KeyboardInterrupt``.

    CI cancellation and ``timeout`` send SIGTERM; a closed terminal sends
    SIGHUP. Being a ``KeyboardInterrupt``, it runs every cleanup Ctrl-C runs
    (temporary files removed, nothing cancelled, the resume command printed);
    only the words and the exit code (128 + the signal) differ.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def stop_word(exc: BaseException) -> str:
    """How a message names what stopped the run: ``interrupted``, ``terminated (SIGTERM)``, ..."""
    import signal

    signum = getattr(exc, "signum", None)
    if signum == getattr(signal, "SIGTERM", None):
        return "terminated (SIGTERM)"
    if signum == getattr(signal, "SIGHUP", None):
        return "hung up (SIGHUP)"
    return "interrupted"
