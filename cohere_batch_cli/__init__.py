"""cbatch: a command-line tool for Cohere's Batch API.

This module holds only the version, as a literal, and the line ``--version``
prints: the entry point answers ``--version`` from it before anything else is
imported.
"""

import sys

__version__ = "0.1.0"


def version_line() -> str:
    return f"cbatch {__version__} (Python {sys.version.split()[0]})"
