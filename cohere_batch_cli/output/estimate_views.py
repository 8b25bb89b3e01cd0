"""How an estimate looks to a person: its fields, made from the same dictionary ``--json`` prints.

The estimate is built in ``tasks/estimating.py`` as a plain dictionary
(``Estimate.to_json``); this module only words it, so the JSON and the field view
cannot disagree.
"""

from __future__ import annotations

from typing import Any


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def estimate_fields(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The field view of an estimate (``cbatch estimate`` without ``--json``)."""
    embed = "texts" in data
    tokens = data["input_tokens"]
    kind = "embed" if embed else "chat"
    fields = [
        (
            "File",
            f"{data['file']}: {_plural(data['records'], kind + ' record')} ({data['dataset_type']})",
        )
    ]
    context = data.get("context_length")
    model = f"{data['model']}, context length " + (f"{context:,} tokens" if context else "unknown")
    fields.append(("Model", model))
    if embed:
        fields.append(("Texts", _n(data["texts"])))
        per = "per text"
        total = f"{tokens['total']:,}" + (
            f" after truncation ({tokens['uncut']:,} before)" if data["truncated_texts"] else ""
        )
    else:
        per = "per record"
        total = f"{tokens['total']:,}"
    fields.append(
        (
            "Input tokens",
            f"{total}; {per} {_n(tokens['min'])} min, {_n(tokens['median'])} median, {_n(tokens['max'])} max",
        )
    )
    if embed:
        fields.append(("Output tokens", "none (embeddings)"))
        if data["truncated_texts"]:
            fields.append(
                (
                    "Truncated",
                    f"{_plural(data['truncated_texts'], 'text')} over the limit, cut to fit by the API",
                )
            )
    else:
        without = data["records_without_max_tokens"]
        bound = f"at most {data['output_tokens_bound']:,}"
        if without:
            bound += f": {_plural(without, 'record')} without max_tokens at the assumed {data['assumed_max_tokens']:,}"
        else:
            bound += ", from each record's max_tokens"
        fields.append(("Output tokens", bound))
    over = data["over_context"]["count"]
    fields.append(
        (
            "Over context",
            "none" if not over else f"{_plural(over, 'record')} cannot fit (listed on stderr)",
        )
    )
    if data.get("unreadable_lines"):
        fields.append(
            ("Not counted", f"{_plural(data['unreadable_lines'], 'line')} (listed on stderr)")
        )
    if data.get("images"):
        fields.append(("Images", f"{data['images']:,}, not counted (the count covers text)"))
    cost = data.get("cost")
    if cost:
        fields.append(("Cost", f"at most {cost['shown']} (prices from {cost['prices_from']})"))
    else:
        fields.append(
            (
                "Cost",
                f"not priced: set prices for {data['model']} in the profile (docs/estimating.md)",
            )
        )
    fields.append(("Counts", data["counts"]))
    batch = data.get("batch")
    if batch:
        fields.append(("Batch", _batch_line(batch)))
    return fields


def _batch_line(batch: dict[str, Any]) -> str:
    if batch.get("input_tokens") is None:
        return f"{batch['id']} reports no token counts yet"
    line = (
        f"{batch['id']} reports {batch['input_tokens']:,} input tokens for {_plural(batch['succeeded'], 'record')}: "
        f"{batch['difference']:+,} against this count ({batch['difference_per_record']:+,.1f} a record)"
    )
    if not batch.get("like_for_like"):
        line += "; some records failed or are missing and bill nothing, so it is not like for like"
    return line
