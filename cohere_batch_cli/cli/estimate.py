"""``cbatch estimate``: a file's tokens counted with the model's own tokenizer, before (and after) a batch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import InputRejected, UsageError
from ._context import get_state
from ._errors import command_errors
from ._options import MaxCostOpt, MaxInputTokensOpt, TokenizerFileOpt, hand_over
from ._tables import table_options

if TYPE_CHECKING:
    from ..engine import TableSpec


def register(app: typer.Typer) -> None:
    @app.command("estimate", rich_help_panel="Batches")
    @command_errors
    @table_options
    def estimate(
        ctx: typer.Context,
        table: TableSpec | None,
        file: Annotated[
            Path | None,
            typer.Argument(
                help="A JSONL file of chat or embed requests (or --from TABLE).",
                metavar="[FILE]",
                exists=True,
                dir_okay=False,
                show_default=False,
            ),
        ] = None,
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                "-m",
                help="The model whose tokenizer and context length count (default: the batch's with --batch, else the profile's).",
                show_default=False,
            ),
        ] = None,
        dataset_type: Annotated[
            str | None,
            typer.Option(
                "--type",
                help="batch-chat-v2-input or batch-embed-v2-input (inferred when absent).",
                show_default=False,
            ),
        ] = None,
        tokenizer: TokenizerFileOpt = None,
        batch_id: Annotated[
            str | None,
            typer.Option(
                "--batch",
                metavar="BATCH_ID",
                help="Compare the count with the input tokens this batch reports.",
                show_default=False,
            ),
        ] = None,
        max_cost: MaxCostOpt = None,
        max_input_tokens: MaxInputTokensOpt = None,
        json_out: Annotated[
            bool,
            typer.Option(
                "--json",
                help="Print the estimate as one JSON document (the same fields), and nothing else on stdout.",
            ),
        ] = False,
    ) -> None:
        """Count a file's tokens with the model's tokenizer: context overflows, cost bound.

        The tokenizer is the model's tokenizer_url, fetched once without the API
        key and cached; --tokenizer FILE uses a copy instead. The count covers
        the requests' text (chat: every text part of every message; embed: each
        text, cut to the limit as the API cuts it). The API adds template
        tokens of its own, so the bill is higher: --batch ID shows by how much
        for a batch that ran. Images are counted apart, not as tokens.

        A chat record without max_tokens is bounded by the profile's
        assumed_output_tokens (default 4096). Records that cannot fit the
        model's context are listed as FILE:LINE on stderr and the exit code is
        5, as it is for a file over --max-cost or --max-input-tokens. The cost
        bound needs prices for the model in the profile (cbatch ships none).

        With --from TABLE (and --prompt or --embed, as 'cbatch create
        --from'), the table's rows are rendered into requests exactly as create
        renders them, and the requests create would send are counted (rows that
        render alike once, those the answer cache answers not at all).

        Examples:

          cbatch estimate requests.jsonl --model command-r-08-2024

          cbatch estimate --from reviews.csv --prompt 'Classify: {{ text }}' -m command-r-08-2024

          cbatch estimate requests.jsonl -m command-r-08-2024 --max-cost 25 --json

          cbatch estimate requests.jsonl --batch 9439e0e3-49a4-4336-93e3-485fc420bc18
        """
        from ..engine import BATCH_INPUT_TYPES, compare, estimate_file
        from ..output.estimate_views import estimate_fields
        from ._estimating import budget, count_options

        state = get_state(ctx)
        out = state.out.set_mode(json_out=json_out)
        if (file is None) == (table is None):
            raise UsageError("give exactly one of FILE or --from TABLE")
        if dataset_type is not None and dataset_type not in BATCH_INPUT_TYPES:
            raise UsageError(f"--type must be one of {', '.join(sorted(BATCH_INPUT_TYPES))}")
        if table is not None:
            hand_over("table", "estimate", table)
            dataset_type = table.dataset_type
        client = state.client()
        batch = None
        if batch_id:
            from ..engine import BATCH, act_on

            batch = act_on(client, batch_id, BATCH, out, client.get_batch)
        model = (
            model or (batch.model if batch is not None else None) or state.settings().model.value
        )
        if not model:
            raise UsageError("--model is required (or set 'model' in your profile)")
        limit = budget(state, model, max_cost, max_input_tokens)
        rendered = None
        if table is not None:
            from ._tables import render_table

            rendered = render_table(ctx, state, table, model)
            file = rendered.file
        assert file is not None
        counted = estimate_file(
            client,
            file,
            model_name=model,
            dataset_type=dataset_type,
            options=count_options(state, tokenizer),
            reporter=out,
        )
        if table is not None:  # named as create names a table's requests
            import dataclasses

            counted = dataclasses.replace(counted, path=Path(table.label))
            file = counted.path
        data = counted.to_json(state.settings().prices_for(model))
        if rendered is not None:  # what the rows came to: the counts above are of the requests sent
            rows = rendered.reuse.summary
            data["table"] = {
                "rows": rows.rows, "distinct": rows.distinct, "cached": rows.cached, "sent": rows.sent,
            }  # fmt: skip
        if batch is not None:
            comparison = compare(counted, batch)
            data["batch"] = (
                comparison.to_json() if comparison else {"id": batch.id, "input_tokens": None}
            )
        for line in counted.problem_lines():
            out.info(line)
        out.item(data, str(file), estimate_fields(data))
        if counted.over_count:
            records = "record" if counted.over_count == 1 else "records"
            raise InputRejected(
                f"{file} has {counted.over_count:,} {records} that cannot fit the context of {model}"
            )
        if counted.unreadable_count:
            raise InputRejected(
                f"{file} has {counted.unreadable_count:,} lines that could not be counted"
            )
        if limit is not None:
            limit.charge(counted.charge())
