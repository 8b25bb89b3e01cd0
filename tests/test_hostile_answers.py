"""Hostile answers from the service: JSON nested without end, numbers past a double, gzip bombs.

Each command family (get, list, watch, results, create, datasets list) is pointed at a
small misbehaving server (tests/support/fault_server.py) that answers its call with one
of them, and must end the way every unreadable answer ends: one line on stderr naming
what came back, exit 6, asked once (the same answer would come again), never a
traceback or "a bug in cbatch" (exit 1), and memory bounded by the answer limit,
however much the body inflates (docs/reliability.md, "Bounds").
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cohere_batch_cli.api.answer import MAX_ANSWER_BYTES, MAX_DEPTH
from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.api.errors import UnexpectedResponseError
from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY, Cli
from tests.support.fake_api import FakeApi
from tests.support.fault_server import FaultServer, batch_json

JSON = {"Content-Type": "application/json"}


def _deep(levels: int) -> bytes:
    return b'{"batch": ' + b"[" * levels + b"]" * levels + b"}"


def gzip_bomb(inflated: int) -> bytes:
    """A gzip body that inflates to ``inflated`` bytes of spaces, built from one repeated block.

    After a full flush deflate forgets what came before, so each 1 MiB block compresses
    to the same bytes: a gigabyte costs a megabyte on the wire and nothing to build.
    The stream has no trailer: nothing reading within a bound gets that far.
    """
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    megabyte = b" " * (1 << 20)
    head = squeeze.compress(megabyte) + squeeze.flush(zlib.Z_FULL_FLUSH)
    block = squeeze.compress(megabyte) + squeeze.flush(zlib.Z_FULL_FLUSH)
    assert head.endswith(block), "deflate no longer repeats itself after a full flush"
    return head + block * (inflated // len(megabyte) - 1)


HOSTILE: dict[str, tuple[dict[str, str], bytes, str]] = {
    "nested 100,000 deep": (JSON, _deep(100_000), f"JSON nested deeper than {MAX_DEPTH} levels"),
    "nested 65 deep": (JSON, _deep(MAX_DEPTH + 1), f"JSON nested deeper than {MAX_DEPTH} levels"),
    "1e400": (
        JSON,
        b'{"batch": {"id": "b-1", "num_records": 1e400}, "batches": [], "datasets": []}',
        "a number too large to read",
    ),
    "a gzip bomb of 1 GiB": (
        {**JSON, "Content-Encoding": "gzip"},
        gzip_bomb(1 << 30),
        f"a body larger than {MAX_ANSWER_BYTES >> 20} MiB once decompressed",
    ),
    "brotli, never asked for": (
        {**JSON, "Content-Encoding": "br"},
        b"\x1b\x03\x00\xf8\xa5\x5d",
        "a body in the 'br' encoding, which cbatch did not ask for",
    ),
}

VALIDATED = {"dataset": {"id": "ds-1", "name": "in", "validation_status": "validated",
                         "dataset_type": "batch-chat-v2-input", "dataset_parts": []}}  # fmt: skip

COMMANDS: dict[str, tuple[list[str], str]] = {
    "get": (["get", "b-1"], "GET /v2/batches/b-1"),
    "list": (["list"], "GET /v2/batches"),
    "watch": (["watch", "b-1", "--outage-limit", "1s", "--interval", "0.1s"], "GET /v2/batches/b-1"),
    "results": (["results", "b-1"], "GET /v2/batches/b-1"),
    "create": (["create", "--dataset", "ds-1", "--model", "command-r", "--name", "n"], "POST /v2/batches"),
    "datasets list": (["datasets", "list"], "GET /v1/datasets"),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(HOSTILE))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_hostile_answer_is_exit_6_in_one_line_and_asked_once(
    fault_server: FaultServer, command: str, kind: str
) -> None:
    headers, body, says = HOSTILE[kind]
    args, route = COMMANDS[command]
    fault_server.steady[route] = (200, headers, body)
    fault_server.steady["GET /v1/datasets/ds-1"] = (200, {}, VALIDATED)
    fault_server.steady["GET /v2/batches"] = fault_server.steady.get(
        "GET /v2/batches", (200, {}, {"batches": []})
    )
    result = Cli(fault_server.base_url, TEST_KEY)(*args, exit_code=ExitCode.SERVER)
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and f"{route} answered 200 with {says}: refused" in line, (
        result.stderr
    )
    assert "Traceback" not in result.stderr and "bug in cbatch" not in result.stderr
    if command == "create":
        assert "may have been created" in line, "the POST was acted on: only its answer is bad"
    if command != "watch":  # a watch polls on through its outage limit
        assert fault_server.count(route) == 1, "asked again: the same answer would come back"


def test_an_answer_just_within_the_bound_is_read(fault_server: FaultServer) -> None:
    pad = b" " * (MAX_ANSWER_BYTES - 200)
    body = json.dumps({"batch": batch_json()}).encode()
    fault_server.steady["GET /v2/batches/b-1"] = (
        200,
        {**JSON, "Content-Encoding": "gzip"},
        zlib.compress(body + pad[: MAX_ANSWER_BYTES - len(body)], wbits=16 + zlib.MAX_WBITS),
    )
    result = Cli(fault_server.base_url, TEST_KEY)("get", "b-1", "--json")
    assert '"id": "b-1"' in result.stdout


# -- paging: a list that shifts is normal, a list that never ends is not ---------------------------


class ShiftingDatasetsApi(FakeApi):
    """Lists datasets newest first, and another client creates two before every page is read."""

    made = 0
    bursts: list[int] | None = None
    """Datasets created before each page is read (two before every one when None)."""

    def _answer(self, recorded: Any, *, act: bool) -> Any:
        url = urlsplit(recorded.path)
        if recorded.method != "GET" or url.path != "/v1/datasets":
            return super()._answer(recorded, act=act)
        burst = 2 if self.bursts is None else (self.bursts.pop(0) if self.bursts else 0)
        for _ in range(burst):
            self.made += 1
            name = f"other-{self.made:03d}"
            self.datasets[name] = self._dataset(name, "batch-chat-v2-input")
        query = parse_qs(url.query)
        offset = int((query.get("offset") or ["0"])[0])
        limit = int((query.get("limit") or ["100"])[0])
        newest_first = list(self.datasets.values())[::-1]
        return (200, {}, {"datasets": newest_first[offset : offset + limit]})


@pytest.mark.parametrize("page", [100, 3])
def test_a_dataset_list_that_shifts_while_it_is_paged_lists_each_dataset_once(page: int) -> None:
    # Issue 23, case 14: offset paging shifts when other clients create datasets, so a page
    # may hold only datasets listed already; jobs create stopped with "offset was ignored".
    api = ShiftingDatasetsApi().start()
    try:
        for i in range(7):
            api.datasets[f"ds-{i}"] = api._dataset(f"ds-{i}", "batch-chat-v2-input")
        there = set(api.datasets)
        client = CohereClient(TEST_KEY, api.base_url)
        listed = [d.id for d in client.iter_datasets(page_size=page)]
        client.close()
        assert len(listed) == len(set(listed)), "a dataset listed twice"
        assert there <= set(listed), "a dataset that was there all along is missing"
        shown = Cli(api.base_url, TEST_KEY)("datasets", "list", "-q").stdout.split()
        assert len(shown) == len(set(shown)) and there <= set(shown)
    finally:
        api.stop()


def test_a_list_of_one_dataset_that_gains_one_between_its_pages_is_listed_whole() -> None:
    # The second page is the first one again (offset 1 now holds the same dataset): a shift,
    # not a server ignoring offset.
    api = ShiftingDatasetsApi().start()
    try:
        api.datasets.clear()
        api.datasets["only"] = api._dataset("only", "batch-chat-v2-input")
        api.bursts = [0, 1]
        with CohereClient(TEST_KEY, api.base_url) as client:
            # The new one sits before the offset, newest first: made after the listing began.
            assert [d.id for d in client.iter_datasets()] == ["only"]
    finally:
        api.stop()


def test_a_batch_list_that_repeats_its_page_under_fresh_tokens_ends_with_exit_6(
    fault_server: FaultServer,
) -> None:
    # Issue 23, case 19: `list --all` never ended on a server that repeats the same batch
    # under a new page token every time.
    fault_server.plans["GET /v2/batches"] = [
        (200, {}, {"batches": [batch_json("b-1")], "next_page_token": f"t{i}"}) for i in range(5000)
    ]
    result = Cli(fault_server.base_url, TEST_KEY)("list", "--all", "-q", exit_code=ExitCode.SERVER)
    assert result.stdout.split() == ["b-1"]
    assert "the batch list repeated a page under a new page token" in result.stderr
    assert fault_server.count("GET /v2/batches") == 2


class EndlessApi(FakeApi):
    """Invents a page of new batches and of new datasets for every request: a list without end."""

    def _answer(self, recorded: Any, *, act: bool) -> Any:
        url = urlsplit(recorded.path)
        query = parse_qs(url.query)
        if recorded.method == "GET" and url.path == "/v2/batches":
            start = int((query.get("page_token") or ["0"])[0])
            page = [batch_json(f"b-{start + i}") for i in range(3)]
            return (200, {}, {"batches": page, "next_page_token": str(start + 3)})
        if recorded.method == "GET" and url.path == "/v1/datasets":
            offset = int((query.get("offset") or ["0"])[0])
            page = [self._dataset(f"ds-{offset + i}", "x") for i in range(3)]
            return (200, {}, {"datasets": page})
        return super()._answer(recorded, act=act)


def test_a_listing_without_end_stops_at_its_bound() -> None:
    api = EndlessApi().start()
    try:
        with CohereClient(TEST_KEY, api.base_url) as client:
            for listing, what in (
                (client.iter_batches(page_size=3, most=10), "batches"),
                (client.iter_datasets(page_size=3, most=10), "datasets"),
            ):
                got = []
                with pytest.raises(UnexpectedResponseError, match=f"goes on past 10 {what}"):
                    got.extend(listing)
                assert len(got) == 10
    finally:
        api.stop()


def test_a_tokenizer_that_is_a_gzip_bomb_is_refused_at_its_bound(tmp_path: Path) -> None:
    from cohere_batch_cli.tokens.source import MAX_TOKENIZER_BYTES
    from tests.support.flows import chat_records, write_jsonl
    from tests.support.model_server import ModelAPI, TokenizerHost

    path = write_jsonl(tmp_path / "r.jsonl", chat_records(2))
    with TokenizerHost() as storage:
        url = storage.add("t.json", gzip_bomb(1 << 30))
        storage.encodings["t.json"] = "gzip"
        with ModelAPI({"m": {"context_length": 128_000, "tokenizer_url": url}}) as api:
            result = Cli(api.base_url, TEST_KEY)(
                "estimate", str(path), "-m", "m", exit_code=ExitCode.SERVER
            )
    assert (
        f"answered with a body larger than {MAX_TOKENIZER_BYTES >> 20} MiB once decompressed"
        in result.stderr.strip().splitlines()[-1]
    ), result.stderr
    assert len(storage.requests) == 1, "asked again: the same bomb would come back"


def test_a_gzip_body_cut_short_is_a_lost_connection_and_retried(fault_server: FaultServer) -> None:
    whole = zlib.compress(
        json.dumps({"batch": batch_json()}).encode() * 50, wbits=16 + zlib.MAX_WBITS
    )
    fault_server.steady["GET /v2/batches/b-1"] = (
        200, {**JSON, "Content-Encoding": "gzip"}, whole[: len(whole) // 2],
    )  # fmt: skip
    result = Cli(fault_server.base_url, TEST_KEY)(
        "--retries", "1", "get", "b-1", exit_code=ExitCode.NETWORK
    )
    assert "closed the connection mid-answer: a gzip body cut short" in result.stderr
    assert fault_server.count("GET /v2/batches/b-1") == 2
