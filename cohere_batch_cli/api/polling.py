"""Waiting for a dataset to finish validating: the one loop upload and results share."""

from __future__ import annotations

import time
from collections.abc import Callable

from .client import CohereClient
from ..errors import WaitTimeout
from .models import Dataset


def wait_for_dataset(
    client: CohereClient,
    dataset_id: str,
    *,
    timeout: float,
    on_change: Callable[[Dataset], None] | None = None,
    first_interval: float = 0.25,
    max_interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Dataset:
    """Poll until the dataset's validation is final (validated, failed or skipped).

    The interval starts short, because small files validate in a moment, and
    doubles up to ``max_interval``. Raises :class:`WaitTimeout` after
    ``timeout`` seconds with the last status in the message.
    """
    deadline = time.monotonic() + timeout
    interval = first_interval
    last_status = None
    while True:
        dataset = client.get_dataset(dataset_id)
        if dataset.validation_status != last_status:
            last_status = dataset.validation_status
            if on_change:
                on_change(dataset)
        if dataset.is_final:
            return dataset
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(
                f"dataset {dataset_id} is still {last_status} after {timeout:.0f}s; "
                f"check later with: cbatch datasets get {dataset_id}"
            )
        sleep(min(interval, left))
        interval = min(max_interval, interval * 2)
