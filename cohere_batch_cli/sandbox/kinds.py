"""Which dataset types exist, which a batch can read, and what a batch of each writes."""

from __future__ import annotations

from cohere_batch_cli.input_rules import (
    BATCH_INPUT_TYPES,
    CHAT_V2_OUTPUT,
    EMBED_V2_INPUT,
    EMBED_V2_OUTPUT,
)

DATASET_TYPES = frozenset(
    {
        "embed-input",
        "embed-result",
        "cluster-result",
        "cluster-outliers",
        "reranker-finetune-input",
        "single-label-classification-finetune-input",
        "chat-finetune-input",
        "multi-label-classification-finetune-input",
        "batch-chat-input",
        "batch-openai-chat-input",
        "batch-embed-v2-input",
        "batch-chat-v2-input",
    }
)
"""The types ``POST /v1/datasets`` accepts (the DatasetType enum of the API description)."""

VALIDATION_STATUSES = frozenset(
    {"unknown", "queued", "processing", "failed", "validated", "skipped"}
)


def is_batch_input(dataset_type: str) -> bool:
    return dataset_type in BATCH_INPUT_TYPES


def endpoint_kind(dataset_type: str) -> str:
    """``embed`` or ``chat``: which stand-in answers records of this input type."""
    return "embed" if dataset_type == EMBED_V2_INPUT else "chat"


def output_type(dataset_type: str) -> str:
    return EMBED_V2_OUTPUT if endpoint_kind(dataset_type) == "embed" else CHAT_V2_OUTPUT
