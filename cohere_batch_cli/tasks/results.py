"""The one results entry point: a run's results written as one ``ResultsSpec`` says.

A batch (merged across its retries unless ``--own``) and a job (merged across
its parts and attempts) are runs; every command that writes results comes
here with the client, its spec (:mod:`.results_spec`) whole and a reporter.
This module imports nothing from the command line: it is the results half of
the future Python API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..results import ResultsSummary
    from ..state.store import JobRecord, StateStore
    from .reporting import Reporter
    from .results_spec import BinaryStdout, ResultsSpec

JobRun: TypeAlias = "tuple[JobRecord, StateStore]"
"""A job, with the store that records it (as :func:`.runs.find_run` finds it)."""
Run: TypeAlias = "str | JobRun"
"""What results are written of: a batch id (a retried batch's merged results), or a job."""


def write_results(
    client: CohereClient,
    spec: ResultsSpec,
    reporter: Reporter,
    run: Run,
    *,
    stdout: BinaryStdout | None = None,
) -> ResultsSummary:
    """Write ``run``'s results as ``spec`` says: a batch's (merged across its retries), or a job's.

    ``run`` is a batch id (already resolved: the batch itself, not a prefix)
    or the job :func:`.runs.find_run` found. ``stdout`` opens the binary
    stream results go to with ``-o -`` (the output object's, in a command).
    Returns what was written; raises the documented errors of
    :mod:`.fetching` and :mod:`.jobs_results`.
    """
    from .results_spec import check, check_run

    check(spec)
    if isinstance(run, str):
        from .fetching import fetch_results

        check_run(spec, None)
        return fetch_results(client, run, reporter, spec, stdout=stdout)
    from .jobs_results import fetch_job_results

    job, store = run
    check_run(spec, job.id)
    return fetch_job_results(client, job, store, reporter, spec, stdout=stdout).summary
