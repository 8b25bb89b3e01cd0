"""cbatch: a command-line tool for Cohere's Batch API, and the Python library under it.

This module holds the version, as a literal, and the line ``--version``
prints: the entry point answers ``--version`` from it before anything else is
imported. The Python API (``import cohere_batch_cli as cb``; docs/python-api.md)
is its attributes, each loaded on first use (PEP 562), so importing the
package still costs nothing: ``cb.Client`` loads the client, never the
command line, rich or pyarrow.
"""

import sys

__version__ = "0.1.0"

_PUBLIC: dict[str, str] = {
    "Client": "library.client",
    "Run": "library.run",
    "Job": "library.job",
    "Event": "library.events",
    "EventKind": "library.events",
    "Batch": "api.models",
    "BatchStatus": "api.models",
    "ResultsSummary": "results",
    "ExitCode": "exit_codes",
    "CbatchError": "errors",
    "UsageError": "errors",
    "ConfigError": "errors",
    "NoMatch": "errors",
    "AmbiguousMatch": "errors",
    "InputRejected": "errors",
    "KeyReused": "errors",
    "NotReady": "errors",
    "WaitTimeout": "errors",
    "ResultsError": "errors",
    "ResultsExpired": "errors",
    "LocalWriteError": "errors",
    "MissingExtra": "errors",
    "CohereAPIError": "api.errors",
    "AuthenticationError": "api.errors",
    "NotFoundError": "api.errors",
    "BadRequestError": "api.errors",
    "RateLimitError": "api.errors",
    "ServerError": "api.errors",
    "NetworkError": "api.errors",
}
"""Each public name and the module (under this package) that defines it."""

__all__ = [
    "AmbiguousMatch",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchStatus",
    "CbatchError",
    "Client",
    "CohereAPIError",
    "ConfigError",
    "Event",
    "EventKind",
    "ExitCode",
    "InputRejected",
    "Job",
    "KeyReused",
    "LocalWriteError",
    "MissingExtra",
    "NetworkError",
    "NoMatch",
    "NotFoundError",
    "NotReady",
    "RateLimitError",
    "ResultsError",
    "ResultsExpired",
    "ResultsSummary",
    "Run",
    "ServerError",
    "UsageError",
    "WaitTimeout",
    "__version__",
]
"""The public names: :data:`_PUBLIC`'s, spelt out so type checkers see them exported."""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: --version stays as cheap
if TYPE_CHECKING:  # what type checkers and editors see; at run time, __getattr__ below
    from .api.errors import (
        AuthenticationError,
        BadRequestError,
        CohereAPIError,
        NetworkError,
        NotFoundError,
        RateLimitError,
        ServerError,
    )
    from .api.models import Batch, BatchStatus
    from .errors import (
        AmbiguousMatch,
        CbatchError,
        ConfigError,
        InputRejected,
        KeyReused,
        LocalWriteError,
        MissingExtra,
        NoMatch,
        NotReady,
        ResultsError,
        ResultsExpired,
        UsageError,
        WaitTimeout,
    )
    from .exit_codes import ExitCode
    from .library.client import Client
    from .library.events import Event, EventKind
    from .library.job import Job
    from .library.run import Run
    from .results import ResultsSummary


def __getattr__(name: str) -> object:
    """A public name, imported from its module the first time it is asked for, then kept."""
    where = _PUBLIC.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{where}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def version_line() -> str:
    return f"cbatch {__version__} (Python {sys.version.split()[0]})"
