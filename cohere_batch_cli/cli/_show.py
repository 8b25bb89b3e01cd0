"""How one batch is shown by every command that prints one: create, get, retry.

One function, so a batch reads the same whichever command made or fetched it:
its JSON, its id alone (``-q``), or its fields, with the lineage the state
store knows (attempt, the batch it retries, the one that retried it) when a
person is reading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .. import Batch
    from ._context import CliState


def show_batch(state: CliState, batch: Batch, *, lineage: bool = False) -> None:
    """Print ``batch`` in the output's mode; ``lineage`` adds what the state store knows of its attempts."""
    from ..output.batch_views import STATUS_STYLES, batch_fields

    out = state.out
    fields = batch_fields(batch, state.settings().limits.dataset_ttl, plain=out.plain)
    if lineage and not out.for_machines:
        from ..engine import existing_store, known_lineage
        from ..output.batch_views import lineage_fields

        known = known_lineage(batch, existing_store())
        if known is not None:
            fields += lineage_fields(
                known.attempt, known.root_id, known.parent_id, known.retried_by
            )
    out.item(batch.raw, batch.id, fields, {"Status": STATUS_STYLES.get(batch.status, "magenta")})
