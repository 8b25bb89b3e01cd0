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
    "PromptTable": "library.sources",
    "EmbedTable": "library.sources",
    "Dataset": "library.sources",
    "Split": "library.sources",
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
    "Dataset",
    "EmbedTable",
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
    "PromptTable",
    "RateLimitError",
    "ResultsError",
    "ResultsExpired",
    "ResultsSummary",
    "Run",
    "ServerError",
    "Split",
    "UsageError",
    "WaitTimeout",
    "__version__",
]
"""The public names: :data:`_PUBLIC`'s, spelt out so type checkers see them exported."""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: --version stays as cheap
if TYPE_CHECKING:  # what type checkers and editors see; at run time, __getattr__ below
    from collections.abc import Callable

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
    from .library.sources import Dataset, EmbedTable, PromptTable, Split
    from .results import ResultsSummary


def _lazy_names(
    module: str, homes: "dict[str, str]"
) -> "tuple[Callable[[str], object], Callable[[], list[str]]]":
    """The ``__getattr__`` and ``__dir__`` (PEP 562) of a module whose names live in other modules.

    The one lazy-name mechanism of the package: this package's names and
    :mod:`cohere_batch_cli.engine`'s. ``homes`` maps each name to its home
    module under this package (``""`` for the package itself), written
    ``module:attribute`` where the name differs at home. Importing the module
    imports nothing; a name's home is imported when the name is first asked
    for. The value is looked up again on every ask, never kept: a name is
    always its home module's current value, so a program (or a test) that
    replaces a function in its home module is seen through every tier.
    """

    def __getattr__(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        from importlib import import_module

        path, _, attribute = home.partition(":")
        return getattr(import_module(f"{__name__}.{path}" if path else __name__), attribute or name)

    def __dir__() -> "list[str]":
        return sorted(set(vars(sys.modules[module])) | set(homes))

    return __getattr__, __dir__


__getattr__, __dir__ = _lazy_names(__name__, _PUBLIC)


def version_line() -> str:
    """The line ``cbatch --version`` prints: cbatch's version and Python's."""
    return f"cbatch {__version__} (Python {sys.version.split()[0]})"
