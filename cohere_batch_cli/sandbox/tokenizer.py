"""The sandbox's tokenizer: the committed ``sandbox-tokenizer.json``, loaded once.

It is the file every model's ``tokenizer_url`` serves (:mod:`.models`), and the one the
sandbox counts usage with (:mod:`.usage`), so a client that downloads it and calls
``encode(text, add_special_tokens=False)`` counts exactly the text tokens the sandbox
bills. ``tokenizers`` comes with the ``[sandbox]`` extra and is imported on first use.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from .build_tokenizer import TOKENIZER_FILE

TOKENIZER_NAME = "sandbox-bpe-v1"
"""The name in the tokenizer's URL: ``/_sandbox/tokenizers/sandbox-bpe-v1.json``."""


def path() -> Path:
    return TOKENIZER_FILE


@functools.lru_cache(maxsize=1)
def text() -> bytes:
    """The file's bytes, as served."""
    return TOKENIZER_FILE.read_bytes()


@functools.lru_cache(maxsize=1)
def tokenizer() -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_str(text().decode("utf-8"))


def ids(value: str) -> list[int]:
    """Token ids of ``value`` without special tokens (one call per text: no thread pool,
    so no warning from ``tokenizers`` when a test process forks later)."""
    if not value:
        return []
    return list(tokenizer().encode(value, add_special_tokens=False).ids)


def count(value: str) -> int:
    return len(tokenizer().encode(value, add_special_tokens=False)) if value else 0


def decode(token_ids: list[int]) -> str:
    return str(tokenizer().decode(token_ids)) if token_ids else ""
