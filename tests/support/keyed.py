"""What the sandbox holds for one idempotency key: its batches and datasets, found by the run id their names carry."""

from __future__ import annotations

import re
from typing import Any

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.idempotency import run_id_of
from cohere_batch_cli.naming import key_of, parse_batch_name
from tests.conftest import TEST_KEY


def made_for(sandbox: Any, key: str) -> tuple[list[str], list[str]]:
    """The ids of the batches and of the datasets on the sandbox whose names carry the key's run id."""
    run_id = run_id_of(key)
    with CohereClient(TEST_KEY, sandbox.base_url) as api:
        batches = [b.id for b in api.iter_batches() if (key_of(b.name) or ("",))[0] == run_id]
        datasets = [d.id for d in api.iter_datasets() if (key_of(d.name) or ("",))[0] == run_id]
    return batches, datasets


def job_made_for(sandbox: Any, key: str) -> tuple[list[str], list[str]]:
    """The batches and datasets on the sandbox named for the parts of the key's job."""
    run_id = run_id_of(key)
    with CohereClient(TEST_KEY, sandbox.base_url) as api:
        batches = [
            b.id for b in api.iter_batches()
            if (lineage := parse_batch_name(b.name)[1]) is not None and lineage.job_id == run_id
        ]  # fmt: skip
        inputs = re.compile(rf"-{run_id}-p\d+$")  # the parts' inputs, not their outputs
        datasets = [d.id for d in api.iter_datasets() if inputs.search(d.name)]
    return batches, datasets
