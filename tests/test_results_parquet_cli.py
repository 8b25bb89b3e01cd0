"""Parquet and CSV results through the installed ``cbatch``, read back as a user would: pyarrow, DuckDB.

Batches run in the real sandbox; a signal test uses the fake API and the misbehaving part
server; the missing extra is proven in-process (pyarrow made unimportable the way Python
itself allows, ``sys.modules[name] = None``) and, in a fresh venv without it, by
tests/test_packaging.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.api.models import Batch
from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY, Cli
from tests.support.fake_api import FakeApi, avro_part
from tests.support.flows import FAIL, chat_records, make_dataset, wait_terminal, write_jsonl
from tests.support.installed import cbatch_env, cbatch_path, run_cbatch
from tests.support.part_server import SLOW, PartServer

EMBED_MODEL = "embed-english-light-v3.0"
DIMENSION = 384  # the sandbox's, as Cohere publishes it for this model


def embed_requests(count: int) -> list[dict[str, Any]]:
    return [
        {"custom_id": f"e-{i}", "body": {"texts": [f"text {i}", f"more {i}", f"and {i}"][: 1 + i % 3],
                                          "input_type": "search_document", "embedding_types": ["float", "int8", "ubinary"]}}
        for i in range(count)
    ] + [{"custom_id": "e-fails", "body": {"texts": [f"{FAIL} no"], "input_type": "search_document"}}]  # fmt: skip


def run_batch(
    sandbox: Any, tmp_path: Path, records: list[dict[str, Any]], dataset_type: str, model: str
) -> Batch:
    client = CohereClient(TEST_KEY, sandbox.base_url)
    try:
        path = write_jsonl(tmp_path / f"{dataset_type}.jsonl", records)
        dataset_id = make_dataset(client, path, dataset_type)
        batch = client.create_batch(name="tables", input_dataset_id=dataset_id, model=model)
        return wait_terminal(client, batch.id)
    finally:
        client.close()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def batches(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Batch]:
    tmp = tmp_path_factory.mktemp("batches")
    return {
        "chat": run_batch(
            sandbox, tmp, chat_records(30, fail={4, 9}), "batch-chat-v2-input", "command-r"
        ),
        "embed": run_batch(sandbox, tmp, embed_requests(40), "batch-embed-v2-input", EMBED_MODEL),
    }


# --------------------------------------------------------------------------- written and read back


def test_chat_results_as_parquet_and_csv_hold_every_record_with_its_type(
    sandbox: Any, batches: dict[str, Batch], tmp_path: Path
) -> None:
    batch = batches["chat"]
    said = ok(run_cbatch(sandbox.base_url, ["results", batch.id, "-o", "chat.parquet"], tmp_path))
    assert "wrote 30 records to chat.parquet (28 succeeded, 2 failed)" in said
    ok(run_cbatch(sandbox.base_url, ["results", batch.id, "-o", "chat.csv"], tmp_path))
    ok(run_cbatch(sandbox.base_url, ["results", batch.id, "-o", "chat.jsonl"], tmp_path))

    table = pq.read_table(tmp_path / "chat.parquet")
    assert [(f.name, f.type) for f in table.schema] == [
        ("custom_id", pa.string()), ("status", pa.string()), ("error", pa.string()), ("text", pa.string()),
        ("finish_reason", pa.string()), ("input_tokens", pa.int64()), ("output_tokens", pa.int64()),
        ("tool_calls", pa.string()),
    ]  # fmt: skip
    rows = {r["custom_id"]: r for r in table.to_pylist()}
    lines = {
        r["custom_id"]: r
        for r in map(json.loads, (tmp_path / "chat.jsonl").read_text().splitlines())
    }
    assert rows.keys() == lines.keys() == {f"r-{i}" for i in range(30)} and table.num_rows == 30
    for cid, line in lines.items():
        row = rows[cid]
        if "error" in line:
            assert (row["status"], row["error"], row["text"]) == ("failed", line["error"], None)
        else:
            body = line["body"]
            assert row["status"] == "succeeded" and row["error"] is None
            assert row["text"] == body["message"]["content"][0]["text"]
            assert (row["input_tokens"], row["output_tokens"]) == (
                body["usage"]["billed_units"]["input_tokens"],
                body["usage"]["billed_units"]["output_tokens"],
            )
    assert {r["status"] for r in rows.values() if r["error"]} == {"failed"}
    assert sum(r["input_tokens"] or 0 for r in rows.values()) == int(batch.raw["input_tokens"])

    csv_rows = duckdb.sql(
        f"SELECT * FROM read_csv('{tmp_path / 'chat.csv'}', all_varchar=true) ORDER BY custom_id"
    ).fetchall()
    typed = sorted((r["custom_id"], r["text"] or None) for r in rows.values())
    assert [(r[0], r[3]) for r in csv_rows] == typed


def test_embed_results_are_vectors_of_the_models_dimension_and_duckdb_queries_them(
    sandbox: Any, batches: dict[str, Batch], tmp_path: Path
) -> None:
    batch = batches["embed"]
    said = ok(run_cbatch(sandbox.base_url, ["results", batch.id, "--format", "parquet", "-o", "embed.parquet",
                                            "--column", "texts=body.texts"], tmp_path))  # fmt: skip
    assert "wrote 41 records to embed.parquet (40 succeeded, 1 failed)" in said
    ok(run_cbatch(sandbox.base_url, ["results", batch.id, "-o", "embed.jsonl"], tmp_path))
    table = pq.read_table(tmp_path / "embed.parquet")
    assert table.schema.field("embeddings_float").type == pa.list_(pa.list_(pa.float32()))
    assert table.schema.field("embeddings_int8").type == pa.list_(pa.list_(pa.int8()))
    assert table.schema.field("embeddings_ubinary").type == pa.list_(pa.list_(pa.uint8()))
    assert table.schema.field("texts").type == pa.list_(pa.string())

    lines = {
        r["custom_id"]: r
        for r in map(json.loads, (tmp_path / "embed.jsonl").read_text().splitlines())
    }
    rows = {r["custom_id"]: r for r in table.to_pylist()}
    assert rows.keys() == lines.keys()
    for cid, row in rows.items():
        if cid == "e-fails":
            assert row["status"] == "failed" and row["embeddings_float"] is None
            continue
        embeddings = lines[cid]["body"]["embeddings"]
        assert (
            row["embeddings_int8"] == embeddings["int8"]
            and row["embeddings_ubinary"] == embeddings["ubinary"]
        )
        expected = pa.array(
            [embeddings["float"]], type=pa.list_(pa.list_(pa.float32()))
        ).to_pylist()[0]
        assert row["embeddings_float"] == expected  # the float32 of each value the API sent
        assert row["texts"] == lines[cid]["body"]["texts"]

    ok(run_cbatch(sandbox.base_url, ["results", batch.id, "-o", "embed.csv"], tmp_path))
    csv_path = tmp_path / "embed.csv"
    header = duckdb.sql(f"SELECT * FROM read_csv('{csv_path}', all_varchar=true) LIMIT 0").columns
    assert header == [
        "custom_id",
        "status",
        "error",
        "input_tokens",
        "embeddings_float",
        "embeddings_int8",
        "embeddings_ubinary",
    ]
    cells = dict(
        duckdb.sql(
            f"SELECT custom_id, embeddings_int8 FROM read_csv('{csv_path}', all_varchar=true)"
        ).fetchall()
    )
    assert cells.keys() == rows.keys() and cells["e-fails"] is None
    assert all(
        json.loads(cells[cid]) == lines[cid]["body"]["embeddings"]["int8"]
        for cid in cells
        if cid != "e-fails"
    )

    path = tmp_path / "embed.parquet"
    per_status = duckdb.sql(
        f"SELECT status, count(*) FROM '{path}' GROUP BY status ORDER BY status"
    ).fetchall()
    assert per_status == [("failed", 1), ("succeeded", 40)]
    shapes = duckdb.sql(
        f"SELECT custom_id, len(embeddings_float), len(embeddings_float[1]), len(embeddings_ubinary[1]) "
        f"FROM '{path}' WHERE status = 'succeeded' ORDER BY custom_id"
    ).fetchall()
    assert {(n, dim, packed) for _, n, dim, packed in shapes} <= {
        (k, DIMENSION, DIMENSION // 8) for k in (1, 2, 3)
    }
    assert {cid: n for cid, n, _, _ in shapes} == {f"e-{i}": 1 + i % 3 for i in range(40)}
    assert duckdb.sql(
        f"SELECT typeof(embeddings_float[1][1]) FROM '{path}' LIMIT 1"
    ).fetchall() == [("FLOAT",)]
    assert path.stat().st_size * 2 <= (tmp_path / "embed.jsonl").stat().st_size


def test_parquet_to_stdout_streams_into_a_pipe(
    sandbox: Any, batches: dict[str, Batch], tmp_path: Path
) -> None:
    with open(tmp_path / "piped.parquet", "wb") as sink:
        result = run_cbatch(
            sandbox.base_url,
            ["results", batches["chat"].id, "--format", "parquet", "-o", "-"],
            tmp_path,
            stdout=sink,
        )
    ok(result)
    assert pq.read_table(tmp_path / "piped.parquet").num_rows == 30


# --------------------------------------------------------------------------- mistakes: exit 2, one line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["--format", "csv", "-o", "r.parquet"],
            "error: --format csv contradicts -o r.parquet, a .parquet name; drop --format",
        ),
        (
            ["-o", "r.jsonl", "--column", "m=body.id"],
            "error: --column is for the table formats: a JSONL line holds the whole record",
        ),
        (["--body"], "error: --body is for the table formats"),
        (
            ["-o", "r.csv", "--column", "m=body.["],
            "error: --column m: 'body.[' is not a JMESPath expression",
        ),
        (["-o", "r.csv", "--column", "body.id"], "error: --column 'body.id': expected NAME=EXPR"),
    ],
)
def test_a_contradiction_or_a_bad_column_is_a_usage_error_before_any_call(
    fault_cli: Cli, fault_server: Any, tmp_path: Path, args: list[str], says: str
) -> None:
    result = fault_cli("results", "b-1", *args, exit_code=ExitCode.USAGE)
    assert result.stderr.startswith(says) and len(result.stderr.strip().splitlines()) == 1, (
        result.stderr
    )
    assert fault_server.requests == [], "the API was asked before the mistake was seen"


def test_without_pyarrow_parquet_is_one_line_saying_how_to_get_it(
    fault_cli: Cli, fault_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what an environment without the extra sees
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    for args in (["--format", "parquet"], ["-o", "out.parquet"]):
        result = fault_cli("results", "b-1", *args, exit_code=ExitCode.USAGE)
        assert (
            result.stderr
            == "error: --format parquet needs pyarrow: pip install 'pyarrow>=14' (the [parquet] extra)\n"
        )
    assert not fault_server.requests and not (tmp_path / "out.parquet").exists()


# --------------------------------------------------------------------------- interrupted


def _stop(sig: int, api: FakeApi, parts: PartServer, cwd: Path) -> tuple[int, str]:
    """``cbatch results`` writing Parquet: a row group on disk, the second part trickling; then ``sig``."""
    vector = [round(((i * 37) % 1000) / 1000 - 0.5, 4) for i in range(1024)]
    body = json.dumps(
        {
            "id": "x",
            "embeddings": {"float": [vector] * 1000},
            "meta": {"billed_units": {"input_tokens": 1}},
        }
    )
    big = avro_part([{"custom_id": f"e{i}", "body": body, "error": ""} for i in range(6)])
    rest = avro_part([{"custom_id": "last", "body": body, "error": ""}])
    api.datasets["out-1"]["dataset_parts"] = [
        {
            "id": "p0",
            "name": "p0",
            "index": 0,
            "size_bytes": len(big),
            "num_rows": 6,
            "url": parts.add("big", big),
        },
        {
            "id": "p1",
            "name": "p1",
            "index": 1,
            "size_bytes": len(rest),
            "num_rows": 1,
            "url": parts.add("rest", rest, [SLOW]),
        },
    ]
    proc = subprocess.Popen(
        [cbatch_path(), "results", "b-done", "-o", "vectors.parquet"], cwd=cwd, env=cbatch_env(api.base_url, cwd),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip

    def written() -> int:
        return sum(p.stat().st_size for p in cwd.glob(".vectors.parquet.part-*"))

    try:
        deadline = time.monotonic() + 60
        while (
            written() <= 4096
        ):  # past the 4-byte header: the first row group is in the temporary file
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no row group was written"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err


@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [
        (signal.SIGINT, ExitCode.INTERRUPTED, "interrupted"),
        (signal.SIGTERM, ExitCode.TERMINATED, "terminated (SIGTERM)"),
    ],
)
def test_an_interrupted_parquet_write_leaves_nothing_under_the_final_name(
    tmp_path: Path, sig: int, code: int, word: str
) -> None:
    api = FakeApi().start()
    try:
        with PartServer(slow_delay=0.2, slow_pieces=400) as parts:
            before = set(os.listdir(tmp_path))
            returned, err = _stop(sig, api, parts, tmp_path)
        assert returned == code, err
        assert f"{word}: nothing was written to vectors.parquet and no partial file is left" in err
        assert "Traceback" not in err
        assert (
            set(os.listdir(tmp_path)) - before - {"cache"} == set()
        )  # no file, no temporary, no part folder
    finally:
        api.stop()


# --------------------------------------------------------------------------- the demo


def test_the_demo_writes_its_embeddings_as_parquet(tmp_path: Path) -> None:
    args = [
        "demo",
        "--dir",
        "demo",
        "--records",
        "6",
        "--failures",
        "1",
        "--embeddings",
        "5",
        "--records-per-second",
        "1000",
    ]
    said = ok(run_cbatch(None, args, tmp_path, timeout=60))
    assert "embeddings in demo/embeddings.parquet: one row a record" in said
    table = pq.read_table(tmp_path / "demo" / "embeddings.parquet")
    assert table.num_rows == 5 and set(table.column("status").to_pylist()) == {"succeeded"}
    assert {
        len(v) for vectors in table.column("embeddings_float").to_pylist() for v in vectors
    } == {1536}  # embed-v4.0


def test_the_demo_without_pyarrow_writes_jsonl_and_says_how_to_get_parquet(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    args = [
        "demo",
        "--dir",
        str(tmp_path / "d"),
        "--records",
        "3",
        "--failures",
        "0",
        "--embeddings",
        "2",
        "--records-per-second",
        "1000",
    ]
    result = cli(*args)
    assert (
        f"embeddings in {tmp_path / 'd' / 'embeddings.jsonl'}; for them as Parquet (float32 arrays): pip install 'pyarrow>=14' (the [parquet] extra)"
        in result.stderr
    )
    lines = (tmp_path / "d" / "embeddings.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(
        len(json.loads(line)["body"]["embeddings"]["float"][0]) == 1536 for line in lines
    )


# --------------------------------------------------------------------------- a disk that fills up


def _serve_random_bodies(api: FakeApi, records: int, size: int) -> None:
    """``b-done``'s output: bodies of random text, as large in Parquet as in the part."""
    import base64

    recs = [{"custom_id": f"r-{i}", "body": json.dumps({"text": base64.b64encode(os.urandom(size)).decode()}), "error": None}
            for i in range(records)]  # fmt: skip
    data = avro_part(recs)
    api.parts["out-1-0"] = data
    api.datasets["out-1"]["dataset_parts"][0].update(size_bytes=len(data), num_rows=records)


def test_parquet_to_a_full_device_is_exit_11_in_one_line(tmp_path: Path) -> None:
    full = tmp_path / "full"
    try:
        os.mknod(full, 0o20666, os.makedev(1, 7))  # a private /dev/full
    except PermissionError:
        full = Path("/dev/full")
    api = FakeApi().start()
    try:
        _serve_random_bodies(api, 20, 3000)
        result = run_cbatch(
            api.base_url, ["results", "b-done", "--format", "parquet", "-o", str(full)], tmp_path
        )
    finally:
        api.stop()
    assert result.returncode == ExitCode.LOCAL_WRITE, result.stderr
    assert result.stderr.splitlines()[-1] == f"error: cannot write {full}: No space left on device"
    assert "Traceback" not in result.stderr


def test_a_disk_that_fills_up_under_a_parquet_spool_is_exit_11_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs root: {mounted.stderr.strip()}")
    api = FakeApi().start()
    try:
        _serve_random_bodies(
            api, 25, 3000
        )  # a 100 KB part; its Parquet, with three copies of each body, is 300 KB
        args = [
            "results",
            "b-done",
            "-o",
            str(disk / "r.parquet"),
            "--body",
            "--column",
            "a=body",
            "--column",
            "b=body.text",
        ]
        result = run_cbatch(api.base_url, args, tmp_path)
        left = os.listdir(disk)
    finally:
        api.stop()
        subprocess.run(["umount", "-l", str(disk)], check=False)
    assert result.returncode == ExitCode.LOCAL_WRITE, result.stderr
    line = result.stderr.splitlines()[-1]
    assert line.startswith("error: cannot write") and line.endswith("No space left on device"), line
    assert left == [], f"left behind: {left}"


def test_parquet_is_never_written_to_a_terminal(tmp_path: Path) -> None:
    import pexpect

    env = cbatch_env("http://127.0.0.1:9", tmp_path)
    child = pexpect.spawn(cbatch_path(), ["results", "b-1", "--format", "parquet", "-o", "-"], cwd=str(tmp_path),
                          env=env, encoding="utf-8", timeout=20)  # fmt: skip
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == ExitCode.USAGE
    assert (
        child.before.strip()
        == "error: Parquet is binary and stdout is a terminal; write it to a file: -o FILE.parquet"
    )
