"""The ``cbatch`` entry point: answers ``--version`` before importing anything heavy.

Scripts call ``cbatch --version`` to probe for the tool; it costs no more than
Python's own start-up because typer is not imported for it.
"""

from __future__ import annotations

import sys

from . import version_line


def main() -> None:
    args = sys.argv[1:]
    if args in (["--version"], ["-V"]):
        sys.stdout.write(version_line() + "\n")  # the one write outside output/: see the docstring
        return
    from .cli.app import run

    run()
