"""cbatch: a command-line tool for Cohere's Batch API.

This module holds only the version, as a literal: the entry point answers
``--version`` from it before anything else is imported.
"""

__version__ = "0.1.0"
