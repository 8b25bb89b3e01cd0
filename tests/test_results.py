"""Results download against a real (misbehaving) part server on loopback; httpx is never patched."""

from __future__ import annotations

import csv
import io
import json
import signal
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import httpx
import pytest

from cohere_batch_cli.api.models import DatasetPart
from cohere_batch_cli.output.progress import NullProgress
from cohere_batch_cli.results import (
    ResultsError,
    ResultsSummary,
    TableOptions,
    decode_body,
    download_results,
    jsonl_record,
    reply_text,
)
from cohere_batch_cli.results.columns import Layout, Record, table_columns
from cohere_batch_cli.validate import InputFileError
from tests.support.part_server import DROP, ERROR, FORBID, LIMIT, SLOW, STALL, PartServer

CHAT_COLUMNS = (
    "custom_id",
    "status",
    "error",
    "text",
    "finish_reason",
    "input_tokens",
    "output_tokens",
    "tool_calls",
)

STRING_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "BatchOutputRecord",
        "fields": [
            {"name": "custom_id", "type": "string"},
            {"name": "body", "type": ["null", "string"], "default": None},
            {"name": "error", "type": ["null", "string"], "default": None},
        ],
    }
)
NESTED_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "NestedOutputRecord",
        "fields": [
            {"name": "custom_id", "type": "string"},
            {
                "name": "body",
                "type": [
                    "null",
                    {
                        "type": "record",
                        "name": "EmbedBody",
                        "fields": [
                            {"name": "id", "type": "string"},
                            {
                                "name": "embeddings",
                                "type": {
                                    "type": "map",
                                    "values": {"type": "array", "items": "double"},
                                },
                            },
                        ],
                    },
                ],
                "default": None,
            },
            {"name": "error", "type": ["null", "string"], "default": None},
        ],
    }
)


def chat_body(text: str) -> dict[str, Any]:
    return {
        "id": "resp",
        "message": {
            "role": "assistant",
            "content": [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": text}],
        },
        "finish_reason": "COMPLETE",
        "usage": {
            "billed_units": {"input_tokens": 5, "output_tokens": 2},
            "tokens": {"input_tokens": 9, "output_tokens": 2},
        },
    }


def records(prefix: str, n: int, fail_every: int = 4) -> list[dict[str, Any]]:
    """Chat records with a JSON-string body; every ``fail_every``-th one failed."""
    out = []
    for i in range(n):
        cid = f"{prefix}-{i:04d}"
        if fail_every and i % fail_every == fail_every - 1:
            out.append({"custom_id": cid, "body": None, "error": f"failed {cid}"})
        else:
            out.append(
                {"custom_id": cid, "body": json.dumps(chat_body(f"reply to {cid}")), "error": None}
            )
    return out


def avro_bytes(recs: list[dict[str, Any]], schema: Any = STRING_SCHEMA) -> bytes:
    buf = io.BytesIO()
    fastavro.writer(buf, schema, recs)
    return buf.getvalue()


@pytest.fixture
def server() -> Iterator[PartServer]:
    with PartServer() as srv:
        yield srv


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def serve_parts(
    server: PartServer,
    per_part: list[list[dict[str, Any]]],
    plans: dict[int, list[str]] | None = None,
) -> list[DatasetPart]:
    """Serve each list of records as one part; parts are returned shuffled to prove ordering by index."""
    parts = []
    for index, recs in enumerate(per_part):
        data = avro_bytes(recs)
        url = server.add(f"part-{index}.avro", data, (plans or {}).get(index))
        parts.append(
            DatasetPart(
                {
                    "id": f"p{index}",
                    "name": f"part-{index}",
                    "index": index,
                    "url": url,
                    "size_bytes": len(data),
                    "num_rows": len(recs),
                }
            )
        )
    return parts[1::2] + parts[0::2]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def leftovers(directory: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


# --------------------------------------------------------------------------- order and shapes


def test_every_custom_id_once_and_in_order_across_concurrent_parts(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    per_part = [records(f"p{i}", 40 + i) for i in range(6)]
    # The first parts are slow, so later parts finish first: order must still hold.
    server.slow_delay = 0.02
    parts = serve_parts(server, per_part, plans={0: [SLOW], 1: [SLOW]})
    out = tmp_path / "results.jsonl"
    summary = download_results(
        parts, out, http=http, concurrency=4, expected_records=sum(map(len, per_part))
    )
    got = [r["custom_id"] for r in read_jsonl(out)]
    assert got == [r["custom_id"] for recs in per_part for r in recs]
    failed = sum(1 for recs in per_part for r in recs if r["error"])
    assert summary == ResultsSummary(
        written=len(got),
        records_total=len(got),
        failed=failed,
        succeeded=len(got) - failed,
        count_mismatch=None,
    )
    assert leftovers(tmp_path, {"results.jsonl"}) == []


def test_jsonl_has_custom_id_first_and_a_decoded_body(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    parts = serve_parts(server, [records("a", 4)])
    out = tmp_path / "r.jsonl"
    download_results(parts, out, http=http)
    lines = out.read_text().splitlines()
    assert all(line.startswith('{"custom_id":') for line in lines)
    first, failed = json.loads(lines[0]), json.loads(lines[3])
    assert list(first) == ["custom_id", "body"]
    assert (
        first["body"]["message"]["content"][1]["text"] == "reply to a-0000"
    )  # real JSON, not a string
    assert failed == {"custom_id": "a-0003", "error": "failed a-0003"}


def test_a_nested_record_body_is_written_as_json(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    recs = [
        {
            "custom_id": "e1",
            "body": {"id": "x", "embeddings": {"float": [0.5, -0.25]}},
            "error": None,
        },
        {"custom_id": "e2", "body": None, "error": "too long"},
    ]
    data = avro_bytes(recs, NESTED_SCHEMA)
    part = DatasetPart({"index": 0, "url": server.add("nested.avro", data)})
    out = tmp_path / "r.csv"
    download_results([part], out, fmt="csv", http=http, table=TableOptions(body=True))
    rows = read_csv(out)
    assert rows[0]["status"] == "succeeded" and "text" not in rows[0]  # embed output: no reply text
    assert json.loads(rows[0]["embeddings_float"]) == [0.5, -0.25]
    assert json.loads(rows[0]["body"]) == {"id": "x", "embeddings": {"float": [0.5, -0.25]}}
    assert (
        rows[1]["status"] == "failed" and rows[1]["error"] == "too long" and rows[1]["body"] == ""
    )


def test_csv_of_chat_output_has_the_chat_columns(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    parts = serve_parts(server, [records("c", 4)])
    out = tmp_path / "r.csv"
    download_results(parts, out, fmt="csv", http=http, table=TableOptions(body=True))
    with out.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = [dict(zip(header, row, strict=True)) for row in reader]
    assert tuple(header) == (*CHAT_COLUMNS, "body")
    ok = rows[0]
    assert ok["custom_id"] == "c-0000" and ok["status"] == "succeeded" and ok["error"] == ""
    assert ok["text"] == "reply to c-0000"  # thinking left out
    assert (ok["finish_reason"], ok["input_tokens"], ok["output_tokens"]) == ("COMPLETE", "5", "2")
    assert json.loads(ok["body"]) == chat_body("reply to c-0000")
    assert (
        rows[3]["status"] == "failed"
        and rows[3]["error"] == "failed c-0003"
        and rows[3]["text"] == ""
    )


def test_failed_only_keeps_only_errors_but_counts_everything(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    parts = serve_parts(server, [records("f", 8), records("g", 8)])
    out = tmp_path / "failed.jsonl"
    summary = download_results(parts, out, http=http, failed_only=True, expected_records=16)
    got = read_jsonl(out)
    assert [r["custom_id"] for r in got] == ["f-0003", "f-0007", "g-0003", "g-0007"]
    assert all("error" in r and "body" not in r for r in got)
    assert (summary.written, summary.records_total, summary.failed, summary.succeeded) == (
        4,
        16,
        4,
        12,
    )
    assert summary.count_mismatch is None


def test_join_puts_each_request_beside_its_result(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    recs = records("j", 6)
    requests = tmp_path / "requests.jsonl"
    lines = [
        {
            "custom_id": r["custom_id"],
            "body": {"messages": [{"role": "user", "content": f"ask {r['custom_id']}"}]},
        }
        for r in recs
    ]
    lines = list(reversed(lines))[:-1]  # input order differs, and j-0000 has no request
    requests.write_text(
        "\ufeff" + "\r\n".join(json.dumps(line) for line in lines) + "\r\nnot json\r\n",
        encoding="utf-8",
    )
    parts = serve_parts(server, [recs[:3], recs[3:]])
    out = tmp_path / "joined.jsonl"
    download_results(parts, out, http=http, join=requests)
    got = read_jsonl(out)
    assert [list(r) for r in got] == [["custom_id", "request", "response", "error"]] * 6
    assert got[0]["request"] is None
    assert got[1]["request"] == {"messages": [{"role": "user", "content": "ask j-0001"}]}
    assert got[1]["response"]["finish_reason"] == "COMPLETE" and got[1]["error"] is None
    assert got[3]["response"] is None and got[3]["error"] == "failed j-0003"
    assert got[3]["request"]["messages"][0]["content"] == "ask j-0003"

    csv_out = tmp_path / "joined.csv"
    download_results(parts, csv_out, fmt="csv", http=http, join=requests)
    rows = read_csv(csv_out)
    assert list(rows[0]) == [*CHAT_COLUMNS, "request"]
    assert (
        rows[0]["request"] == ""
        and json.loads(rows[2]["request"])["messages"][0]["content"] == "ask j-0002"
    )


def test_a_missing_join_file_is_an_input_file_error(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    parts = serve_parts(server, [records("x", 2)])
    with pytest.raises(InputFileError):
        download_results(parts, tmp_path / "r.jsonl", http=http, join=tmp_path / "nope.jsonl")
    assert server.requests == []


def test_stdout_is_streamed_when_there_is_no_destination(
    server: PartServer,
    http: httpx.Client,
    capfdbinary: pytest.CaptureFixture[bytes],
    tmp_path: Path,
) -> None:
    parts = serve_parts(server, [records("s", 3)])
    from cohere_batch_cli.output.core import Output

    download_results(parts, None, http=http, stdout=Output().binary)
    out = capfdbinary.readouterr().out.decode().splitlines()
    assert [json.loads(line)["custom_id"] for line in out] == ["s-0000", "s-0001", "s-0002"]


# --------------------------------------------------------------------------- faults


def test_no_authorization_header_reaches_storage(server: PartServer, tmp_path: Path) -> None:
    parts = serve_parts(server, [records("k", 3), records("l", 3)], plans={0: [ERROR]})
    with httpx.Client() as client:
        download_results(parts, tmp_path / "r.jsonl", http=client)
    assert len(server.requests) == 3
    assert all("authorization" not in {k.lower() for k in r.headers} for r in server.requests)


def test_a_500_then_success_is_retried(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    per_part = [records("r", 5), records("s", 5)]
    parts = serve_parts(server, per_part, plans={1: [ERROR, ERROR]})
    out = tmp_path / "r.jsonl"
    download_results(parts, out, http=http)
    assert [r.step for r in server.requests_for("part-1.avro")] == ["error", "error", "ok"]
    assert len(read_jsonl(out)) == 10


def test_a_throttled_part_waits_as_long_as_retry_after_says(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    # CBATCH_RETRY_BASE is 0.01 in tests: only the server's Retry-After can explain a 1 s pause.
    parts = serve_parts(server, [records("h", 5)], plans={0: [LIMIT]})
    out = tmp_path / "r.jsonl"
    download_results(parts, out, http=http)
    throttled, served = server.requests_for("part-0.avro")
    assert (throttled.step, served.step) == ("limit", "ok")
    assert served.at - throttled.at >= 0.95
    assert len(read_jsonl(out)) == 5


def test_a_retry_after_longer_than_the_bound_fails_at_once_and_says_so(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    server.retry_after = "3600"
    parts = serve_parts(server, [records("u", 5)], plans={0: [LIMIT]})
    started = time.monotonic()
    with pytest.raises(ResultsError) as caught:
        download_results(parts, tmp_path / "r.jsonl", http=http)
    assert time.monotonic() - started < 5  # bounded: never an hour's sleep
    assert (
        "429" in str(caught.value)
        and "3600 s" in str(caught.value)
        and "after 1 attempt:" in str(caught.value)
    )
    assert len(server.requests_for("part-0.avro")) == 1
    assert leftovers(tmp_path, set()) == []


def test_a_dropped_connection_resumes_with_a_range(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    big = records("d", 3000, fail_every=0)  # a part large enough to arrive in several reads
    parts = serve_parts(server, [big], plans={0: [DROP]})
    out = tmp_path / "r.jsonl"
    download_results(parts, out, http=http)
    seen = server.requests_for("part-0.avro")
    assert [r.step for r in seen] == ["drop", "ok"]
    assert seen[1].headers.get("Range", "").startswith("bytes=") and seen[1].headers.get("If-Range")
    assert [r["custom_id"] for r in read_jsonl(out)] == [r["custom_id"] for r in big]


def test_a_stall_counts_as_a_failure_and_is_retried(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    parts = serve_parts(server, [records("t", 200)], plans={0: [STALL]})
    out = tmp_path / "r.jsonl"
    download_results(parts, out, http=http, stall_timeout=0.3)
    assert [r.step for r in server.requests_for("part-0.avro")] == ["stall", "ok"]
    assert len(read_jsonl(out)) == 200


def test_a_slow_server_is_waited_for(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    server.slow_delay, server.slow_pieces = 0.05, 6
    parts = serve_parts(server, [records("w", 50), records("v", 50)], plans={0: [SLOW], 1: [SLOW]})
    out = tmp_path / "r.jsonl"
    download_results(parts, out, http=http, stall_timeout=1.0)
    assert len(read_jsonl(out)) == 100


def test_a_part_that_always_fails_leaves_no_file_and_a_rerun_is_identical(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    per_part = [records(f"i{i}", 30) for i in range(4)]
    parts = serve_parts(server, per_part, plans={2: [ERROR] * 5})
    out = tmp_path / "r.jsonl"
    with pytest.raises(ResultsError) as caught:
        download_results(parts, out, http=http)
    message = str(caught.value)
    assert "part 2" in message and "500" in message and "5 attempts" in message
    assert "SECRET" not in message and "X-Signature" not in message  # the signed query stays out
    assert leftovers(tmp_path, set()) == []  # no final file, no .part- file, no part directory

    download_results(parts, out, http=http)  # the plan is spent: the link works now
    first = out.read_bytes()
    (tmp_path / "again.jsonl").write_bytes(b"")
    download_results(parts, tmp_path / "again.jsonl", http=http)
    assert (tmp_path / "again.jsonl").read_bytes() == first
    assert leftovers(tmp_path, {"r.jsonl", "again.jsonl"}) == []


def test_an_interrupt_while_writing_leaves_no_file(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    class Interrupting(NullProgress):
        def advance(self, bytes: int = 0, records: int = 0) -> None:
            if records:
                raise KeyboardInterrupt

    parts = serve_parts(server, [records("z", 1500), records("y", 1500)])
    out = tmp_path / "r.jsonl"
    out.write_text("previous run\n")
    with pytest.raises(KeyboardInterrupt):
        download_results(parts, out, http=http, progress=Interrupting())
    assert out.read_text() == "previous run\n"  # the old file untouched, no half file in its place
    assert leftovers(tmp_path, {"r.jsonl"}) == []


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_ctrl_c_while_a_part_stalls_returns_at_once_and_leaves_nothing(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    parts = serve_parts(server, [records("c", 50), records("d", 50)], plans={0: [STALL]})
    out = tmp_path / "r.jsonl"
    timer = threading.Timer(
        0.3, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT)
    )
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            download_results(parts, out, http=http, stall_timeout=30)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 5  # not the 30 s stall timeout
    assert leftovers(tmp_path, set()) == []


def test_an_expired_link_fails_at_once_with_a_hint(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    parts = serve_parts(server, [records("e", 2)], plans={0: [FORBID]})
    with pytest.raises(ResultsError, match="expired"):
        download_results(parts, tmp_path / "r.jsonl", http=http)
    assert len(server.requests) == 1


def test_a_part_without_a_link_is_refused_before_any_download(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    with pytest.raises(ResultsError, match="no download link"):
        download_results([DatasetPart({"index": 0, "name": "p"})], tmp_path / "r.jsonl", http=http)


def test_a_corrupt_part_is_a_results_error(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    part = DatasetPart({"index": 0, "url": server.add("bad.avro", b"this is not avro at all")})
    with pytest.raises(ResultsError, match="not a readable Avro file"):
        download_results([part], tmp_path / "r.jsonl", http=http)
    assert leftovers(tmp_path, set()) == []


def test_a_directory_destination_is_refused(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    parts = serve_parts(server, [records("q", 2)])
    with pytest.raises(InputFileError, match="is a directory"):
        download_results(parts, tmp_path, http=http)
    with pytest.raises(InputFileError, match="does not exist"):
        download_results(parts, tmp_path / "no" / "r.jsonl", http=http)


def test_a_count_mismatch_is_reported(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    parts = serve_parts(server, [records("m", 5)])
    summary = download_results(parts, tmp_path / "r.jsonl", http=http, expected_records=7)
    assert summary.count_mismatch == (
        "counts do not add up: the batch reports 7 records, its output holds 5: 2 records have no result "
        "(--join with the batch's input file names them)"
    )
    summary = download_results(parts, tmp_path / "r.jsonl", http=http, expected_records=4)
    assert (
        summary.count_mismatch is not None
        and "1 more than the batch reports" in summary.count_mismatch
    )


def test_progress_sees_bytes_and_records(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    class Recording:
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.calls: list[tuple[str, Any]] = []
            self.bytes = self.records = 0

        def start(self, total_bytes: int | None = None, total_records: int | None = None) -> None:
            self.calls.append(("start", (total_bytes, total_records)))

        def advance(self, bytes: int = 0, records: int = 0) -> None:
            with self.lock:
                self.bytes += bytes
                self.records += records

        def finish(self) -> None:
            self.calls.append(("finish", None))

    parts = serve_parts(server, [records("p", 1200), records("o", 300)])
    sink = Recording()
    download_results(parts, tmp_path / "r.jsonl", http=http, progress=sink, expected_records=1500)
    total = sum(p.size_bytes or 0 for p in parts)
    assert sink.calls == [("start", (total, 1500)), ("finish", None)]
    assert (sink.bytes, sink.records) == (total, 1500)


# --------------------------------------------------------------------------- memory


def test_memory_stays_flat_for_a_large_output(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    """About 20 MB of JSONL through four parts; the traced peak stays a small fraction of it.

    Records carry 600-byte replies so the output is large while the record count (and
    tracemalloc's per-allocation cost) stays low enough for a quick test.
    """
    reply = json.dumps({"id": "x", "text": "a fairly long reply " * 30})
    per_part = [
        [{"custom_id": f"m{p}-{i:06d}", "body": reply, "error": None} for i in range(8_000)]
        for p in range(4)
    ]
    parts = serve_parts(server, per_part)
    del per_part
    out = tmp_path / "big.jsonl"
    tracemalloc.start()
    try:
        summary = download_results(parts, out, http=http)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = out.stat().st_size
    assert summary.written == 32_000
    assert size > 18_000_000
    assert peak < 3_000_000, f"peak {peak:,} bytes for {size:,} bytes of output"


# --------------------------------------------------------------------------- pure shapes


def test_body_decoding_is_tolerant() -> None:
    assert decode_body('{"a": 1}') == {"a": 1}
    assert decode_body(b"[1, 2]") == [1, 2]
    assert decode_body("plain words") == "plain words"
    assert decode_body("{not json") == "{not json"
    assert decode_body({"nested": True}) == {"nested": True}
    assert decode_body(None) is None


def test_unknown_avro_fields_follow_the_known_ones() -> None:
    shaped = jsonl_record({"error": None, "extra": 3, "body": '{"x":1}', "custom_id": "c"})
    assert list(shaped) == ["custom_id", "body", "extra"]


def test_reply_text_reads_v2_v1_and_openai_shapes() -> None:
    assert (
        reply_text(
            {"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}
        )
        == "ab"
    )
    assert reply_text({"message": {"content": "plain"}}) == "plain"
    assert reply_text({"text": "v1"}) == "v1"
    assert reply_text({"choices": [{"message": {"content": "oa"}}]}) == "oa"
    assert reply_text({"embeddings": {"float": [[0.1]]}}) == ""


def test_the_embed_columns_read_meta_billed_units() -> None:
    record = Record(
        {
            "custom_id": "e",
            "body": json.dumps(
                {
                    "id": "i",
                    "embeddings": {"float": [[1.0]]},
                    "meta": {"billed_units": {"input_tokens": 4}},
                }
            ),
            "error": None,
        }
    )
    columns = table_columns(Layout("embed", ("float",)), TableOptions(), joined=False)
    row = {c.name: c.get(record) for c in columns}
    assert row == {
        "custom_id": "e",
        "status": "succeeded",
        "error": None,
        "input_tokens": 4,
        "embeddings_float": [[1.0]],
    }
