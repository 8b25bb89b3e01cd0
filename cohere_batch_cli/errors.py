"""cbatch's own errors: everything that goes wrong that is not an answer from the API.

::

    CbatchError                     anything cbatch itself refuses or cannot do
    ├── UsageError                  a bad value typer could not see (exit 2)
    │   ├── OutputOptionError       a bad --format, --query, or conflicting output flags
    │   ├── InputFileError          an input file that cannot be read at all
    │   ├── MissingExtra            an optional extra is not installed
    │   └── AmbiguousMatch          a short id or name matches several batches or datasets
    ├── NoMatch                     no batch or dataset has that id, id prefix or name (exit 4)
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

The API's own errors are a tree of their own in :mod:`cohere_batch_cli.api.errors`;
the CLI's one table (``cli/_errors.py``) maps both trees to exit codes by class,
subclasses first. Every error may carry a ``hint``: the next thing to try,
set by the layer that knows the command to name.
"""

from __future__ import annotations


class CbatchError(Exception):
    """Base of every error cbatch raises for a reason of its own."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(CbatchError):
    """A bad value that typer's own checks could not see (exit 2)."""


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


class NoResults(CbatchError):
    """A canceled batch or job that finished no record: there are no results to write (exit 4)."""


class ConfigError(CbatchError):
    """The configuration cannot be used: a malformed file, a missing profile or key (exit 3)."""


class InputRejected(CbatchError):
    """An input failed its local checks (size, records, context length, budget) (exit 5).

    An empty message means the details were already printed line by line.
    """


class InputChanged(InputRejected):
    """An input's bytes are no longer those its check read (its fingerprint differs): nothing of them is sent (exit 5)."""


class NotReady(CbatchError):
    """A local state stops the command: the batch is still running, no output yet (exit 5)."""


class RunBusy(NotReady):
    """Another cbatch on this machine holds the run's lock: it sends for that run now (exit 5)."""


class WaitTimeout(CbatchError):
    """A wait for a state (a dataset validated, a batch finished) ran out of time (exit 10)."""


class ResultsError(CbatchError):
    """A part could not be downloaded or decoded after every retry (exit 6)."""


class TokenizerError(CbatchError):
    """A model's tokenizer file could not be downloaded, or is not one ``tokenizers`` reads (exit 6)."""


class ResultsExpired(CbatchError):
    """The output dataset answered 404 after its lifetime: the results are gone (exit 13)."""


class LocalWriteError(CbatchError):
    """A local file could not be written: no space, permission, read-only, closed stdout (exit 11)."""


class StoreError(CbatchError):
    """The local state store cannot be used; the message names the file (see the subclasses)."""


class StoreBusy(StoreError):
    """Another process held the state store's write lock past the wait (exit 15): try again later."""


class StoreDamaged(StoreError):
    """The state store file is corrupt, or was made by a newer cbatch (exit 16).

    The message names the file; the hint is the command that moves it aside.
    """


class StoreNotWritable(StoreError, LocalWriteError):
    """The state store cannot be written: read-only, a full disk, no permission (exit 11)."""


class RecordsStillFailing(CbatchError):
    """Records still failed after the last retry round (exit 12)."""


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
