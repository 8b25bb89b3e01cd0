"""A model's tokenizer file, loaded with Hugging Face ``tokenizers``, counting many texts at once.

Cohere's ``tokenizer_url`` files are in the JSON format of that library, and Cohere's own
SDK counts offline with ``Tokenizer.from_str(text).encode(text, add_special_tokens=False)``;
this counts the same tokens. The library is the ``[estimate]`` extra (it would pull
huggingface-hub and more into every install) and is imported on first use.

**Counting by words.** A batch repeats its words millions of times, and the library
spends most of its time on the pre-tokenizer's regular expression, not on the
vocabulary. For the tokenizers Cohere publishes (byte-level BPE: no normalizer or NFC,
the GPT-2 pre-tokenizer pattern, optionally after a digit split), every space that
follows a character other than white space starts a pre-token: no alternative of the
pattern ``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``
can hold a space after a non-space character. Tokens never cross pre-tokens, so such a
text's count is the sum of the counts of its space-separated words (each but the first
with its space), and each distinct word is counted once by the library and remembered.
A text where white space precedes a space (``"a  b"``, ``"\\n "``) is counted whole, as is
every text of a tokenizer this does not hold for (:func:`splits_at_spaces`).
tests/test_tokens.py checks the two ways agree on any text.

Many texts go through ``encode_batch_fast``, which spreads them over every core; a
handful is encoded one by one, which costs less than waking the library's thread pool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from ..errors import MissingExtra, TokenizerError

PARALLEL_FROM = 64
"""Texts per call from which they are encoded in parallel."""
JOINED_CHARS = 4096
"""Characters of words joined into one text when new words are counted."""
WORD_CACHE_SIZE = 1_000_000
"""Distinct words remembered (some 100 MB at most); past it the memory is emptied and refilled."""

_SPACE_AFTER_SPACE = re.compile(r"\s ")
"""White space before a space: the one case where a space may not start a pre-token.

Python's ``\\s`` (``str.isspace``) holds every Unicode ``White_Space`` character and a
few more, so it finds every such case the tokenizer's ``\\s`` could see, and some extra
(those texts are counted whole, which is always right)."""


def require_tokenizers(what: str) -> Any:
    """The ``tokenizers`` module, or :class:`MissingExtra` naming ``what`` needs it and the install."""
    try:
        import tokenizers
    except ImportError:
        from ..extras import install_hint

        raise MissingExtra(
            f"{what} needs the tokenizers library: {install_hint('estimate')}"
        ) from None
    return tokenizers


def _state(component: Any) -> Any:
    """A tokenizer component's own JSON (``None`` for an absent one)."""
    return None if component is None else json.loads(component.__getstate__())


def _byte_level(pre: Any) -> bool:
    return (
        isinstance(pre, dict)
        and pre.get("type") == "ByteLevel"
        and pre.get("use_regex") is True
        and pre.get("add_prefix_space") is False
    )


def splits_at_spaces(inner: Any) -> bool:
    """Whether a text's count is the sum of its space-separated words' for this tokenizer.

    True for the shape the module docstring proves it for, and nothing else: no
    normalizer or NFC; the byte-level pre-tokenizer with its pattern and no prefix space,
    alone or after a ``Digits`` split; a BPE model without dropout; and added tokens that
    hold no space and strip none around them (stripping would reach across a space).
    """
    try:
        normalizer = _state(inner.normalizer)
        pre = _state(inner.pre_tokenizer)
        model = inner.model
        added = inner.get_added_tokens_decoder().values()
    except Exception:  # a library release that exposes less: count whole, always right
        return False
    if normalizer is not None and normalizer.get("type") != "NFC":
        return False
    if isinstance(pre, dict) and pre.get("type") == "Sequence":
        steps = pre.get("pretokenizers") or []
        if not (len(steps) == 2 and steps[0].get("type") == "Digits" and _byte_level(steps[1])):
            return False
    elif not _byte_level(pre):
        return False
    if type(model).__name__ != "BPE" or getattr(model, "dropout", None):
        return False
    return not any(" " in t.content or t.lstrip or t.rstrip for t in added)


@dataclass
class Batch:
    """Texts split into words, and the words (first of a text, or after a space) not yet counted."""

    texts: Sequence[str]
    whole: list[int] = field(default_factory=list)
    split: list[tuple[int, list[str]]] = field(default_factory=list)
    new_first: list[str] = field(default_factory=list)
    new_spaced: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Learned:
    """The library's counts for a batch: its new words, and the texts counted whole."""

    first: list[int]
    spaced: list[int]
    whole: list[int]


def _line_break_token(inner: Any) -> int | None:
    """The id ``"\\n"`` is encoded as, when it is one token and no added token holds one."""
    try:
        ids = inner.encode("\n", add_special_tokens=False).ids
        added = inner.get_added_tokens_decoder().values()
    except Exception:
        return None
    if len(ids) != 1 or any("\n" in t.content for t in added):
        return None
    return int(ids[0])


class TextTokenizer:
    """One tokenizer, and where it came from (a URL without its query, or a file)."""

    def __init__(self, inner: Any, source: str) -> None:
        inner.no_truncation()  # a file may set them; a count must see every token
        inner.no_padding()
        self._inner = inner
        self.source = source
        self.by_words = splits_at_spaces(inner)
        self._break = _line_break_token(inner)
        self._first: dict[str, int] = {}
        self._spaced: dict[str, int] = {}
        """Counts of a text's first word, and of every other word with its space before it."""

    @classmethod
    def from_bytes(
        cls, data: bytes, source: str, *, what: str = "counting tokens"
    ) -> TextTokenizer:
        """Load a tokenizer file's bytes; :class:`TokenizerError` when they are not one."""
        tokenizers = require_tokenizers(what)
        try:
            inner = tokenizers.Tokenizer.from_str(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise TokenizerError(f"the tokenizer from {source} is not UTF-8 text") from None
        except Exception as exc:  # the library raises plain Exceptions for any bad file
            first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise TokenizerError(
                f"the tokenizer from {source} could not be read: {first}"
            ) from None
        return cls(inner, source)

    def count(self, text: str) -> int:
        """The tokens of one text, counted whole."""
        return len(self._inner.encode(text, add_special_tokens=False)) if text else 0

    def count_whole(self, texts: Sequence[str]) -> list[int]:
        """The token count of each text, each counted whole by the library."""
        if len(texts) < PARALLEL_FROM:
            return [self.count(t) for t in texts]
        # encode_batch_fast (tokenizers 0.21) skips the character offsets a count never reads.
        encode = getattr(self._inner, "encode_batch_fast", None) or self._inner.encode_batch
        return [len(e) for e in encode(list(texts), add_special_tokens=False)]

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """The token count of each text, in order: by words where that is exact, else whole."""
        batch = self.prepare(texts)
        return self.finish(batch, self.learn(batch))

    # count_many in three steps, so a caller can overlap the library's work on one chunk
    # (learn, which releases the GIL) with its own Python work on the next.

    @property
    def full(self) -> bool:
        """The word memory is due to be emptied: the next :meth:`prepare` will, so finish every batch first."""
        return len(self._spaced) > WORD_CACHE_SIZE

    def prepare(self, texts: Sequence[str], *, after: Batch | None = None) -> Batch:
        """Split the texts into words and find the words not yet counted (the caller's thread).

        ``after`` is a batch prepared but not finished yet: its new words are not asked
        for again, so it must be finished before this one.
        """
        batch = Batch(texts)
        if not self.by_words:
            batch.whole = list(range(len(texts)))
            return batch
        if self.full:
            self._first.clear()
            self._spaced.clear()
        search = _SPACE_AFTER_SPACE.search
        for index, text in enumerate(texts):
            if search(text):
                batch.whole.append(index)
            else:
                batch.split.append((index, text.split(" ")))
        # Every word of the chunk at once; set.difference against a dict is a C loop.
        first = {words[0] for _, words in batch.split}.difference(self._first)
        spaced = (
            set()
            .union(*(islice(words, 1, None) for _, words in batch.split))
            .difference(self._spaced)
        )
        if after is not None:
            first.difference_update(after.new_first)
            spaced.difference_update(after.new_spaced)
        batch.new_first, batch.new_spaced = list(first), list(spaced)
        return batch

    def learn(self, batch: Batch) -> Learned:
        """Count what the library must count for a batch; touches no shared state (any thread)."""
        return Learned(
            first=self.count_whole(batch.new_first),
            spaced=self._count_spaced(batch.new_spaced),
            whole=self.count_whole([batch.texts[i] for i in batch.whole]),
        )

    def finish(self, batch: Batch, learned: Learned) -> list[int]:
        """Remember the new words and add up each text (the caller's thread, batches in order)."""
        self._first.update(zip(batch.new_first, learned.first, strict=True))
        self._spaced.update(zip(batch.new_spaced, learned.spaced, strict=True))
        out: list[int] = [0] * len(batch.texts)
        first, rest = self._first, self._spaced.__getitem__
        for index, words in batch.split:
            out[index] = first[words[0]] + sum(map(rest, islice(words, 1, None)))
        for index, tokens in zip(batch.whole, learned.whole, strict=True):
            out[index] = tokens
        return out

    def _count_spaced(self, words: list[str]) -> list[int]:
        """The count of ``" " + word`` for each word, many words to one library call.

        The library's cost is per text as much as per character, so words are joined,
        each with its space, a line break between them: ``" w1\\n w2\\n w3"``. Each
        line break follows a non-space character and comes before a space, so the
        pattern makes it a pre-token of its own (``\\s+(?!\\S)`` stops short of the
        space), one token, and each word's space still starts a pre-token: no token
        crosses from one word to the next, and the line breaks' token splits the ids
        back into words. A word that is empty, holds a line break or starts or ends
        with white space is counted alone, as are all of them when a line break is not
        one token of its own.
        """
        counts = [0] * len(words)
        alone: list[int] = []
        groups: list[tuple[list[int], str]] = []
        members: list[int] = []
        parts: list[str] = []
        size = 0
        for position, word in enumerate(words):
            if (
                self._break is None
                or not word
                or "\n" in word
                or word[0].isspace()
                or word[-1].isspace()
            ):
                alone.append(position)
                continue
            members.append(position)
            parts.append(" " + word)
            size += len(word) + 2
            if size >= JOINED_CHARS:
                groups.append((members, "\n".join(parts)))
                members, parts, size = [], [], 0
        if parts:
            groups.append((members, "\n".join(parts)))
        if groups:
            encode = getattr(self._inner, "encode_batch_fast", None) or self._inner.encode_batch
            for (held, _), encoding in zip(
                groups, encode([t for _, t in groups], add_special_tokens=False), strict=True
            ):
                ids = encoding.ids
                start = 0
                for position in held[:-1]:
                    end = ids.index(self._break, start)
                    counts[position] = end - start
                    start = end + 1
                counts[held[-1]] = len(ids) - start
        for position, tokens in zip(
            alone, self.count_whole([" " + words[i] for i in alone]), strict=True
        ):
            counts[position] = tokens
        return counts
