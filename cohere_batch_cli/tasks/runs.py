"""Run ids: ``cbatch watch k3v9x0q2ma`` follows the job, ``cbatch watch 9439e0e3`` the batch.

Every run has an id: a job's is its job id (ten letters and digits, a letter
first, as ``jobs create`` prints it); a plain batch, retried or not, is its own
run, and its run id is its batch id. ``results``, ``watch``, ``retry`` and
``cancel`` take either, and this module is the one rule that tells them apart:

1. a token that is not shaped like a job id (a UUID, the start of one, a name
   with spaces or dashes) is a batch token, resolved as before
   (:mod:`.resolving`); a job id can never be a batch id or the start of one
   (a batch id has a dash after its eighth character), so they stay apart;
2. a token shaped like a job id that this machine's state store records
   *exactly* is that job. A unique start of a job id is not taken here (it
   could as well be the start of a batch name); ``cbatch jobs ...`` takes one;
3. a token shaped like a job id that the store does not know, but that names
   batches on the API (``NAME [job J part N]``), is a job another machine
   started: the command stops (exit 4) and says to pick it up with ``cbatch
   jobs attach J --file FILE``. It is not attached here: attaching needs the
   job's input file and split options, which only the user knows;
4. anything else is a batch token after all (a batch may be named so).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import NoMatch, UsageError

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..state.store import JobRecord, StateStore

JOB_ID = re.compile(r"^[a-z][a-z0-9]{9}$")
"""The shape of a job id (:func:`.jobs.new_job_id`): never a batch id, nor the start of one."""


def looks_like_job(token: str) -> bool:
    """Whether ``token`` has the shape of a job id (no request, no store)."""
    return JOB_ID.match(token) is not None


def find_run(client: CohereClient, token: str) -> tuple[JobRecord, StateStore] | None:
    """The job ``token`` names, with the store that records it; None when it is a batch token.

    The store is read only for a token shaped like a job id, and only when
    its file exists (a machine that never made a job has none, and a batch
    command does not make one). A job id unknown here that names batches on
    the API is :class:`NoMatch` with the ``jobs attach`` that picks it up.
    """
    if not looks_like_job(token):
        return None
    from ..state.store import open_store, store_path

    if store_path().exists():
        store = open_store()
        job = store.job(token)
        if job is not None:
            return job, store
    _not_here(client, token)
    return None


def lone_run(
    client: CohereClient, tokens: list[str], command: str
) -> tuple[JobRecord, StateStore] | None:
    """The job among ``tokens`` (``watch``, ``cancel``), which must then be alone; None: all batch tokens."""
    for token in tokens:
        run = find_run(client, token)
        if run is not None:
            if len(tokens) > 1:
                raise UsageError(
                    f"{token} is a job: give it alone ('cbatch {command} {token}'), not with other ids"
                )
            return run
    return None


def _not_here(client: CohereClient, job_id: str) -> None:
    """Stop with the ``jobs attach`` hint when the API holds batches of job ``job_id``."""
    from .jobs import scan_batches

    parts = scan_batches(client, job_id, None)
    if parts:
        raise NoMatch(
            f"{job_id} is a job started on another machine ({len(parts)} part"
            f"{'' if len(parts) == 1 else 's'} on the API); this machine has not recorded it",
            hint=f"pick it up here with: cbatch jobs attach {job_id} --file FILE",
        )
