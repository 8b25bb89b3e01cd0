"""What ``estimate`` and ``create --file`` share: the counting options and the budget of a run.

Both read the same settings (the assumed output bound, the model's prices) and the same
global options (``--ca-bundle`` and ``--timeout`` reach the tokenizer's storage host as
they reach the API), so they are built here once.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import Budget, CountOptions
    from ._context import CliState


def count_options(state: CliState, tokenizer: Path | None) -> CountOptions:
    from ..engine import CountOptions, FetchSettings

    return CountOptions(
        assumed_output=state.settings().assumed_output,
        tokenizer_file=tokenizer,
        fetch=FetchSettings(ca_bundle=state.ca_bundle, read_timeout=state.timeout),
    )


def budget(
    state: CliState, model: str, max_cost: Decimal | None, max_input_tokens: int | None
) -> Budget | None:
    from ..engine import make_budget

    return make_budget(
        state.settings().prices_for(model),
        model,
        max_cost=max_cost,
        max_input_tokens=max_input_tokens,
    )
