"""The generation options a table run sets once for every row, bounded as bodies.yaml bounds them.

The one place their ranges and choices are written. The command line's flags
(``cli/_tables``) take their bounds from here, so ``--help`` shows them and a
value outside one is a usage error before anything is read;
:func:`~cohere_batch_cli.tasks.table_prompts.chat_options`, the builder the
command line and ``cb.PromptTable`` share, refuses the same values in the same
words whichever side gave them. It imports nothing: ``cbatch create --help``
reads it.

From ``ChatRequestBodyV2`` (``../shared/cohere-api/bodies.yaml``): a bound
the schema states (``minimum``/``maximum``), else the one its description
states (``frequency_penalty``, ``presence_penalty``: "min value of 0.0, max
value of 1.0"; ``stop_sequences``: "up to 5 strings"). ``seed``'s maximum is
written there as 18446744073709552000, a 64-bit unsigned integer's largest
value printed as a float: it is that value here. ``max_tokens`` has no bound
in the spec but a count of tokens cannot be below 1.
"""

from __future__ import annotations

BOUNDS: dict[str, tuple[int | float, int | float | None]] = {
    "max_tokens": (1, None),
    "temperature": (0.0, 1.0),
    "p": (0.01, 0.99),
    "k": (0, 500),
    "seed": (0, 2**64 - 1),
    "frequency_penalty": (0.0, 1.0),
    "presence_penalty": (0.0, 1.0),
    "priority": (0, 999),
    "thinking_budget": (1, None),
}
"""Each bounded option, by its Python name (the body field's, but ``thinking_budget``:
``thinking.token_budget``): its least and greatest value (None: no greatest)."""

NUMBERS = frozenset({"temperature", "p", "frequency_penalty", "presence_penalty"})
"""The options that are numbers (sent as floats); the other bounded ones are integers."""

MAX_STOP_SEQUENCES = 5
"""``stop_sequences``: "a list of up to 5 strings"."""

SAFETY_MODES = ("CONTEXTUAL", "STRICT", "OFF")
"""``safety_mode``'s values (bodies.yaml writes ``OFF`` unquoted, which YAML 1.1 reads as false)."""

THINKING = ("enabled", "disabled")
"""``thinking.type``'s values."""
