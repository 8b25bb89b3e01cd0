"""A spending limit that every batch of a run is charged against, before a byte is sent.

``--max-cost`` and ``--max-input-tokens`` make one :class:`Budget`; each input about
to become a batch (today one ``create --file``; later each part of a job and each retry
round) is checked and charged with its :class:`Charge`, so the limit covers all of them
together and the first input that would pass it is refused with what it would have
made the total. Costs are judged on the upper bound: the input tokens counted with the
model's tokenizer, plus every record's output bound (its ``max_tokens``, or the
profile's assumed bound).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from ..errors import InputRejected, UsageError

if TYPE_CHECKING:
    from ..config import Prices


@dataclass(frozen=True)
class Charge:
    """What one input may cost: its input tokens and the bound of its output tokens."""

    label: str
    input_tokens: int
    output_tokens: int


def money(amount: Decimal) -> str:
    """An amount as people read it: two decimals, more only when it is smaller than a cent."""
    if amount != 0 and abs(amount) < Decimal("0.01"):
        return f"{amount:.6f}".rstrip("0")
    return f"{amount:,.2f}"


MAX_PLACES = 12
"""Decimals shown at most when two amounts are told apart."""


def money_against(amount: Decimal, limit: Decimal) -> tuple[str, str]:
    """``amount`` and the ``limit`` it is compared with, each with the digits that tell them apart.

    ``--max-cost 0.0104`` refused with "at most 0.01 ..., over --max-cost 0.01"
    said nothing: the limit is shown with the digits it was given (two at
    least), and the amount with as many as it takes to read on the same side
    of it as it is (two at least).
    """
    given = min(max(2, -int(limit.normalize().as_tuple().exponent)), MAX_PLACES)
    places = 2
    while places < MAX_PLACES and (_at(amount, places) > limit) != (amount > limit):
        places += 1  # shown, the amount must sit on the same side of the limit as it does
    return f"{_at(amount, places):,.{places}f}", f"{_at(limit, given):,f}"


def _at(amount: Decimal, places: int) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-places))


@dataclass
class Budget:
    """The limits, the prices they are judged with, and what was charged so far."""

    max_cost: Decimal | None = None
    max_input_tokens: int | None = None
    prices: Prices | None = None
    charges: list[Charge] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.max_cost is not None and self.prices is None:
            raise UsageError("--max-cost needs the model's prices")

    @property
    def input_tokens(self) -> int:
        return sum(c.input_tokens for c in self.charges)

    @property
    def output_tokens(self) -> int:
        return sum(c.output_tokens for c in self.charges)

    def cost_of(self, charge: Charge) -> Decimal | None:
        return (
            None
            if self.prices is None
            else self.prices.cost(charge.input_tokens, charge.output_tokens)
        )

    @property
    def cost(self) -> Decimal | None:
        return (
            None if self.prices is None else self.prices.cost(self.input_tokens, self.output_tokens)
        )

    def refusal(self, charge: Charge) -> str | None:
        """Why ``charge`` would take the run over a limit, or None when it fits."""
        earlier = len(self.charges)
        together = f" together with the {earlier:,} charged before" if earlier else ""
        if self.max_input_tokens is not None:
            total = self.input_tokens + charge.input_tokens
            if total > self.max_input_tokens:
                counted = f"{charge.input_tokens:,} input tokens" + (
                    f", {total:,}{together}" if earlier else ""
                )
                return (
                    f"{charge.label}: {counted}, over --max-input-tokens {self.max_input_tokens:,}"
                )
        if self.max_cost is not None and self.prices is not None:
            cost = self.prices.cost(
                self.input_tokens + charge.input_tokens, self.output_tokens + charge.output_tokens
            )
            if cost > self.max_cost:
                shown, limit = money_against(cost, self.max_cost)
                return (
                    f"{charge.label}: at most {shown}{together} ({charge.input_tokens:,} input tokens "
                    f"+ at most {charge.output_tokens:,} output tokens), over --max-cost {limit}"
                )
        return None

    def charge(self, charge: Charge) -> None:
        """Record ``charge``, or raise :class:`InputRejected` (exit 5) when it does not fit."""
        why = self.refusal(charge)
        if why is not None:
            raise InputRejected(why)
        self.charges.append(charge)

    @property
    def active(self) -> bool:
        return self.max_cost is not None or self.max_input_tokens is not None


def make_budget(
    prices: Prices | None, model: str, *, max_cost: Decimal | None, max_input_tokens: int | None
) -> Budget | None:
    """The run's budget from ``--max-cost`` and ``--max-input-tokens``; None when neither is given."""
    if max_cost is None and max_input_tokens is None:
        return None
    if max_cost is not None and prices is None:
        raise UsageError(
            f"--max-cost needs prices for {model}: set input and output under "
            f'[profiles.NAME.prices."{model}"] in the config file, or CBATCH_INPUT_PRICE '
            "and CBATCH_OUTPUT_PRICE (prices per million tokens)"
        )
    return Budget(max_cost=max_cost, max_input_tokens=max_input_tokens, prices=prices)
