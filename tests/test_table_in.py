"""``cbatch create --from TABLE --prompt TEMPLATE``: a table's rows sent as chat requests (issue 25, "A table in").

Each test makes a table run against the real sandbox and reads back what the sandbox
received: the records of the uploaded dataset (their prompts, in row order, with the
right ids), or the request log when nothing may be sent (a missing column, a null the
template uses, ``--dry-run``). What is sent and what is refused go through the Python
API in-process (``cb.PromptTable``); the flags (``--prompt-file``, ``--dry-run``,
``--watch``...) and the one-line refusals through ``cbatch``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

import cohere_batch_cli as cb
from tests.conftest import Cli
from tests.sandbox.sandbox_client import Api
from tests.support.quiet import nothing_printed

MODEL = "command-r-08-2024"


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder cbatch writes a table's requests in, to see it emptied."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def sent(cli: Cli, api: Api, *args: str) -> list[tuple[str, dict[str, Any]]]:
    """Run ``cbatch create ARGS --json``; the uploaded dataset's records as (custom_id, body)."""
    batch = json.loads(cli("create", *args, "--model", MODEL, "--json").stdout)
    records = [r for part in api.parts(batch["input_dataset_id"]) for r in part]
    return [(r["custom_id"], json.loads(r["body"])) for r in records]


def sent_through(
    client: cb.Client, api: Api, table: Path, prompt: str, **options: Any
) -> list[tuple[str, dict[str, Any]]]:
    """``client.create(cb.PromptTable(...))``; the uploaded dataset's records as (custom_id, body)."""
    with nothing_printed():
        run = client.create(cb.PromptTable(table, prompt, **options), model=MODEL)
    records = [r for part in api.parts(run.batch.input_dataset_id) for r in part]
    return [(r["custom_id"], json.loads(r["body"])) for r in records]


def refusal(client: cb.Client, table: Path, prompt: str, **options: Any) -> cb.CbatchError:
    """What ``client.create(cb.PromptTable(...))`` raises (it must raise)."""
    with nothing_printed(), pytest.raises(cb.CbatchError) as refused:
        client.create(cb.PromptTable(table, prompt, **options), model=MODEL)
    return refused.value


def prompts(records: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    return [(cid, body["messages"][-1]["content"]) for cid, body in records]


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_lines(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, columns: dict[str, list[Any]], row_group_size: int = 1000) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def test_a_csv_table_sends_one_request_a_row_with_its_id_column_and_options_as_strings(
    client: cb.Client, api: Api, tmp_path: Path, scratch: Path
) -> None:
    table = write_csv(
        tmp_path / "reviews.csv",
        'id,review text,stars\n001,"Great phone, sturdy",5\n002,Broke in a week,1\n010,,3\n',
    )
    records = sent_through(
        client, api, table, 'Stars {{ stars }} ({{ stars ~ "" }}): {{ row["review text"] }}',
        id_column="id", system="Answer in one word.", max_tokens=20, temperature=0.3,
    )  # fmt: skip
    assert prompts(records) == [
        ("001", "Stars 5 (5): Great phone, sturdy"),
        ("002", "Stars 1 (1): Broke in a week"),
        ("010", "Stars 3 (3): "),  # an empty CSV field is an empty string, not a null
    ]
    _, body = records[0]
    assert body == {
        "messages": [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "Stars 5 (5): Great phone, sturdy"},
        ],
        "max_tokens": 20,
        "temperature": 0.3,
    }
    assert list(scratch.iterdir()) == []  # the rendered requests are removed


def test_a_parquet_table_is_read_in_batches_in_row_order_with_row_numbers_as_ids(
    client: cb.Client, api: Api, tmp_path: Path
) -> None:
    count = 1100  # more than one record batch and several row groups
    titles = [f"title {i}" if i % 7 else None for i in range(count)]
    table = write_parquet(
        tmp_path / "docs.parquet",
        {"n": list(range(count)), "title": titles},
        row_group_size=300,
    )
    records = sent_through(client, api, table, '{{ n }}: {{ title | default("untitled") }}')
    assert prompts(records) == [
        (str(i + 1), f"{i}: {titles[i] if titles[i] is not None else 'untitled'}")
        for i in range(count)
    ]


@pytest.mark.parametrize(
    "template",
    ["100% {{ n }}/{{ x }} {{ s }}{{ b }} %s %%", "{{ s }}", "50% of {{ n }}"],
)
def test_a_template_of_text_and_columns_renders_as_jinja2_renders_it(
    client: cb.Client, api: Api, tmp_path: Path, template: str
) -> None:
    from jinja2.sandbox import SandboxedEnvironment

    rows = {
        "n": [1, -20],
        "x": [0.5, 1e-7],
        "s": ["%s and %% {{ x }}", "é \u2603"],
        "b": [True, False],
    }
    table = write_parquet(tmp_path / "t.parquet", rows)
    records = sent_through(client, api, table, template)
    expected = SandboxedEnvironment().from_string(template)
    assert prompts(records) == [
        (str(i + 1), expected.render({k: v[i] for k, v in rows.items()})) for i in range(2)
    ]


def test_a_jsonl_table_with_prompt_and_system_files_and_a_null_the_template_handles(
    cli: Cli, api: Api, tmp_path: Path
) -> None:
    table = write_lines(
        tmp_path / "tickets.jsonl",
        [{"ticket": "T-1", "text": "login fails", "tag": None}, {"ticket": "T-2", "text": "slow"}],
    )
    (tmp_path / "prompt.j2").write_text(
        "Ticket {{ ticket }}: {{ text }}{% if tag is defined %} [{{ tag }}]{% endif %}\n"
    )
    (tmp_path / "system.txt").write_text("You triage tickets.")
    records = sent(
        cli, api, "--from", str(table), "--prompt-file", str(tmp_path / "prompt.j2"),
        "--system-file", str(tmp_path / "system.txt"), "--id-column", "ticket",
    )  # fmt: skip
    assert prompts(records) == [("T-1", "Ticket T-1: login fails"), ("T-2", "Ticket T-2: slow")]
    assert records[0][1]["messages"][0] == {"role": "system", "content": "You triage tickets."}


GENERATION_FLAGS = (
    "--max-tokens", "30", "--temperature", "1", "--p", "0.5", "--k", "40", "--seed", "7",
    "--frequency-penalty", "0.25", "--presence-penalty", "0.5", "--stop-sequence", "END",
    "--stop-sequence", "###", "--safety-mode", "STRICT", "--thinking-budget", "256",
    "--priority", "3",
)  # fmt: skip
GENERATION_FIELDS = {
    "max_tokens": 30, "temperature": 1.0, "p": 0.5, "k": 40, "seed": 7,
    "frequency_penalty": 0.25, "presence_penalty": 0.5, "stop_sequences": ["END", "###"],
    "safety_mode": "STRICT", "thinking": {"type": "enabled", "token_budget": 256}, "priority": 3,
}  # fmt: skip
"""Every generation option of ``ChatRequestBodyV2`` a table run sets, as flags and as the body has them."""


def test_every_generation_option_reaches_every_body_and_the_sandbox_runs_it_without_a_warning(
    cli: Cli, api: Api, tmp_path: Path
) -> None:
    table = write_csv(tmp_path / "r.csv", "text\none\ntwo\n")
    args = ("--from", str(table), "--prompt", "Say {{ text }}", *GENERATION_FLAGS)
    result = cli("create", *args, "--model", MODEL, "--watch", "--plain", "--timeout", "60s")
    assert "completed: 2/2 records (2 ok, 0 failed)" in result.stdout.splitlines()[-1]
    assert "warning" not in result.stderr  # the local check knows every field
    records = sent(cli, api, *args, "--no-cache")
    assert [body for _, body in records] == [
        {"messages": [{"role": "user", "content": f"Say {text}"}], **GENERATION_FIELDS}
        for text in ("one", "two")
    ]


def test_every_generation_option_is_checked_by_a_dry_run_and_counted_by_estimate(
    cli: Cli, tmp_path: Path, posts: Any
) -> None:
    table = write_csv(tmp_path / "r.csv", "text\none\ntwo\n")
    args = ("--from", str(table), "--prompt", "Say {{ text }}", *GENERATION_FLAGS, "--model", MODEL)
    dry = cli("create", *args, "--dry-run")
    assert f"{table} (rendered): 2 records of batch-chat-v2-input, checked" in dry.stderr
    assert "warning" not in dry.stderr
    estimate = json.loads(cli("estimate", *args, "--json").stdout)
    assert estimate["records_without_max_tokens"] == 0  # --max-tokens bounds each answer
    assert posts() == []


def test_a_jsonl_of_requests_is_refused_with_a_pointer_to_file(
    cli: Cli, tmp_path: Path, posts: Any
) -> None:
    table = write_lines(
        tmp_path / "requests.jsonl",
        [{"custom_id": "a", "body": {"messages": [{"role": "user", "content": "hi"}]}}],
    )
    result = cli(
        "create", "--from", str(table), "--prompt", "{{ body }}", "--model", MODEL, exit_code=2
    )
    assert "holds requests" in result.stderr and f"--file {table}" in result.stderr
    assert posts() == []


def test_a_folder_is_one_table_its_files_in_lexicographic_path_order(
    client: cb.Client, api: Api, tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    (folder / "b").mkdir(parents=True)
    write_csv(folder / "part-00001.csv", "name\ncarol\ndave\n")
    write_parquet(folder / "part-00000.parquet", {"name": ["alice", "bob"]})
    write_lines(folder / "b" / "part-00000.jsonl", [{"name": "erin"}])
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-00000.parquet.crc").write_text("x")
    records = sent_through(client, api, folder, "Hello {{ name }}")
    assert prompts(records) == [
        ("1", "Hello erin"),  # b/part-00000.jsonl sorts before part-00000.parquet
        ("2", "Hello alice"),
        ("3", "Hello bob"),
        ("4", "Hello carol"),
        ("5", "Hello dave"),
    ]


@pytest.mark.parametrize(
    "template",
    [
        "{{ tag }}",
        '{{ "tag: " ~ tag }}',
        "{{ tag | string }}",
        "{{ tag | upper }}",
        '{{ [text, tag] | join(", ") }}',
        "T={{ tag | pprint }}",  # repr: Jinja2's undefined values write "Undefined"
        "{{ tag.upper() }}",
        "{{ tag | tojson }}",
        '{{ {"k": tag} | tojson }}',
        "{{ row }}",
        "{{ row | tojson }}",
        "{{ row | dictsort }}",
        "{{ tag == none }}",
    ],
)
def test_a_null_the_template_uses_is_refused_naming_row_and_column_and_nothing_is_sent(
    client: cb.Client, tmp_path: Path, posts: Any, scratch: Path, template: str
) -> None:
    table = write_lines(
        tmp_path / "t.jsonl", [{"text": "a", "tag": "x"}, {"text": "b", "tag": None}]
    )
    refused = refusal(client, table, template)
    assert refused.exit_code == 5
    assert f"{table}: row 2: column 'tag' is null (nothing was sent)" in str(refused)
    assert "None" not in f"{refused} {refused.hint}"
    assert posts() == []
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize(
    ("template", "second"),
    [
        ('{{ tag | default("n/a") }}', "n/a"),
        ('{{ row.tag | default("n/a") }}', "n/a"),
        ("{% if tag is defined %}{{ tag }}{% else %}n/a{% endif %}", "n/a"),
        ("{% if tag is none %}n/a{% else %}{{ tag }}{% endif %}", "n/a"),
        ("{{ tag is none }} {{ tag is not none }}", "True False"),
        ('{{ {"k": tag | default(0)} | tojson }}', '{"k": 0}'),
    ],
)
def test_a_null_the_template_handles_is_sent_as_the_template_says(
    client: cb.Client, api: Api, tmp_path: Path, template: str, second: str
) -> None:
    table = write_lines(tmp_path / "t.jsonl", [{"tag": "x"}, {"tag": None}])
    records = sent_through(client, api, table, template)
    assert prompts(records)[1] == ("2", second)
    assert prompts(records)[0][1] != second


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("{{ text.x }}", "'str object' has no attribute 'x'"),
        ('{{ text["x"] }}', "'str object' has no attribute 'x'"),
        ("{{ text | dictsort }}", "'str' object has no attribute 'items'"),
        ("{{ text + 1 }}", 'can only concatenate str (not "int") to str'),
        ("{{ 1 // n }}", "integer division or modulo by zero"),
    ],
)
def test_a_template_that_fails_on_a_value_names_the_table_and_the_row(
    client: cb.Client, tmp_path: Path, posts: Any, template: str, says: str
) -> None:
    table = write_lines(tmp_path / "t.jsonl", [{"text": "a", "n": 0}])
    refused = refusal(client, table, template)
    assert isinstance(refused, cb.InputRejected) and refused.exit_code == 5
    assert str(refused) == f"{table}: row 1: the template failed: {says} (nothing was sent)"
    assert posts() == []


def test_a_column_the_table_lacks_is_refused_before_anything_is_sent(
    client: cb.Client, tmp_path: Path, posts: Any
) -> None:
    table = write_csv(tmp_path / "r.csv", "id,review text\n1,good\n")
    for template, missing in (("{{ title }}", "'title'"), ('{{ row["review"] }}', "'review'")):
        refused = refusal(client, table, template)
        assert isinstance(refused, cb.UsageError) and refused.exit_code == 2
        assert f"{table} has no column {missing}; its columns: id, review text" in str(refused)
    refused = refusal(client, table, "{{ id }}", id_column="key")
    assert refused.exit_code == 2 and "has no column 'key'" in str(refused)
    assert posts() == []


def test_duplicate_ids_are_refused_as_the_check_refuses_them_naming_both_rows(
    client: cb.Client, tmp_path: Path, posts: Any
) -> None:
    table = write_csv(tmp_path / "r.csv", "id,text\na,one\nb,two\na,three\n")
    refused = refusal(client, table, "{{ text }}", id_column="id")
    assert isinstance(refused, cb.InputRejected) and refused.exit_code == 5
    assert (
        str(refused)
        == f'{table}: row 3: duplicate custom_id "a" (first on row 1) (nothing was sent)'
    )
    assert posts() == []


def test_a_repeated_or_blank_id_is_refused_on_a_row_that_is_never_sent(
    client: cb.Client, tmp_path: Path, posts: Any
) -> None:
    """A row that asks what an earlier row asked is not sent, so the check of the requests never
    saw its id: two rows with one id were sent once, and ``results`` showed the id twice. Every
    row's id is compared, a blank one refused (the check refuses it in a request sent)."""
    cases = {
        "id,t\nr1,a\nr1,a\n": 'row 2: duplicate custom_id "r1" (first on row 1)',
        "id,t\nr1,a\nr2,b\nr3,a\nr2,b\n": 'row 4: duplicate custom_id "r2" (first on row 2)',
        "id,t\nr1,a\n  ,a\n": "row 2: its id column 'id' holds only white space",
    }
    for i, (text, says) in enumerate(cases.items()):
        table = write_csv(tmp_path / f"t{i}.csv", text)
        for dedupe in (True, False):
            refused = refusal(client, table, "{{ t }}", id_column="id", dedupe=dedupe)
            assert isinstance(refused, cb.InputRejected) and refused.exit_code == 5
            assert str(refused) == f"{table}: {says} (nothing was sent)"
    assert posts() == []


def test_a_repeated_id_past_the_ids_held_in_memory_is_found_once_the_table_is_read(
    client: cb.Client, tmp_path: Path, posts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the ids a check holds in memory, the rest go to disk and the repeats are found after the
    last row: the earliest is named, its id read back from the table, across a folder's files."""
    from cohere_batch_cli.state import spill

    monkeypatch.setattr(spill, "MEMORY_IDS", 50)
    ids = [f"r{i}" for i in range(1, 201)]
    ids[149] = "r20"  # row 150 repeats row 20's id; both spilled
    ids[179] = "r160"  # and row 180 row 160's: a later repeat, not the one named
    folder = tmp_path / "parts"
    folder.mkdir()
    for part in range(2):
        rows = range(100 * part, 100 * part + 100)
        write_csv(folder / f"part-{part}.csv", "id,t\n" + "".join(f"{ids[r]},same\n" for r in rows))
    refused = refusal(client, folder, "{{ t }}", id_column="id")
    assert refused.exit_code == 5
    assert str(refused) == (
        f'{folder / "part-1.csv"}: row 150: duplicate custom_id "r20" (first on row 20) (nothing was sent)'
    )
    assert posts() == []


def test_a_repeated_id_is_named_by_a_dry_run_too(cli: Cli, tmp_path: Path, posts: Any) -> None:
    table = write_csv(tmp_path / "t.csv", "id,t\nr1,a\nr1,a\n")
    result = cli(
        "create", "--from", str(table), "--prompt", "{{ t }}", "--id-column", "id",
        "--model", MODEL, "--dry-run", exit_code=5,
    )  # fmt: skip
    assert result.stderr.strip().splitlines()[-1] == (
        f'error: {table}: row 2: duplicate custom_id "r1" (first on row 1) (nothing was sent)'
    )
    assert posts() == []


def test_dry_run_renders_and_checks_the_table_and_sends_nothing(
    cli: Cli, tmp_path: Path, posts: Any, scratch: Path
) -> None:
    table = write_csv(tmp_path / "r.csv", "text\none\ntwo\n")
    result = cli(
        "create", "--from", str(table), "--prompt", "{{ text }}", "--model", MODEL, "--dry-run"
    )
    assert f"{table}: 2 rows, 2 distinct requests: 2 requests to send" in result.stderr
    assert f"{table} (rendered): 2 records of batch-chat-v2-input, checked" in result.stderr
    assert "dry run: nothing was sent" in result.stderr.splitlines()[-1]
    assert posts() == []
    assert list(scratch.iterdir()) == []


def test_watch_follows_the_batch_made_from_a_table(cli: Cli, tmp_path: Path) -> None:
    table = write_csv(tmp_path / "r.csv", "text\none\ntwo\n")
    result = cli(
        "create", "--from", str(table), "--prompt", "{{ text }}", "--model", MODEL,
        "--watch", "--plain", "--timeout", "60s",
    )  # fmt: skip
    assert "completed: 2/2 records (2 ok, 0 failed)" in result.stdout.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--prompt", "x"), "--prompt goes with --from TABLE"),
        (
            ("--from", "t.csv"),
            "exactly one of --prompt TEMPLATE, --prompt-file FILE or --embed COLUMN",
        ),
        (("--from", "t.csv", "--file", "r.jsonl", "--prompt", "x"), "exactly one of --dataset"),
        (
            ("--from", "t.csv", "--prompt", "x", "--embed", "x"),
            "--embed and --prompt do not go together",
        ),
        (
            ("--from", "t.csv", "--prompt-file", "p.j2", "--embed", "x"),
            "--embed and --prompt do not go together",
        ),
        (
            ("--from", "t.csv", "--embed", "x", "--system", "s", "--max-tokens", "5"),
            "--system, --max-tokens go with --prompt, not --embed",
        ),
        (
            ("--from", "t.csv", "--prompt", "x", "--embed-types", "float"),
            "--embed-types goes with --embed",
        ),
        (("--embed", "x"), "--embed goes with --from TABLE"),
        (
            ("--from", "t.csv", "--embed", "x", "--type", "batch-embed-v2-input"),
            "--type goes with --file",
        ),
        (
            ("--from", "t.csv", "--embed", "x", "--embed-types", "float,bits"),
            "--embed-types: bits is not an embedding type",
        ),
        (("--from", "t.csv", "--prompt", "{{ x", "--dry-run"), "--prompt: line 1:"),
        (
            ("--from", "t.csv", "--prompt", "x", "--split", "--max-cost", "5"),
            "check the whole table first: cbatch estimate --from TABLE",
        ),
    ],
)
def test_table_options_that_do_not_go_together_are_usage_errors(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "t.csv", "x\n1\n")
    result = cli("create", *args, "--model", MODEL, exit_code=2)
    assert says in result.stderr


def test_retry_rounds_of_a_table_run_send_again_from_the_uploaded_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table's requests are a temporary file: a retry reads them back from the input dataset.
    (That every record succeeded is said by ``cbatch``: test_retry.py.)"""
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
    from tests.conftest import TEST_KEY

    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, records_per_second=5000.0,
        output_ready_delay=0.0, transient_fail_rate=0.3, seed=5,
    )  # fmt: skip
    table = write_csv(tmp_path / "r.csv", "text\n" + "".join(f"line {i}\n" for i in range(20)))
    monkeypatch.chdir(tmp_path)
    with SandboxServer(settings) as server, cb.Client(TEST_KEY, base_url=server.base_url) as client:
        with nothing_printed():
            run = client.create(cb.PromptTable(table, "Say {{ text }}"), model=MODEL)
            run.wait(timeout=60, interval=0.1).retry(rounds=5, pause=0.05, timeout=60, interval=0.1)
            run.results("table.jsonl")  # the table, answers merged across the rounds
        # the records, not the table: --records has no API value
        Cli(server.base_url, TEST_KEY)("results", run.id, "-o", "all.jsonl", "--records")
    merged = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert sorted(int(r["custom_id"]) for r in merged) == list(range(1, 21))
    assert all("body" in r for r in merged)
    rows = [json.loads(line) for line in (tmp_path / "table.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == [f"line {i}" for i in range(20)]
    assert {r["status"] for r in rows} == {"succeeded"}


def test_a_parquet_table_is_rendered_in_flat_memory_whatever_its_row_count(tmp_path: Path) -> None:
    """Rows are read a record batch at a time: four times the rows, not four times the memory."""
    import tracemalloc

    from cohere_batch_cli.tasks.table_prompts import TableSpec, render_requests

    class Discard:
        def write(self, data: bytes) -> None:
            pass

    class Quiet:
        def info(self, message: str) -> None:
            pass

    def peak(rows: int) -> int:
        table = write_parquet(
            tmp_path / f"t{rows}.parquet",
            {"n": list(range(rows)), "text": [f"{i:06d}" + "x" * 200 for i in range(rows)]},
            row_group_size=500,
        )
        tracemalloc.start()
        try:
            render_requests(TableSpec(table, "{{ n }}: {{ text }}"), Discard(), Quiet())  # type: ignore[arg-type]
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(200)  # Jinja2 and pyarrow loaded, the template cache warm
    small, large = peak(1500), peak(6000)
    assert large < small * 1.3 + 64 * 1024, (small, large)


@pytest.mark.parametrize(
    "template",
    [
        '{{ tags | join(", ") }}',
        "{{ tags }}",
        "{% for t in tags %}{{ t }}{% endfor %}",
        "{{ meta }}",
        "{{ tags | pprint }}",
        "{{ tags | tojson }}",
        "{{ meta | tojson }}",
        "{{ row }}",
    ],
)
def test_a_null_inside_a_list_or_a_struct_is_never_written_as_none(
    client: cb.Client, tmp_path: Path, posts: Any, template: str
) -> None:
    table = write_parquet(
        tmp_path / "t.parquet",
        {
            "tags": [["a", "b"], ["c", None]],
            "meta": [{"k": "x", "v": "y"}, {"k": "z", "v": None}],
        },
    )
    refused = refusal(client, table, template)
    column = "meta" if "meta" in template else "tags"
    assert refused.exit_code == 5
    assert f"{table}: row 2: column '{column}' holds a null (nothing was sent)" in str(refused)
    assert posts() == []


def test_lists_and_structs_without_nulls_stay_usable(
    client: cb.Client, api: Api, tmp_path: Path
) -> None:
    table = write_parquet(tmp_path / "t.parquet", {"tags": [["a", "b"], ["c", None]], "n": [1, 2]})
    records = sent_through(
        client, api, table,
        '{{ n }}: {{ tags | length }} {{ tags[0] }} {{ tags | select("defined") | join("+") }}',
    )  # fmt: skip
    assert prompts(records) == [("1", "1: 2 a a+b"), ("2", "2: 2 c c")]


@pytest.mark.parametrize(
    ("name", "content", "code", "says"),
    [
        ("nope.csv", None, 2, "cannot read nope.csv: no such file or folder"),
        (
            "t.xlsx",
            "x",
            2,
            "cannot tell the format of t.xlsx from its name; cbatch reads .csv, .parquet and .jsonl "
            "tables: save or export it as one of them",
        ),  # not "name it .csv": an Excel or a TSV file renamed is still not a CSV
        ("empty", "", 2, "empty holds no table file"),
        ("ragged.csv", "a,b\n1,2\n3\n", 5, "ragged.csv:3: 1 field, the header names 2"),
        ("header.csv", "", 5, "header.csv: empty: a CSV table needs a header line"),
        ("lines.jsonl", '{"a": 1}\n[1]\n', 5, "lines.jsonl:2: not a JSON object"),
        ("broken.jsonl", '{"a": 1}\n{"a": \n', 5, "broken.jsonl:2: not JSON"),
    ],
)
def test_a_table_cbatch_cannot_read_is_refused_in_one_line_and_nothing_is_sent(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, posts: Any,
    name: str, content: str | None, code: int, says: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    if name == "empty":
        (tmp_path / name).mkdir()
    elif content is not None:
        (tmp_path / name).write_text(content)
    result = cli("create", "--from", name, "--prompt", "{{ a }}", "--model", MODEL, exit_code=code)
    assert says in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert posts() == []


def test_a_table_over_the_dataset_limit_is_told_to_split_with_commands_that_take_the_table(
    cli: Cli, tmp_path: Path
) -> None:
    table = tmp_path / "reviews.csv"
    table.write_text("text\n" + "".join(f"review {n}\n" for n in range(50)), encoding="utf-8")

    refused = cli(
        "create", "--from", str(table), "--prompt", "Classify: {{ text }}",
        "--model", "command-r-08-2024", "--dry-run",
        env={"CBATCH_DATASET_MAX_BYTES": "2000"}, exit_code=5,
    )  # fmt: skip

    hint = refused.stderr.strip().splitlines()[-1].partition("nothing was uploaded")[2]
    assert "add --split to run the table's requests as one job of several batches" in hint
    assert f"cbatch jobs create --from {table} with the same options" in hint
    assert "(rendered)" not in hint and "split -l" not in hint  # no command takes cbatch's own file
    cli("create", "--from", str(table), "--prompt", "Classify: {{ text }}",
        "--model", "command-r-08-2024", "--dry-run", "--split",
        env={"CBATCH_DATASET_MAX_BYTES": "2000"})  # fmt: skip


def test_a_table_given_as_requests_is_pointed_to_from(
    client: cb.Client, cli: Cli, tmp_path: Path
) -> None:
    """A newcomer's first try: the CSV where requests are read. Its lines are not JSON, and the
    refusal says how to send its rows instead, on both doors and for a job too."""
    table = tmp_path / "reviews.csv"
    table.write_text("id,text\nr1,great phone\n")
    hint = (
        "reviews.csv is a table, not JSONL requests: make a request of each row with "
        "cbatch create --from reviews.csv --prompt TEMPLATE (in Python: cb.PromptTable)"
    )
    with nothing_printed():
        for send in (client.create, client.create_job):
            with pytest.raises(cb.InputRejected) as refused:
                send(table, model=MODEL)
            assert refused.value.exit_code == 5 and refused.value.hint == hint
    said = cli("create", "--file", str(table), "--model", MODEL, exit_code=5)
    assert said.stderr.splitlines()[-1] == (
        f"error: {table} has 2 problems; nothing was uploaded; {hint}"
    )


@pytest.mark.parametrize(
    "words",
    [(), ("--dry-run",)],
)
def test_a_folder_whose_files_disagree_on_a_column_type_is_refused_before_anything_is_sent(
    cli: Cli, tmp_path: Path, posts: Any, words: tuple[str, ...]
) -> None:
    """Spark parts written at different times may type a column differently: a table that
    ``results`` could not write back as one schema is refused at create, never after paying."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "fold"
    folder.mkdir()
    pq.write_table(pa.table({"n": pa.array([1, 2], pa.int32()), "t": ["a", "b"]}), folder / "part-00000.parquet")  # fmt: skip
    pq.write_table(pa.table({"n": ["3", "4"], "t": ["c", "d"]}), folder / "part-00001.parquet")
    result = cli(
        "create", "--from", str(folder), "--prompt", "{{ t }}", "--model", MODEL, *words,
        exit_code=5,
    )  # fmt: skip
    said = result.stderr.strip()
    assert len(said.splitlines()) == 1 and "Traceback" not in said
    assert f"{folder / 'part-00001.parquet'}: its column 'n' is string" in said
    assert f"{folder / 'part-00000.parquet'}'s is int32" in said
    assert posts() == []


def test_a_folder_whose_csv_files_name_other_columns_is_refused_before_anything_is_sent(
    cli: Cli, tmp_path: Path, posts: Any
) -> None:
    folder = tmp_path / "fold"
    folder.mkdir()
    write_csv(folder / "part-00000.csv", "t,n\na,1\n")
    write_csv(folder / "part-00001.csv", "t,m\nb,2\n")
    for command in (["estimate"], ["jobs", "create", "--dry-run"]):
        result = cli(
            *command, "--from", str(folder), "--prompt", "{{ t }}", "--model", MODEL, exit_code=5
        )
        assert f"{folder / 'part-00001.csv'}: its columns (t, m) are not those of" in result.stderr
    assert posts() == []


def test_parquet_files_whose_types_widen_without_loss_are_one_table_written_as_the_wider(
    client: cb.Client, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "fold"
    folder.mkdir()
    pq.write_table(pa.table({"n": pa.array([1, 2], pa.int32()), "t": ["a", "b"]}), folder / "part-00000.parquet")  # fmt: skip
    pq.write_table(pa.table({"n": pa.array([2**40], pa.int64()), "t": ["c"]}), folder / "part-00001.parquet")  # fmt: skip
    pq.write_table(pa.table({"n": pa.array([None], pa.null()), "t": ["d"]}), folder / "part-00002.parquet")  # fmt: skip
    with nothing_printed():
        run = client.create(cb.PromptTable(folder, "{{ t }}"), model=MODEL)
        run.wait(interval=0.1)
        run.results(tmp_path / "out.parquet")
        run.results(tmp_path / "out.csv")
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.schema.field("n").type == pa.int64()
    assert out.column("n").to_pylist() == [1, 2, 2**40, None]
    assert out.column("status").to_pylist() == ["succeeded"] * 4
    assert (tmp_path / "out.csv").read_text().splitlines()[3].startswith(f"{2**40},c,")


def test_an_id_column_that_gives_a_row_no_id_is_refused_for_every_row(
    client: cb.Client, tmp_path: Path, posts: Any
) -> None:
    """An empty id was refused by the check only when its row was sent (not when the row asked what
    an earlier one asked), and a list or a struct became its Python spelling (``['x', 'y']``) as a
    ``custom_id``: each is refused naming the row and the column, and nothing is sent."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    empty = tmp_path / "empty.csv"
    empty.write_text("id,text\nr1,same\n,same\n")  # the second row is never sent: it asks the same
    nested = tmp_path / "nested.parquet"
    pq.write_table(
        pa.table({"id": ["a"], "tags": [["x", "y"]], "meta": [{"k": 1}], "text": ["t"]}), nested
    )
    cases = [
        (empty, "id", f"{empty}: row 2: its id column 'id' is empty (nothing was sent)"),
        (nested, "tags", f"{nested}: row 1: its id column 'tags' holds a list, not an id (nothing was sent)"),
        (nested, "meta", f"{nested}: row 1: its id column 'meta' holds a struct, not an id (nothing was sent)"),
    ]  # fmt: skip
    with nothing_printed():
        for table, column, says in cases:
            with pytest.raises(cb.InputRejected) as refused:
                client.create(cb.PromptTable(table, "{{ text }}", id_column=column), model=MODEL)
            assert refused.value.exit_code == 5 and str(refused.value) == says
    assert posts() == []


def test_a_csv_separated_by_semicolons_is_said_to_be_one(cli: Cli, tmp_path: Path) -> None:
    """Its header reads as one column named ``id;text``: the refusal says why the column is missing."""
    table = tmp_path / "semi.csv"
    table.write_text("id;text\nr1;hello\n")
    said = cli(
        "create", "--from", str(table), "--prompt", "{{ text }}", "--model", MODEL, exit_code=2
    )
    assert said.stderr.strip() == (
        f"error: {table} has no column 'text'; its columns: id;text; its header is one column "
        "holding ';': cbatch reads CSV separated by commas"
    )


def test_arithmetic_on_a_csv_value_is_told_that_csv_values_are_text(
    client: cb.Client, tmp_path: Path, posts: Any
) -> None:
    """``{{ stars + 1 }}`` fails on a CSV (every value a string, as documented) with Python's own
    words; the refusal says how to make a number of one."""
    table = tmp_path / "r.csv"
    table.write_text("stars\n5\n")
    with nothing_printed(), pytest.raises(cb.InputRejected) as refused:
        client.create(cb.PromptTable(table, "{{ stars + 1 }} stars"), model=MODEL)
    assert str(refused.value).startswith(f"{table}: row 1: the template failed: ")
    assert (
        refused.value.hint
        == "a CSV's values are text: {{ x | int }} or {{ x | float }} makes one a number"
    )
    assert posts() == []
