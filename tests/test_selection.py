"""Choosing the records a retry sends again: the input read fast but exactly, outputs of every
attempt compared, the lines copied byte for byte, in this process or in worker processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cohere_batch_cli.errors import InputRejected, UsageError
from cohere_batch_cli.selection import Rule, error_kind, select
from cohere_batch_cli.selection import scan as scan_module
from cohere_batch_cli.selection.scan import BadLine, line_starts, read_blocks

OUTPUT_SCHEMA = {
    "type": "record",
    "name": "BatchOutputRecord",
    "namespace": "com.cohere.batch",
    "fields": [
        {"name": "custom_id", "type": "string"},
        {"name": "body", "type": ["null", "string"], "default": None},
        {"name": "error", "type": ["null", "string"], "default": None},
    ],
}


def write_part(path: Path, records: list[dict[str, Any]]) -> Path:
    with open(path, "wb") as fh:
        fastavro.writer(fh, fastavro.parse_schema(OUTPUT_SCHEMA), records)
    return path


def ok(cid: str) -> dict[str, Any]:
    return {"custom_id": cid, "body": json.dumps({"text": f"reply {cid}"}), "error": ""}


def failed(cid: str, error: str = "request timed out") -> dict[str, Any]:
    return {"custom_id": cid, "body": None, "error": error}


def request(cid: str, text: str = "hello") -> str:
    return json.dumps({"custom_id": cid, "body": {"messages": [{"role": "user", "content": text}]}})


def ids_of(path: Path) -> list[str]:
    return [json.loads(line)["custom_id"] for line in path.read_text(encoding="utf-8").splitlines()]


# -- reading ids ---------------------------------------------------------------------------------


def all_ids(
    data: bytes, block: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> list[str | None]:
    monkeypatch.setattr(scan_module, "BLOCK_BYTES", block)
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    with open(path, "rb") as fh:
        return [cid for b in read_blocks(fh) for cid in b.ids]


TRICKY = [
    request("plain"),
    json.dumps({"custom_id": "compact", "body": {}}, separators=(",", ":")),
    json.dumps({"body": {}, "custom_id": "second-key"}),
    json.dumps({"custom_id": "nested", "body": {"custom_id": "inner"}}),
    json.dumps({"custom_id": 'quo"ted', "body": {}}),
    json.dumps({"custom_id": "café", "body": {}}),
    json.dumps({"custom_id": "café-utf8", "body": {}}, ensure_ascii=False),
    '{"custom_id": "dup", "custom_\\u0069d": "real"}',
    json.dumps({"custom_id": "a value", "body": {"text": "custom_id"}}),
    "",
    "   ",
]


@pytest.mark.parametrize("block", [16, 64, 4 * 1024 * 1024])
def test_ids_are_what_a_json_parser_reads_whatever_the_line(
    block: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = ("\r\n".join(TRICKY) + "\n").encode("utf-8")
    expected = [json.loads(line)["custom_id"] if line.strip() else None for line in TRICKY]
    assert all_ids(data, block, monkeypatch, tmp_path) == expected
    assert "real" in expected  # the escaped key is the one a parser keeps


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=40, unique=True),
    compact=st.booleans(),
    ascii_only=st.booleans(),
    block=st.integers(min_value=8, max_value=300),
    last_newline=st.booleans(),
)
def test_fast_and_parsed_reads_agree(
    ids: list[str], compact: bool, ascii_only: bool, block: int, last_newline: bool
) -> None:
    import tempfile

    separators = (",", ":") if compact else (", ", ": ")
    lines = [
        json.dumps(
            {"custom_id": cid, "body": {"n": i}}, separators=separators, ensure_ascii=ascii_only
        )
        for i, cid in enumerate(ids)
    ]
    data = ("\n".join(lines) + ("\n" if last_newline else "")).encode("utf-8")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.jsonl"
        path.write_bytes(data)
        old = scan_module.BLOCK_BYTES
        scan_module.BLOCK_BYTES = block
        try:
            with open(path, "rb") as fh:
                blocks = list(read_blocks(fh))
        finally:
            scan_module.BLOCK_BYTES = old
    assert [cid for b in blocks for cid in b.ids] == ids
    assert b"\n".join(line for b in blocks for line in b.lines) == data.rstrip(b"\n")


def test_a_byte_order_mark_is_not_part_of_the_first_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert all_ids(
        b"\xef\xbb\xbf" + request("a").encode() + b"\n" + request("b").encode(),
        4096,
        monkeypatch,
        tmp_path,
    ) == ["a", "b"]


def test_a_line_without_an_id_is_reported_where_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(request("a") + "\n" + '{"body": {}}\n')
    with open(path, "rb") as fh, pytest.raises(BadLine) as caught:
        list(read_blocks(fh))
    assert caught.value.offset == len(request("a")) + 1


def test_runs_of_whole_lines_cover_the_file_once(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(request(f"r{i}", "x" * i) + "\n" for i in range(200)))
    size = path.stat().st_size
    with open(path, "rb") as fh:
        starts = line_starts(fh, size, 7)
        assert len(starts) == 7 and starts[0] == 0
        runs = [
            list(read_blocks(fh, a, b)) for a, b in zip(starts, [*starts[1:], size], strict=True)
        ]
    assert [cid for run in runs for block in run for cid in block.ids] == [
        f"r{i}" for i in range(200)
    ]


# -- selecting -----------------------------------------------------------------------------------


@pytest.fixture
def batch(tmp_path: Path) -> dict[str, Any]:
    """Ten requests: r0-r5 succeeded, r6 and r7 failed (two kinds), r8 and r9 have no result."""
    source = tmp_path / "requests.jsonl"
    source.write_text("".join(request(f"r{i}", f"question {i}") + "\n" for i in range(10)))
    out = tmp_path / "out"
    out.mkdir()
    parts = [
        write_part(
            out / "p0.avro",
            [
                ok("r3"),
                failed("r7", "internal server error, id 1f2e3d4c-0000-4000-8000-123456789abc"),
                ok("r0"),
            ],
        ),
        write_part(
            out / "p1.avro",
            [ok("r1"), failed("r6", "request timed out"), ok("r5"), ok("r2"), ok("r4")],
        ),
    ]
    work = tmp_path / "work"
    work.mkdir()
    return {"input": source, "parts": parts, "work": work, "dest": tmp_path / "retry.jsonl"}


def test_every_failure_and_every_missing_record_by_default(batch: dict[str, Any]) -> None:
    why = batch["work"] / "why.jsonl"
    found = select(batch["input"], [batch["parts"]], batch["dest"], batch["work"], listing=why)
    assert ids_of(batch["dest"]) == ["r6", "r7", "r8", "r9"]  # input order
    originals = batch["input"].read_text().splitlines()
    assert batch["dest"].read_text().splitlines() == [
        originals[i] for i in (6, 7, 8, 9)
    ]  # byte for byte
    assert (found.records, found.failed, found.missing, found.succeeded, found.results) == (
        4,
        2,
        2,
        6,
        8,
    )
    assert found.still_failing == 4
    assert sorted(found.errors) == [("internal server error, id …", 1), ("request timed out", 1)]
    reasons = [json.loads(line) for line in why.read_text().splitlines()]
    assert [(r["custom_id"], r["reason"]) for r in reasons] == [
        ("r6", "failed"),
        ("r7", "failed"),
        ("r8", "missing"),
        ("r9", "missing"),
    ]
    assert reasons[0]["error"] == "request timed out" and reasons[2]["error"] is None
    assert list(batch["work"].iterdir()) == [why], (
        "the scratch database and the runs' files are gone"
    )


def test_a_pattern_picks_failures_by_their_text_and_missing_ones_can_be_left(
    batch: dict[str, Any],
) -> None:
    found = select(
        batch["input"],
        [batch["parts"]],
        batch["dest"],
        batch["work"],
        Rule(pattern="timed out", missing=False),
    )
    assert ids_of(batch["dest"]) == ["r6"]
    assert (found.records, found.left_failing, found.left_missing, found.still_failing) == (
        1,
        1,
        2,
        4,
    )


def test_a_bad_pattern_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not a regular expression"):
        Rule(pattern="(")


def test_the_latest_attempt_decides_and_a_success_anywhere_wins(
    batch: dict[str, Any], tmp_path: Path
) -> None:
    second = write_part(
        tmp_path / "out" / "a2.avro",
        [ok("r6"), failed("r7", "request timed out"), failed("r8", "invalid request")],
    )
    found = select(
        batch["input"],
        [batch["parts"], [second]],
        batch["dest"],
        batch["work"],
        Rule(pattern="timed out"),
    )
    # r6 succeeded at attempt 2; r7's latest failure matches; r8's latest does not; r9 never came back
    assert ids_of(batch["dest"]) == ["r7", "r9"]
    assert (found.failed, found.missing, found.left_failing, found.succeeded) == (1, 1, 1, 7)


def test_nothing_to_send_when_everything_succeeded(batch: dict[str, Any], tmp_path: Path) -> None:
    second = write_part(tmp_path / "out" / "a2.avro", [ok("r6"), ok("r7"), ok("r8"), ok("r9")])
    found = select(batch["input"], [batch["parts"], [second]], batch["dest"], batch["work"])
    assert found.records == 0 and found.still_failing == 0
    assert batch["dest"].read_bytes() == b""


def test_an_input_with_no_result_at_all_is_not_this_batch_s(
    batch: dict[str, Any], tmp_path: Path
) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text("".join(request(f"x{i}") + "\n" for i in range(3)))
    with pytest.raises(InputRejected, match=r"none of the 3 records .* has a result"):
        select(other, [batch["parts"]], batch["dest"], batch["work"])


def test_an_input_line_without_a_custom_id_is_refused_with_its_number(
    batch: dict[str, Any],
) -> None:
    with open(batch["input"], "a") as fh:
        fh.write('{"body": {}}\n')
    with pytest.raises(InputRejected, match=r"requests.jsonl:11: it has no custom_id"):
        select(batch["input"], [batch["parts"]], batch["dest"], batch["work"])


def test_worker_processes_write_the_same_file(tmp_path: Path) -> None:
    source = tmp_path / "requests.jsonl"
    source.write_text("".join(request(f"r{i:04d}", "x" * (i % 50)) + "\n" for i in range(3000)))
    out = tmp_path / "out"
    out.mkdir()
    parts = [
        write_part(
            out / f"p{k}.avro",
            [
                ok(f"r{i:04d}") if i % 7 else failed(f"r{i:04d}")
                for i in range(k, 3000, 4)
                if i % 11
            ],
        )
        for k in range(4)
    ]
    results = []
    for processes in (0, 2):
        work = tmp_path / f"work{processes}"
        work.mkdir()
        dest = tmp_path / f"retry{processes}.jsonl"
        found = select(source, [parts], dest, work, processes=processes)
        results.append((dest.read_bytes(), found.records, found.failed, found.missing))
    assert results[0] == results[1]
    assert results[0][1] == sum(1 for i in range(3000) if i % 7 == 0 or i % 11 == 0)


def test_error_kinds_leave_numbers_and_ids_out() -> None:
    assert error_kind(
        "too many tokens: size limit exceeded by 1234 tokens. The limit is 4,096 tokens."
    ) == ("too many tokens: size limit exceeded by … tokens. The limit is … tokens.")
