"""The local input check: every bad line named by number, odd encodings, and flat memory."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest

from cohere_batch_cli.input_rules import CHAT_V2_INPUT, EMBED_V2_INPUT, MAX_PROBLEMS
from cohere_batch_cli.validate import FileReport, InputFileError, check_file


def chat(custom_id: str, text: str = "hello") -> dict:
    return {"custom_id": custom_id, "body": {"messages": [{"role": "user", "content": text}]}}


def embed(custom_id: str) -> dict:
    return {"custom_id": custom_id, "body": {"texts": ["a", "b"], "input_type": "search_document"}}


def write_lines(path: Path, lines: list[object], end: str = "\n") -> Path:
    text = end.join(line if isinstance(line, str) else json.dumps(line) for line in lines) + end
    path.write_bytes(text.encode("utf-8"))
    return path


def messages(report: FileReport) -> list[str]:
    return [str(p) for p in report.problems]


def test_a_good_chat_file_passes_and_its_type_is_inferred(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", [chat("a"), chat("b"), chat("c")])
    report = check_file(path, None)
    assert report.ok, messages(report)
    assert (report.dataset_type, report.rows, report.size_bytes) == (
        CHAT_V2_INPUT,
        3,
        path.stat().st_size,
    )


def test_an_embed_file_is_inferred_as_embed(tmp_path: Path) -> None:
    report = check_file(write_lines(tmp_path / "in.jsonl", [embed("a"), embed("b")]), None)
    assert report.ok and report.dataset_type == EMBED_V2_INPUT


def test_every_bad_line_is_named_with_its_number(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "in.jsonl",
        [
            chat("ok-1"),
            '{"custom_id": "x", "body": ',  # 2: invalid JSON
            {"body": {"messages": [{"role": "user", "content": "hi"}]}},  # 3: no custom_id
            chat("ok-1"),  # 4: duplicate
            {"custom_id": "no-body"},  # 5: no body
            {
                "custom_id": "odd",
                "body": {"messages": [{"role": "user", "content": "x"}], "colour": 1},
            },  # 6
            {
                "custom_id": "model",
                "body": {"messages": [{"role": "user", "content": "x"}], "model": "m"},
            },  # 7
            chat("ok-2"),
        ],
    )
    report = check_file(path, None)
    found = messages(report)
    assert not report.ok
    assert any(m.startswith("line 2: invalid JSON") for m in found), found
    assert "line 3: missing custom_id" in found
    assert 'line 4: duplicate custom_id "ok-1" (first on line 1)' in found
    assert "line 5: missing body" in found
    assert any(m.startswith("line 6: body has fields") and "colour" in m for m in found), found
    assert any(m.startswith("line 7: body.model is not allowed") for m in found), found
    assert not any(m.startswith(("line 1:", "line 8:")) for m in found)
    assert report.problem_count == len(report.problems)


def test_records_of_the_other_type_are_named(tmp_path: Path) -> None:
    """The type is inferred from the first record; an embed line in a chat file is flagged."""
    report = check_file(write_lines(tmp_path / "in.jsonl", [chat("a"), embed("b")]), None)
    assert report.dataset_type == CHAT_V2_INPUT
    assert any(
        m.startswith("line 2: body has fields batch-chat-v2-input does not accept")
        for m in messages(report)
    )


def test_a_given_type_wins_over_inference(tmp_path: Path) -> None:
    report = check_file(write_lines(tmp_path / "in.jsonl", [chat("a")]), EMBED_V2_INPUT)
    assert report.dataset_type == EMBED_V2_INPUT
    assert any("messages" in m and m.startswith("line 1:") for m in messages(report))


def test_a_type_that_cannot_be_inferred_is_a_problem(tmp_path: Path) -> None:
    report = check_file(
        write_lines(tmp_path / "in.jsonl", [{"custom_id": "a", "body": {"temperature": 0.3}}]), None
    )
    assert report.dataset_type is None
    assert any("cannot tell the dataset type" in m and "--type" in m for m in messages(report))


def test_an_empty_file_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    report = check_file(path, None)
    assert not report.ok and report.rows == 0 and report.size_bytes == 0
    assert messages(report) == ["the file holds no records"]


def test_blank_lines_only_is_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_bytes(b"\n  \r\n\n")
    assert messages(check_file(path, None)) == ["the file holds no records"]


def test_a_binary_file_is_one_problem_not_thousands(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 400 + b"\n" * 50)
    report = check_file(path, None)
    assert report.problem_count == 1
    assert "binary" in messages(report)[0]


def test_a_gzip_file_is_named_as_such(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "in.jsonl.gz"
    path.write_bytes(gzip.compress(json.dumps(chat("a")).encode()))
    assert "gzip" in messages(check_file(path, None))[0]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_utf16_is_one_problem_asking_for_utf8(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "in.jsonl"
    text = "\n".join(json.dumps(chat(f"r{i}")) for i in range(50)) + "\n"
    data = text.encode(encoding)
    if not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        data = b"\xfe\xff" + data
    path.write_bytes(data)
    report = check_file(path, None)
    assert report.problem_count == 1
    assert "UTF-16" in messages(report)[0] and "UTF-8" in messages(report)[0]


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + (json.dumps(chat("a")) + "\n" + json.dumps(chat("b")) + "\n").encode()
    )
    report = check_file(path, None)
    assert report.ok, messages(report)
    assert report.rows == 2


def test_crlf_line_ends_are_accepted_and_numbers_stay_right(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "in.jsonl", [chat("a"), chat("b"), "{oops", chat("c")], end="\r\n"
    )
    report = check_file(path, None)
    assert report.rows == 4
    assert [p.line for p in report.problems] == [3]


def test_a_last_line_without_newline_is_read(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes((json.dumps(chat("a")) + "\n" + json.dumps(chat("a"))).encode())
    assert messages(check_file(path, None)) == ['line 2: duplicate custom_id "a" (first on line 1)']


def test_a_huge_line_is_reported_without_being_held(tmp_path: Path) -> None:
    """A 12 MB line against a 1 MiB limit: named by number, skipped, and memory stays small."""
    path = tmp_path / "in.jsonl"
    huge = json.dumps(chat("big", "x" * 12_000_000))
    path.write_bytes(
        (json.dumps(chat("a")) + "\n" + huge + "\n" + json.dumps(chat("b")) + "\n").encode()
    )
    tracemalloc.start()
    try:
        report = check_file(path, None, max_line_bytes=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert messages(report) == ["line 2: the line is longer than 1 MiB; not checked"]
    assert report.rows == 3
    assert peak < 4 * (1 << 20), peak  # the bounded read and its copy, not the 12 MB line


def test_a_single_line_file_with_no_newline_over_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"{" + b" " * 3_000_000)
    report = check_file(path, None, max_line_bytes=1 << 20)
    assert [p.line for p in report.problems] == [1]
    assert "longer than" in messages(report)[0]


def test_problems_are_capped_but_all_counted(tmp_path: Path) -> None:
    total = MAX_PROBLEMS + 250
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"not json\n" * total)
    report = check_file(path, None)
    assert len(report.problems) == MAX_PROBLEMS
    assert report.problem_count >= total
    assert report.problems[-1].line == MAX_PROBLEMS


def test_a_directory_is_an_input_file_error(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="is a directory"):
        check_file(tmp_path, None)


def test_a_missing_file_is_an_input_file_error(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="does not exist"):
        check_file(tmp_path / "nope.jsonl", None)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_an_unreadable_file_is_an_input_file_error(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", [chat("a")])
    path.chmod(0)
    try:
        with pytest.raises(InputFileError, match="permission denied"):
            check_file(path, None)
    finally:
        path.chmod(0o600)


def test_a_large_valid_file_is_checked_in_flat_memory(tmp_path: Path) -> None:
    """About 24 MB of requests; the check keeps one line and an 8-byte hash per id."""
    path = tmp_path / "big.jsonl"
    filler = "lorem ipsum " * 160
    with open(path, "wb") as fh:
        for i in range(12_000):
            fh.write((json.dumps(chat(f"req-{i:06d}", filler)) + "\n").encode())
    size = path.stat().st_size
    tracemalloc.start()
    try:
        report = check_file(path, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok and report.rows == 12_000
    assert size > 20_000_000
    assert peak < 4_000_000, f"peak {peak:,} bytes for a {size:,}-byte file"


def test_nan_and_deep_nesting_are_line_problems(tmp_path: Path) -> None:
    from cohere_batch_cli.validate import check_file

    ok = '{"custom_id": "a", "body": {"messages": [{"role": "user", "content": "hi"}]}}'
    nan = '{"custom_id": "b", "body": {"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}}'
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join([ok, nan, deep]) + "\n")
    report = check_file(path)
    assert [(p.line, "NaN" in p.message or "too deeply" in p.message) for p in report.problems] == [
        (2, True),
        (3, True),
    ]


def test_repeated_custom_ids_past_what_memory_holds_are_found_with_their_first_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cohere_batch_cli.state import spill

    monkeypatch.setattr(spill, "MEMORY_IDS", 500)  # the ids spill to disk after 500
    records = [chat(f"r-{i}") for i in range(3000)]
    records[100] = chat("r-7")  # found at once, still in memory
    records[2500] = chat("r-9")  # found once the check ended, among the spilled ids
    records[2900] = chat("r-2600")  # both spilled
    path = write_lines(tmp_path / "in.jsonl", records)
    assert messages(check_file(path, None)) == [
        'line 101: duplicate custom_id "r-7" (first on line 8)',
        'line 2501: duplicate custom_id "r-9" (first on line 10)',
        'line 2901: duplicate custom_id "r-2600" (first on line 2601)',
    ]


def test_the_duplicate_check_holds_the_same_memory_for_five_times_the_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cohere_batch_cli.state import spill

    monkeypatch.setattr(spill, "MEMORY_IDS", 1000)
    peaks = []
    for count in (5_000, 25_000):
        path = write_lines(tmp_path / f"in-{count}.jsonl", [chat(f"id-{i}") for i in range(count)])
        tracemalloc.start()
        try:
            assert check_file(path, None).ok
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] - peaks[0] < 400_000, peaks  # a set of 20,000 more ids alone is over 1 MB


def test_the_check_hashes_the_fingerprint_a_whole_read_gives_in_any_pieces(tmp_path: Path) -> None:
    import hashlib
    import random

    from cohere_batch_cli.fingerprint import BlockHasher, file_fingerprint, same_fingerprint

    rng = random.Random(7)
    lines = [json.dumps(chat(f"r-{i}", "x" * rng.randint(0, 3000))) for i in range(1500)]
    path = write_lines(tmp_path / "in.jsonl", lines)  # about 2.3 MB: three 1 MiB blocks
    report = check_file(path, None)
    assert report.ok and report.fingerprint == file_fingerprint(path)
    data = path.read_bytes()
    by_lines, by_chunks = BlockHasher(0, 4096), BlockHasher(0, 4096)
    for line in data.splitlines(keepends=True):
        by_lines.feed(line)
    at = 0
    while at < len(data):
        step = rng.randint(1, 9000)
        by_chunks.feed(data[at : at + step])
        at += step
    assert by_lines.finish() == by_chunks.finish()
    assert same_fingerprint(path, hashlib.sha256(data).hexdigest()), (
        "a record from before fingerprints"
    )
    path.write_bytes(data.replace(b'"r-1"', b'"x-1"'))
    assert path.stat().st_size == len(data) and not same_fingerprint(path, report.fingerprint)


EVERY_SPEC_FIELD = {
    "messages": [
        {"role": "system", "content": "Answer in JSON."},
        {"role": "user", "content": [{"type": "text", "text": "Rate this review."}]},
    ],
    "tools": [],
    "strict_tools": False,
    "documents": ["a review"],
    "citation_options": {"mode": "FAST"},
    "response_format": {
        "type": "json_object",
        "json_schema": {
            "type": "object",
            "properties": {"stars": {"type": "integer"}},
            "required": ["stars"],
        },
    },
    "safety_mode": "CONTEXTUAL",
    "max_tokens": 100,
    "stop_sequences": ["\n\n"],
    "temperature": 0.3,
    "seed": 7,
    "frequency_penalty": 0.1,
    "presence_penalty": 0.1,
    "k": 40,
    "p": 0.9,
    "logprobs": False,
    "tool_choice": "NONE",
    "thinking": {"type": "disabled"},
    "priority": 1,
}
"""A body using every field of ChatRequestBodyV2 in the API's description (bodies.yaml) but
model and stream, each with a value the description allows."""


def test_every_field_of_the_chat_request_in_the_spec_is_accepted(tmp_path: Path) -> None:
    record = {"custom_id": "all", "body": EVERY_SPEC_FIELD}
    report = check_file(write_lines(tmp_path / "in.jsonl", [record]), None)
    assert report.ok, messages(report)
    # Every field is accepted; response_format beside documents is the spec's one limitation.
    assert report.notes == [
        "1 record (first on line 1): response_format is not supported with documents or tools; "
        "Cohere documents this as unsupported, and the service may fail it"
    ]


@pytest.mark.parametrize(
    ("response_format", "said"),
    [
        ({"type": "json"}, "body.response_format.type must be text or json_object"),
        ("json_object", "body.response_format must be an object"),
        ({"type": "json_object", "json_schema": "{}"}, "json_schema must be a JSON Schema object"),
        ({"type": "text", "json_schema": {"type": "object"}}, "json_schema needs type json_object"),
    ],
)
def test_a_malformed_response_format_is_refused_with_its_field(
    tmp_path: Path, response_format: object, said: str
) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "response_format": response_format}
    report = check_file(
        write_lines(tmp_path / "in.jsonl", [{"custom_id": "a", "body": body}]), None
    )
    assert any(said in m for m in messages(report)), messages(report)


def test_the_guides_schema_key_is_read_as_well(tmp_path: Path) -> None:
    """Cohere's v2 guide writes ``schema`` where the SDK sends ``json_schema``: both pass."""
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_object", "schema": {"type": "object"}},
    }
    report = check_file(
        write_lines(tmp_path / "in.jsonl", [{"custom_id": "a", "body": body}]), None
    )
    assert report.ok, messages(report)


def test_fields_clients_send_that_the_spec_lacks_pass_with_one_warning_each(
    tmp_path: Path,
) -> None:
    records = [
        chat("a"),
        {"custom_id": "b", "body": {"messages": [{"role": "user", "content": "x"}], "return_prompt": True}},
        {"custom_id": "c", "body": {"messages": [{"role": "user", "content": "x"}], "return_prompt": False, "max_input_tokens": 9}},
    ]  # fmt: skip
    report = check_file(write_lines(tmp_path / "in.jsonl", records), None)
    assert report.ok, messages(report)
    assert report.notes == [
        "1 record (first on line 3) set body.max_input_tokens, a field the API's description "
        "does not list: kept as written, and the service may ignore it",
        "2 records (first on line 2) set body.return_prompt, a field the API's description "
        "does not list: kept as written, and the service may ignore it",
    ]


def test_the_warning_for_a_field_the_spec_lacks_reaches_the_user_and_the_check_passes(
    tmp_path: Path,
) -> None:
    from tests.conftest import Cli

    body = {"messages": [{"role": "user", "content": "x"}], "return_prompt": True}
    path = write_lines(tmp_path / "rp.jsonl", [{"custom_id": "a", "body": body}])
    result = Cli(None, None)("datasets", "validate", str(path))
    assert result.stderr.splitlines()[0] == (
        f"warning: {path}: 1 record (first on line 1) set body.return_prompt, a field the API's "
        "description does not list: kept as written, and the service may ignore it"
    )


@pytest.mark.parametrize(
    "case",
    ["good", "problems", "long line", "ids past memory", "notes", "embed", "no type", "binary"],
)
def test_a_file_checked_as_it_is_written_reports_what_reading_it_back_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """A table's requests are checked as cbatch writes them: the same report, to the field, as
    the check that reads the file (problems and their lines, counts, notes, blocks, fingerprint),
    whatever lines each write holds."""
    import random

    from cohere_batch_cli.state import spill
    from cohere_batch_cli.validate import CheckedWriter

    monkeypatch.setattr(spill, "MEMORY_IDS", 500)  # past it, repeats are found after the last line
    rng = random.Random(3)
    records: list[object] = [chat(f"r-{i}", "x" * rng.randint(0, 3000)) for i in range(2000)]
    kind = None
    if case == "problems":
        records[5] = {"custom_id": "", "body": {"messages": []}}
        records[9] = "not json"
        records[40] = chat("r-3")
    elif case == "long line":
        records[7] = chat("big", "y" * 5000)
    elif case == "ids past memory":
        records[1500] = chat("r-9")
        records[1900] = chat("r-1600")
    elif case == "notes":
        records[3] = {"custom_id": "n", "body": {**chat("n")["body"], "return_prompt": True}}
    elif case == "embed":
        records, kind = [embed(f"e-{i}") for i in range(50)], EMBED_V2_INPUT
    elif case == "no type":
        records = [{"custom_id": "a", "body": {}}]
    elif case == "binary":
        records = ["\x00" + json.dumps(chat("a"))]
    data = write_lines(tmp_path / "read.jsonl", records).read_bytes()
    limit = 4096 if case == "long line" else 1 << 20
    path = tmp_path / "written.jsonl"
    with open(path, "wb") as out:
        writer = CheckedWriter(out, path, kind, max_line_bytes=limit)
        lines = data.splitlines(keepends=True)
        at = 0
        while at < len(lines):  # one line a write, or hundreds
            step = rng.choice([1, 3, 700])
            writer.write(b"".join(lines[at : at + step]))
            at += step
        written = writer.finish()
    assert path.read_bytes() == data
    read = check_file(path, kind, max_line_bytes=limit)
    assert written == read
    assert written.ok == (case in ("good", "notes", "embed"))
