"""Writing results from any command: ``results`` and ``jobs results`` (a batch, a retried batch, a job).

The task (:func:`cohere_batch_cli.tasks.results.write_results`) writes them;
what lives here is what only the command line knows: the seam where a
command hands its parsed spec over, and the output object's streams.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..tasks.results import Run
    from ..tasks.results_spec import ResultsSpec
    from ._context import CliState

run_f: Callable[[str, ResultsSpec], None] | None = None
"""The seam where a command hands its parsed results spec to the engine, as gh's ``runF``.

None in use. A test sets it to see, in-process, the spec each command built
from its flags: :func:`hand_over` then calls it and ends the command (exit 0)
before any request is made.
"""


def hand_over(command: str, spec: ResultsSpec) -> None:
    """Where ``command`` (``"results"``, ``"jobs results"``) has parsed its spec whole."""
    if run_f is not None:
        import typer

        run_f(command, spec)
        raise typer.Exit(0)


def write_run(state: CliState, run: Run, spec: ResultsSpec) -> None:
    """``run``'s results as ``spec`` says, through the one entry point, to stdout with ``-o -``."""
    from ..tasks.results import write_results

    write_results(state.client(), spec, state.out, run, stdout=state.out.binary)
