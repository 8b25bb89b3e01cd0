"""Output parts damaged in realistic ways: a seeded mutation test of the whole results pipeline.

A real part (the sandbox's schema, several blocks, uncompressed and deflate)
is mutated a few hundred times, each time in one way a storage or transfer
fault can: cut short anywhere, a byte flipped in the header, in the schema,
in a block's count or size, in its compressed data, in a sync marker. Each
mutant is served by a loopback part server and run through
``download_results`` as ``cbatch results`` runs it. Every run must end in
one of two ways:

- a :class:`ResultsError` (the CLI's exit 6, "an unreadable answer") with a
  one-line message, and no file under the final name nor anything else left
  in the folder; or
- the mutant is still valid Avro: every line written is strict JSON (no
  ``NaN``, nothing spliced), and a part holding another number of records
  than its ``num_rows`` says is reported.

Nothing else is allowed: no other exception (``zlib.error`` and fastavro's
schema errors used to escape as exit 1), no hang. A few mutants also go
through the installed ``cbatch`` against the fake API.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import httpx
import pytest

from cohere_batch_cli.api.models import DatasetPart
from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.results import ResultsError, download_results
from cohere_batch_cli.sandbox.avro_output import OUTPUT_SCHEMA
from tests.support.fake_api import FakeApi
from tests.support.installed import run_cbatch
from tests.support.part_server import PartServer

SEED = 20261201
MUTANTS_PER_CODEC = 300
RECORDS = 60


def strict_json(line: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def real_part(codec: str) -> bytes:
    """A part as the API writes it: chat successes (JSON text bodies) and failures, several blocks."""
    records = []
    for i in range(RECORDS):
        if i % 5 == 4:
            records.append({"custom_id": f"r-{i}", "body": None, "error": f"record {i} failed"})
        else:
            body = {"id": f"resp-{i}", "message": {"role": "assistant", "content": [{"type": "text", "text": f"reply {i} " * 5}]},
                    "finish_reason": "COMPLETE", "usage": {"billed_units": {"input_tokens": i, "output_tokens": 2 * i}}}  # fmt: skip
            records.append({"custom_id": f"r-{i}", "body": json.dumps(body), "error": None})
    buffer = io.BytesIO()
    fastavro.writer(
        buffer, fastavro.parse_schema(OUTPUT_SCHEMA), records, codec=codec, sync_interval=1500
    )
    return buffer.getvalue()


def regions(data: bytes) -> dict[str, tuple[int, int]]:
    """Where the header, the schema, the blocks and the sync markers of an Avro file lie."""
    sync = data[-16:]  # every block ends with the file's sync marker
    header_end = data.index(sync) + 16
    schema_start = data.index(b'{"')
    schema_end = data.index(b"}]}", schema_start) + 3
    return {
        "magic": (0, 4),
        "header": (4, header_end),
        "schema": (schema_start, schema_end),
        "block start": (header_end, header_end + 8),  # the first block's record count and byte size
        "blocks": (header_end, len(data) - 16),
        "sync": (len(data) - 16, len(data)),
    }


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One realistic fault: a cut, or one to three bytes flipped in one region."""
    where = regions(data)
    kind = rng.choice(["truncate", *where])
    if kind == "truncate":
        cut = rng.randrange(0, len(data))
        return f"truncated at {cut}", data[:cut]
    start, end = where[kind]
    mutant = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        pos = rng.randrange(start, max(start + 1, end))
        mutant[pos] ^= rng.choice([0x01, 0x80, 0xFF, rng.randrange(1, 256)])
    return f"{kind} flipped", bytes(mutant)


@pytest.fixture(scope="module")
def part_server() -> Iterator[PartServer]:
    with PartServer() as server:
        yield server


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def _run_mutant(
    server: PartServer, http: httpx.Client, folder: Path, name: str, data: bytes, fmt: str
) -> str:
    """Run one mutant; return "error" or "valid" after checking what each outcome must hold."""
    url = server.add(name, data)
    part = DatasetPart(
        {
            "id": "p0",
            "name": "part-0",
            "index": 0,
            "url": url,
            "size_bytes": len(data),
            "num_rows": RECORDS,
        }
    )
    out = folder / f"results.{fmt}"
    try:
        summary = download_results([part], out, fmt=fmt, http=http, expected_records=RECORDS)  # type: ignore[arg-type]
    except ResultsError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(
            "part 0 (part-0) is not a readable Avro file"
        ), message
        assert "http" not in message, "a part's link never appears in a message"
        assert list(folder.iterdir()) == [], f"left behind: {list(folder.iterdir())}"
        return "error"
    written = out.read_text(encoding="utf-8")
    if fmt == "jsonl":
        for line in written.splitlines():
            strict_json(line)
    if summary.records_total != RECORDS:
        assert (
            f"part 0 (part-0) holds {summary.records_total:,} records but the dataset says {RECORDS}"
            in summary.warnings
        )
    assert [p.name for p in folder.iterdir()] == [out.name]
    out.unlink()
    return "valid"


@pytest.mark.parametrize("codec", ["null", "deflate"])
def test_every_mutant_is_an_unreadable_answer_or_valid_json(
    codec: str, part_server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    original = real_part(codec)
    rng = random.Random(f"{SEED}-{codec}")
    outcomes: dict[str, int] = {"error": 0, "valid": 0}
    for i in range(MUTANTS_PER_CODEC):
        what, data = mutate(original, rng)
        folder = tmp_path / f"m{i}"
        folder.mkdir()
        try:
            outcome = _run_mutant(
                part_server, http, folder, f"{codec}-{i}", data, "csv" if i % 10 == 9 else "jsonl"
            )
        except AssertionError as exc:
            raise AssertionError(f"mutant {i} ({what}, seed {SEED}): {exc}") from None
        except Exception as exc:
            raise AssertionError(
                f"mutant {i} ({what}, seed {SEED}) raised {type(exc).__name__}: {exc}"
            ) from exc
        outcomes[outcome] += 1
        folder.rmdir()
    # Both outcomes must really occur, or the mutations are not exercising what they claim.
    assert outcomes["error"] >= MUTANTS_PER_CODEC // 5 and outcomes["valid"] >= 10, outcomes


def test_the_untouched_part_reads_whole(
    part_server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    for codec in ("null", "deflate"):
        assert (
            _run_mutant(part_server, http, tmp_path, f"whole-{codec}", real_part(codec), "jsonl")
            == "valid"
        )


@pytest.mark.parametrize(
    ("what", "damage"),
    [
        (
            "a damaged deflate block",
            lambda d: (
                d[: regions(d)["blocks"][0] + 12]
                + bytes(
                    b ^ 0x5A for b in d[regions(d)["blocks"][0] + 12 : regions(d)["blocks"][0] + 40]
                )
                + d[regions(d)["blocks"][0] + 40 :]
            ),
        ),
        (
            "a damaged schema",
            lambda d: d.replace(b'"type": "record"', b'"type": "recxrd"', 1).replace(
                b'"type":"record"', b'"type":"recxrd"', 1
            ),
        ),
        ("a truncated file", lambda d: d[: len(d) // 2]),
    ],
)
def test_through_the_installed_cbatch_a_corrupt_part_is_exit_6_and_no_file(
    tmp_path: Path, what: str, damage: Any
) -> None:
    api = FakeApi().start()
    try:
        data = damage(real_part("deflate"))
        api.parts["out-1-0"] = data
        api.datasets["out-1"]["dataset_parts"][0].update(size_bytes=len(data), num_rows=RECORDS)
        result = run_cbatch(api.base_url, ["results", "b-done", "-o", "results.jsonl"], tmp_path)
    finally:
        api.stop()
    assert result.returncode == ExitCode.SERVER, (what, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert (
        lines[-1].startswith("error: part 0 (part-0) is not a readable Avro file")
        and "Traceback" not in result.stderr
    )
    assert (
        sorted(p.name for p in tmp_path.iterdir()) in ([], ["cache"])
        or not (tmp_path / "results.jsonl").exists()
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".results.jsonl")]
