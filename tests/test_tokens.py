"""The counting rule, the byte bound, counting by words, and the budget, without a server.

The rule is checked against the sandbox's own usage code (it bills by docs/sandbox.md's
rule; cbatch's copy must read requests the same way), the byte bound against exact
counts, and counting by words against counting whole texts, on texts hypothesis makes
as awkward as it can.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohere_batch_cli.errors import InputRejected, TokenizerError, UsageError
from cohere_batch_cli.sandbox import tokenizer as sandbox_tokenizer
from cohere_batch_cli.sandbox import usage
from cohere_batch_cli.tasks.budget import Budget, Charge, make_budget
from cohere_batch_cli.tokens import rule
from cohere_batch_cli.tokens.tokenizer import TextTokenizer, splits_at_spaces

SANDBOX_TOKENIZER = sandbox_tokenizer.path().read_bytes()

# Characters that stress the pre-tokenizer's pattern: every kind of space and white
# space, letters of several scripts, digits of several kinds, marks, punctuation, emoji.
PIECES = [
    *"aZé ,.'sltrvmd\n\t\r1",
    "  ",
    " \n",
    "\u00a0",
    "\u2009",
    "\u3000",
    "\x1c",
    "\u0301",
    "٣",
    "²",
    "42",
    "東京",
    "😀",
    "'s",
    "'ll",
    " x",
    "\u180e",
    "Ⅻ",
    "\x85",
]
AWKWARD = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


@pytest.fixture(scope="module")
def tok() -> TextTokenizer:
    return TextTokenizer.from_bytes(SANDBOX_TOKENIZER, "sandbox")


def variant(**changes: Any) -> TextTokenizer:
    """The sandbox tokenizer with some components replaced, as another published file might be."""
    data = json.loads(SANDBOX_TOKENIZER)
    data.update(changes)
    return TextTokenizer.from_bytes(json.dumps(data).encode(), "variant")


BYTE_LEVEL = {
    "type": "ByteLevel",
    "add_prefix_space": False,
    "trim_offsets": True,
    "use_regex": True,
}


# -- the rule ------------------------------------------------------------------------------


BODIES = [
    {"messages": [{"role": "user", "content": "What is the capital of France?"}]},
    {"max_tokens": 7, "messages": [
        {"role": "system", "content": "You answer in one word."},
        {"role": "user", "content": [{"type": "text", "text": "Describe "}, {"type": "image_url", "image_url": {"url": "data:x"}},
                                     {"type": "text", "text": "this picture, café ☕"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "not counted"}, {"type": "text", "text": "A cup."}]},
        {"role": "tool", "content": [{"type": "text", "text": "tool output counts"}]},
        {"role": "assistant", "tool_calls": [{"id": "c"}]}]},
    {"messages": [{"role": "user", "content": ""}], "tools": [{"type": "function", "function": {"name": "not counted"}}]},
]  # fmt: skip


@pytest.mark.parametrize("body", BODIES)
def test_chat_text_is_what_the_sandbox_bills(tok: TextTokenizer, body: dict[str, Any]) -> None:
    found = rule.chat_texts(body)
    facts = usage.chat_facts(body)
    assert sum(tok.count_many(found.texts)) == facts.text_tokens
    assert (found.messages, found.max_tokens) == (facts.messages, facts.max_tokens)


EMBEDS = [
    {"texts": ["hello world", "one two three four five six seven eight nine ten"], "truncate": "NONE"},
    {"images": ["data:a", "data:b"], "max_tokens": 3, "truncate": "end"},
    {"inputs": [{"content": [{"type": "text", "text": "a b"}, {"type": "image_url", "image_url": {"url": "data:x"}},
                             {"type": "text", "text": "c"}]}, {"content": [{"type": "image_url", "image_url": "data:y"}]}]},
]  # fmt: skip


@pytest.mark.parametrize("body", EMBEDS)
def test_embed_units_are_what_the_sandbox_bills(tok: TextTokenizer, body: dict[str, Any]) -> None:
    found = rule.embed_texts(body)
    facts = usage.embed_facts(body)
    assert tuple(rule.unit_tokens(found, tok.count_many(found.texts))) == facts.unit_tokens
    assert (found.truncate_none, found.max_tokens) == (facts.truncate_none, facts.max_tokens)
    assert rule.embed_limit(found, 512) == usage.embed_limit(facts, 512)


def test_images_are_counted_apart() -> None:
    assert rule.chat_texts(BODIES[1]).images == 1
    assert rule.embed_texts(EMBEDS[1]).images == 2 and rule.embed_texts(EMBEDS[2]).images == 2


# -- the byte bound ------------------------------------------------------------------------

TEXTS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
CHAT_BODY = st.fixed_dictionaries(
    {
        "messages": st.lists(
            st.fixed_dictionaries({"role": st.just("user"), "content": TEXTS}),
            min_size=1,
            max_size=3,
        )
    },
    optional={"max_tokens": st.integers(-5, 60), "tools": st.just([{"max_tokens": 5}])},
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=CHAT_BODY, context=st.integers(1, 120), ascii_only=st.booleans())
def test_a_line_the_bytes_clear_never_overflows(
    tok: TextTokenizer, body: dict[str, Any], context: int, ascii_only: bool
) -> None:
    raw = json.dumps({"custom_id": "x", "body": body}, ensure_ascii=ascii_only).encode()
    bound = rule.line_bound(raw, rule.CHAT, context, assumed_output=10)
    found = rule.chat_texts(body)
    exact = sum(tok.count_many(found.texts)) + (found.max_tokens or 10)
    if bound.fits and bound.decided:
        assert exact <= context
    assert bound.input_tokens >= sum(tok.count_many(found.texts))


def test_a_key_spelled_with_escapes_is_left_to_the_exact_count() -> None:
    hidden = b'{"custom_id": "x", "body": {"max\\u005ftokens": 100000, "messages": [{"role": "user", "content": "hi"}]}}'
    assert not rule.line_bound(hidden, rule.CHAT, 128_000, 10).decided
    plain = b'{"custom_id": "x", "body": {"messages": [{"role": "user", "content": "caf\\u00e9"}]}}'
    assert rule.line_bound(plain, rule.CHAT, 128_000, 10).decided


def test_an_embed_line_fails_only_with_truncate_none() -> None:
    long = json.dumps({"custom_id": "e", "body": {"texts": ["word " * 200]}}).encode()
    assert rule.line_bound(long, rule.EMBED, 8, 0).fits
    strict = json.dumps(
        {"custom_id": "e", "body": {"texts": ["word " * 200], "truncate": "NONE"}}
    ).encode()
    assert not rule.line_bound(strict, rule.EMBED, 8, 0).fits


# -- counting by words -----------------------------------------------------------------------


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(texts=st.lists(AWKWARD, min_size=1, max_size=8))
def test_counting_by_words_equals_counting_whole(tok: TextTokenizer, texts: list[str]) -> None:
    assert tok.by_words
    assert (
        tok.count_many(texts)
        == tok.count_whole(texts)
        == [sandbox_tokenizer.count(t) for t in texts]
    )


_NFC_DIGITS = variant(
    normalizer={"type": "NFC"},
    pre_tokenizer={"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, BYTE_LEVEL]},
    added_tokens=[{"id": 2048, "content": "<|END|>", "single_word": False, "lstrip": False, "rstrip": False,
                   "normalized": False, "special": True}],
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.one_of(AWKWARD, st.just("a <|END|> b  <|END|>c")), min_size=1, max_size=6))
def test_counting_by_words_is_exact_after_nfc_and_a_digit_split(texts: list[str]) -> None:
    assert _NFC_DIGITS.by_words
    assert _NFC_DIGITS.count_many(texts) == _NFC_DIGITS.count_whole(texts)


@pytest.mark.parametrize(
    "changes",
    [
        {"normalizer": {"type": "NFKC"}},
        {"pre_tokenizer": {**BYTE_LEVEL, "add_prefix_space": True}},
        {"pre_tokenizer": {"type": "Whitespace"}},
        {"pre_tokenizer": {**BYTE_LEVEL, "use_regex": False}},
        {"added_tokens": [{"id": 2048, "content": "<mask>", "single_word": False, "lstrip": True, "rstrip": False,
                           "normalized": False, "special": True}]},
        {"added_tokens": [{"id": 2048, "content": "two words", "single_word": False, "lstrip": False, "rstrip": False,
                           "normalized": False, "special": False}]},
    ],
    ids=["nfkc", "prefix-space", "whitespace", "no-regex", "lstrip", "spaced-token"],
)  # fmt: skip
def test_any_other_tokenizer_is_counted_whole(changes: dict[str, Any]) -> None:
    other = variant(**changes)
    assert not other.by_words
    texts = ["a <mask> b", " two words here", "x  y 12"]
    assert other.count_many(texts) == other.count_whole(texts)


def test_truncation_in_the_file_does_not_cap_a_count() -> None:
    capped = variant(
        truncation={"direction": "Right", "max_length": 3, "strategy": "LongestFirst", "stride": 0}
    )
    assert capped.count("one two three four five six") == sandbox_tokenizer.count(
        "one two three four five six"
    )


def test_a_file_that_is_not_a_tokenizer_is_a_tokenizer_error() -> None:
    with pytest.raises(TokenizerError, match="could not be read"):
        TextTokenizer.from_bytes(b'{"version": "1.0"}', "somewhere")
    with pytest.raises(TokenizerError, match="not UTF-8"):
        TextTokenizer.from_bytes(b"\xff\xfe", "somewhere")
    assert splits_at_spaces(object()) is False


# -- the budget -------------------------------------------------------------------------------


def test_a_budget_covers_every_charge_together() -> None:
    from cohere_batch_cli.config import Prices

    budget = Budget(max_cost=Decimal("1.00"), prices=Prices(Decimal("1"), Decimal("2")))
    budget.charge(Charge("part 1", 300_000, 100_000))  # 0.50
    assert budget.cost == Decimal("0.5")
    with pytest.raises(InputRejected) as refused:
        budget.charge(Charge("retry round 1", 200_000, 200_000))  # 0.60 more
    assert str(refused.value) == (
        "retry round 1: at most 1.10 together with the 1 charged before (200,000 input tokens "
        "+ at most 200,000 output tokens), over --max-cost 1.00"
    )
    assert [c.label for c in budget.charges] == ["part 1"]
    budget.charge(Charge("retry round 1", 200_000, 0))
    assert budget.cost == Decimal("0.7")


def test_an_input_token_budget_needs_no_prices() -> None:
    budget = make_budget(None, "m", max_cost=None, max_input_tokens=10)
    assert budget is not None
    with pytest.raises(
        InputRejected, match=r"^f\.jsonl: 11 input tokens, over --max-input-tokens 10$"
    ):
        budget.charge(Charge("f.jsonl", 11, 0))
    assert make_budget(None, "m", max_cost=None, max_input_tokens=None) is None
    with pytest.raises(UsageError, match=r'--max-cost needs prices for m: .*prices\."m"'):
        make_budget(None, "m", max_cost=Decimal(1), max_input_tokens=None)


def test_the_cache_path_is_one_file_per_url(tmp_path: Path) -> None:
    from cohere_batch_cli.tokens.source import cache_path, safe_url

    a, b = (
        cache_path("https://s.example/t.json?sig=1"),
        cache_path("https://s.example/t.json?sig=2"),
    )
    assert a != b and a == cache_path("https://s.example/t.json?sig=1")
    assert a.parent == tmp_path / "cache" / "cbatch" / "tokenizers"  # XDG_CACHE_HOME from conftest
    assert safe_url("https://s.example/t.json?X-Goog-Signature=abc#f") == "https://s.example/t.json"


LINES = st.lists(
    st.one_of(
        st.builds(
            lambda text, cap: json.dumps(
                {"custom_id": "x", "body": {"messages": [{"role": "user", "content": text}], **cap}}
            ),
            st.text(max_size=300),
            st.one_of(st.just({}), st.builds(lambda n: {"max_tokens": n}, st.integers(1, 3000))),
        ),
        st.just(""),
        st.just("   "),
        st.just(
            '{"custom_id": "e", "body": {"texts": ["' + "w " * 900 + '"], "truncate": "NONE"}}'
        ),
        st.just('{"custom_id": "h", "body": {"max\\u005ftokens": 9, "messages": []}}'),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    lines=LINES,
    end=st.sampled_from(["\n", "\r\n"]),
    last=st.booleans(),
    bom=st.booleans(),
    context=st.integers(600, 5000),
)
def test_the_block_pass_finds_exactly_the_lines_the_line_pass_does(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[str],
    end: str,
    last: bool,
    bom: bool,
    context: int,
) -> None:
    from cohere_batch_cli.tasks.estimating import undecided_lines

    path = tmp_path_factory.mktemp("blocks") / "f.jsonl"
    path.write_bytes(
        (b"\xef\xbb\xbf" if bom else b"") + (end.join(lines) + (end if last else "")).encode()
    )
    for kind in (rule.CHAT, rule.EMBED):
        expected = set()
        for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
            bound = rule.line_bound(raw, kind, context, 500)
            if raw.strip() and not (bound.fits and bound.decided):
                expected.add(number)
        assert undecided_lines(path, kind, context, 500) == expected


@pytest.mark.parametrize("context", [128_000, 70_000, 5_000])
def test_the_block_pass_across_block_edges_and_long_lines(tmp_path: Path, context: int) -> None:
    import random

    from cohere_batch_cli.tasks.estimating import undecided_lines

    rng = random.Random(context)
    lines = []
    for i in range(4000):
        size = (
            rng.choice([40, 200, 900, 3000]) if i % 997 else 150_000
        )  # a few far longer than a block
        cap = {"max_tokens": rng.randint(1, 90_000)} if i % 50 == 0 else {}
        lines.append(
            json.dumps(
                {
                    "custom_id": f"r{i}",
                    "body": {"messages": [{"role": "user", "content": "y" * size}], **cap},
                }
            )
        )
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines) + "\n")
    expected = {
        n for n, raw in enumerate(path.read_bytes().split(b"\n"), 1)
        if raw and not rule.line_bound(raw, rule.CHAT, context, 4096).fits
    }  # fmt: skip
    assert expected and undecided_lines(path, rule.CHAT, context, 4096) == expected
