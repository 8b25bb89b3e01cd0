"""Writing results from any command: ``results`` and ``jobs results`` (a batch, a retried batch, a job).

The task (:func:`cohere_batch_cli.tasks.results.write_results`) writes them;
what lives here is what only the command line knows: the output object's
streams (a command hands its parsed spec over at ``_options.hand_over``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import ResultsOf, ResultsSpec
    from ._context import CliState


def write_run(state: CliState, run: ResultsOf, spec: ResultsSpec) -> None:
    """``run``'s results as ``spec`` says, through the one entry point, to stdout with ``-o -``."""
    from ..engine import write_results

    write_results(state.client(), spec, state.out, run, stdout=state.out.binary)
