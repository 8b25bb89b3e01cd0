"""The answer cache (issue 25, "No request paid for twice"): ``cbatch cache stats|prune|clear``, its bound.

The cache is filled here as ``results`` of a table run fills it (successful answers,
keyed by model and request), through :mod:`cohere_batch_cli.state.answer_cache`; what a
user notices is read back through ``cbatch cache``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.state.answer_cache import (
    ENTRY_OVERHEAD,
    Entry,
    canonical,
    open_cache,
    request_key,
)
from tests.conftest import Cli

MODEL = "command-r-08-2024"


def answer(n: int, size: int = 100) -> Entry:
    body = json.dumps({"message": {"content": [{"type": "text", "text": "x" * size}]}, "n": n})
    key = request_key(MODEL, canonical({"messages": [{"role": "user", "content": f"q{n}"}]}))
    return Entry(key, MODEL, body.encode(), 10 + n, 2)


def stats(cli: Cli) -> dict[str, int]:
    return json.loads(cli("cache", "stats", "--json").stdout)


def test_stats_of_no_cache_makes_none(cli: Cli, tmp_path: Path) -> None:
    shown = stats(cli)
    assert (shown["entries"], shown["bytes"], shown["hits"]) == (0, 0, 0)
    assert not Path(shown["path"]).exists(), "a look makes no cache"
    assert shown["max_bytes"] == 1_000_000_000


def test_stats_count_entries_bytes_and_hits_saved(cli: Cli) -> None:
    with open_cache() as cache:
        cache.put([answer(n) for n in range(5)])
        hits = cache.take([answer(1).key, answer(3).key, b"not there" * 2])
        cache.count_saved(len(hits), sum(h.input_tokens for h in hits), 4)
    shown = stats(cli)
    assert shown["entries"] == 5
    assert shown["hits"] == 2 and shown["saved_input_tokens"] == 11 + 13
    assert shown["bytes"] >= 5 * (len(answer(0).body) + ENTRY_OVERHEAD)
    text = cli("cache", "stats").stdout
    assert "entries:     5" in text and "hits saved:  2 requests" in text


def test_the_cache_keeps_its_bound_by_dropping_the_answers_used_longest_ago(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    size = len(answer(0).body) + ENTRY_OVERHEAD
    monkeypatch.setenv("CBATCH_CACHE_MAX_BYTES", str(10 * size))
    with open_cache() as cache:
        cache.put([answer(n) for n in range(8)], now=1000.0)
        cache.take([answer(0).key, answer(1).key], now=2000.0)  # used again: kept
        cache.put([answer(n) for n in range(8, 12)], now=3000.0)  # past the bound
        assert cache.totals()["bytes"] <= 10 * size
        kept = {hit.key for hit in cache.take([answer(n).key for n in range(12)])}
    assert answer(0).key in kept and answer(1).key in kept, "used recently, kept"
    assert answer(2).key not in kept, "used longest ago, dropped first"
    assert all(answer(n).key in kept for n in range(8, 12)), "the newest kept"


def test_prune_older_than_and_to_size(cli: Cli) -> None:
    import time

    now = time.time()
    with open_cache() as cache:
        cache.put([answer(n) for n in range(3)], now=now - 40 * 86400)
        cache.put([answer(n) for n in range(3, 6)], now=now)
    result = cli("cache", "prune", "--older-than", "30d")
    assert "dropped 3 answers" in result.stderr
    assert stats(cli)["entries"] == 3
    cli("cache", "prune", "--to-size", "1")
    assert stats(cli)["entries"] == 0
    refused = cli("cache", "prune", exit_code=ExitCode.USAGE)
    assert "--older-than" in refused.stderr


def test_clear_needs_yes_off_a_terminal_and_deletes_the_file(cli: Cli) -> None:
    with open_cache() as cache:
        cache.put([answer(1)])
    path = Path(stats(cli)["path"])
    refused = cli("cache", "clear", exit_code=ExitCode.USAGE)
    assert "--yes" in refused.stderr and path.exists()
    done = cli("cache", "clear", "--yes")
    assert f"cleared the answer cache {path}" in done.stderr
    assert not path.exists() and stats(cli)["entries"] == 0


def test_clear_declined_at_a_terminal_is_exit_2_and_keeps_the_cache(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    cbatch = shutil.which("cbatch", path=os.path.dirname(sys.executable))
    if cbatch is None:
        pytest.skip("cbatch is not installed in this environment")
    with open_cache() as cache:
        cache.put([answer(1)])
        path = cache.path
    child = pexpect.spawn(
        cbatch, ["cache", "clear"], env=dict(os.environ), encoding="utf-8", timeout=20
    )
    child.expect(r"\[y/N\]")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == ExitCode.USAGE
    assert "not confirmed" in (child.before or "")
    assert path.exists()


def test_a_damaged_cache_is_passed_over_by_a_run_and_named_by_stats(
    cli: Cli, tmp_path: Path
) -> None:
    path = Path(stats(cli)["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a database" * 100)
    refused = cli("cache", "stats", exit_code=ExitCode.LOCAL_WRITE)
    assert str(path) in refused.stderr and "cache clear --yes" in refused.stderr


SHAPES = {
    "chat": lambda text: {"messages": [{"role": "user", "content": text}]},
    "chat with a system prompt and options": lambda text: {
        "messages": [
            {"role": "system", "content": 'Answer in JSON. "Quoted", ünïcode.'},
            {"role": "user", "content": text},
        ],
        "temperature": 0.3,
        "max_tokens": 50,
        "response_format": {
            "type": "json_object",
            "json_schema": {"type": "object", "properties": {"z": {}, "a": {}}},
        },
    },
    "embed": lambda text: {
        "inputs": [{"content": [{"type": "text", "text": text}]}],
        "input_type": "search_document",
    },
    "the text twice (each body made whole)": lambda text: {"a": text, "b": [text]},
}


@pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
def test_a_bodys_canonical_json_made_from_its_frame_is_the_same_bytes(shape: str) -> None:
    """A table row's key is made from the body's canonical JSON written around the row's text
    alone: byte for byte what ``canonical`` writes of the whole body, for any text, or the
    cache would hold the same request under two keys."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from cohere_batch_cli.state.answer_cache import CanonicalFrame

    make = SHAPES[shape]
    frame = CanonicalFrame(make)

    @settings(max_examples=300, deadline=None)
    @given(st.text(st.characters(blacklist_categories=("Cs",))))
    def same(text: str) -> None:
        assert frame(text) == canonical(make(text))

    same()
    for text in ("", '"', "\\", "\n\t\x00\x1f", "\u2028", "🦀", "\x00cbatch: the text\x00"):
        assert frame(text) == canonical(make(text))
