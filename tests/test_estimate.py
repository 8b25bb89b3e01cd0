"""cbatch estimate, and the guards of create --file, against the real sandbox and small servers.

The sandbox bills by the rule docs/sandbox.md states, with its own code: an estimate
must equal its counts less the documented template overhead (3 per chat request, 4 per
message), record by record. The tokenizer comes from public storage: it must never see
the API key, must be fetched once, and must honour proxy and CA settings like the API.
"""

from __future__ import annotations

import json
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.sandbox import tokenizer as sandbox_tokenizer
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import FAIL, write_jsonl
from tests.support.model_server import ModelAPI, TokenizerHost

REQUEST, MESSAGE = 3, 4  # the sandbox's documented chat overheads
TRANSLATE = "command-a-translate-08-2025"  # 8,992 tokens of context: easy to overflow

CHATS: list[dict[str, Any]] = [
    {"custom_id": "plain", "body": {"messages": [{"role": "user", "content": "What is the capital of France?"}]}},
    {"custom_id": "parts", "body": {"max_tokens": 30, "messages": [
        {"role": "system", "content": "You answer in one word."},
        {"role": "user", "content": [
            {"type": "text", "text": "Describe "}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "text", "text": "this picture, café ☕ 東京"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "not counted"}, {"type": "text", "text": "A cup."}]},
        {"role": "user", "content": "And  the\n saucer? 12345"}]}},
    {"custom_id": "long", "body": {"messages": [{"role": "user", "content": "Tell me a long story. " * 40}]}},
    {"custom_id": "empty", "body": {"messages": [{"role": "user", "content": ""}], "tools": [{"type": "function"}]}},
]  # fmt: skip


def uploads(sandbox: Any) -> int:
    return sum(
        1
        for method, path, _ in sandbox.request_log
        if method == "POST" and path.startswith("/v1/datasets")
    )


def tokenizer_downloads(sandbox: Any) -> int:
    return sum(1 for _, path, _ in sandbox.request_log if path.startswith("/_sandbox/tokenizers/"))


def estimate_json(
    cli: Cli, *args: str, exit_code: int = 0, env: dict[str, str] | None = None
) -> dict[str, Any]:
    return json.loads(cli("estimate", *args, "--json", exit_code=exit_code, env=env).stdout)


def run_batch(cli: Cli, path: Path, model: str, *extra: str) -> dict[str, Any]:
    created = cli(
        "create", "--file", str(path), "--model", model, "--watch", "-q", *extra
    ).stdout.split()[0]
    return json.loads(cli("get", created, "--json").stdout)


def billed(cli: Cli, batch_id: str, tmp_path: Path) -> dict[str, dict[str, Any]]:
    out = tmp_path / f"{batch_id}.jsonl"
    cli("results", batch_id, "-o", str(out))
    return {r["custom_id"]: r for r in map(json.loads, out.read_text().splitlines())}


# -- the count equals the bill less the template ---------------------------------------------


def test_a_chat_estimate_is_the_sandbox_bill_less_its_template_tokens(
    cli: Cli, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "chat.jsonl", CHATS)
    estimate = estimate_json(cli, str(path), "--model", "command-r-08-2024")
    batch = run_batch(cli, path, "command-r-08-2024")
    results = billed(cli, batch["id"], tmp_path)
    text = sorted(
        results[r["custom_id"]]["body"]["usage"]["billed_units"]["input_tokens"]
        - REQUEST
        - MESSAGE * len(r["body"]["messages"])
        for r in CHATS
    )
    assert estimate["input_tokens"] == {
        "total": sum(text),
        "min": text[0],
        "median": (text[1] + text[2]) / 2,
        "max": text[-1],
    }
    messages = sum(len(r["body"]["messages"]) for r in CHATS)
    assert (
        int(batch["input_tokens"])
        == estimate["input_tokens"]["total"] + REQUEST * len(CHATS) + MESSAGE * messages
    )
    assert estimate["records"] == 4 and estimate["images"] == 1
    assert (
        estimate["output_tokens_bound"] == 30 + 3 * 4096
        and estimate["records_without_max_tokens"] == 3
    )
    assert estimate["context_length"] == 128_000 and estimate["over_context"] == {
        "count": 0,
        "records": [],
    }
    assert estimate["cost"] is None and "template tokens" in estimate["counts"]

    compared = estimate_json(
        cli, str(path), "--batch", batch["id"]
    )  # the model comes from the batch
    assert compared["model"] == "command-r-08-2024"
    assert compared["batch"]["difference"] == REQUEST * len(CHATS) + MESSAGE * messages
    assert compared["batch"]["like_for_like"] is True
    shown = cli("estimate", str(path), "--batch", batch["id"]).stdout
    assert (
        f"Batch:         {batch['id']} reports {batch['input_tokens']} input tokens for 4 records: +"
        in shown
    )


def test_an_embed_estimate_is_the_sandbox_bill_with_texts_cut_to_the_limit(
    cli: Cli, tmp_path: Path
) -> None:
    long = (
        "one two three four five six seven eight nine ten " * 60
    )  # far over embed-english-v3.0's 512
    rows = [
        {"custom_id": "texts", "body": {"texts": ["hello world", long], "input_type": "search_document"}},
        {"custom_id": "inputs", "body": {"input_type": "search_document", "inputs": [{"content": [
            {"type": "text", "text": "a b"}, {"type": "image_url", "image_url": {"url": "data:x"}}, {"type": "text", "text": "c"}]}]}},
        {"custom_id": "capped", "body": {"texts": [long], "max_tokens": 3, "input_type": "search_document"}},
        {"custom_id": "images", "body": {"images": ["data:image/png;base64,AAAA"], "input_type": "image"}},
    ]  # fmt: skip
    path = write_jsonl(tmp_path / "embed.jsonl", rows)
    estimate = estimate_json(cli, str(path), "--model", "embed-english-v3.0")
    batch = run_batch(cli, path, "embed-english-v3.0")
    assert (
        estimate["input_tokens"]["total"] == int(batch["input_tokens"])
        and batch["output_tokens"] == "0"
    )
    words = sandbox_tokenizer.count(long)
    assert words > 512
    assert (
        estimate["input_tokens"]["uncut"]
        == sandbox_tokenizer.count("hello world") + 2 * words + sandbox_tokenizer.count("a b") + 1
    )
    assert (estimate["texts"], estimate["truncated_texts"], estimate["images"]) == (4, 2, 2)
    assert "output_tokens_bound" not in estimate

    rows[0]["body"]["truncate"] = "NONE"
    strict = write_jsonl(tmp_path / "strict.jsonl", rows)
    result = cli(
        "estimate", str(strict), "--model", "embed-english-v3.0", exit_code=ExitCode.REFUSED
    )
    assert (
        f"strict.jsonl:1: text 2 has {words:,} tokens, over the limit of 512 of embed-english-v3.0 by {words - 512:,}"
        in result.stderr
    )
    assert "Over context:  1 record cannot fit" in result.stdout


# -- create --file: the context check and the budget --------------------------------------


def test_create_refuses_a_record_over_the_context_with_its_line_before_uploading(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    rows = [
        {"custom_id": "ok", "body": {"messages": [{"role": "user", "content": "hi"}]}},
        {"custom_id": "fits", "body": {"messages": [{"role": "user", "content": "hello " * 1500}]}},
        {"custom_id": "huge", "body": {"messages": [{"role": "user", "content": "x " * 10_000}]}},
        {
            "custom_id": "asks",
            "body": {"max_tokens": 9_000, "messages": [{"role": "user", "content": "short"}]},
        },
    ]
    path = write_jsonl(tmp_path / "long.jsonl", rows)
    before = uploads(sandbox)
    result = cli("create", "--file", str(path), "--model", TRANSLATE, exit_code=ExitCode.REFUSED)
    huge = sandbox_tokenizer.count("x " * 10_000)
    assert (
        f"long.jsonl:3: {huge:,} input tokens + 4,096 output tokens (assumed: no max_tokens) exceed the context length of {TRANSLATE}, 8,992 tokens, by {huge + 4096 - 8992:,}"
        in result.stderr
    )
    assert (
        f"long.jsonl:4: {sandbox_tokenizer.count('short')} input tokens + 9,000 output tokens (its max_tokens) exceed"
        in result.stderr
    )
    assert "long.jsonl:2" not in result.stderr
    assert result.stderr.rstrip().endswith(
        f"error: {path} has 2 records that cannot fit the context of {TRANSLATE} (8,992 tokens); nothing was uploaded"
    )
    assert uploads(sandbox) == before
    cli("create", "--file", str(path), "--model", TRANSLATE, "--no-context-check", "-q")
    assert uploads(sandbox) == before + 1


@pytest.mark.parametrize(
    "command",
    [["jobs", "create", "{path}"], ["create", "--file", "{path}", "--split"]],
    ids=["jobs create", "create --split"],
)
def test_a_job_refuses_a_record_over_the_context_as_create_file_does(
    cli: Cli, sandbox: Any, tmp_path: Path, command: list[str]
) -> None:
    """The job's one pass checks each record's context: the same lines, the same error, exit 5, nothing uploaded."""
    rows = [
        {"custom_id": "ok", "body": {"messages": [{"role": "user", "content": "hi"}]}},
        {"custom_id": "huge", "body": {"messages": [{"role": "user", "content": "x " * 10_000}]}},
        {"custom_id": "ok2", "body": {"messages": [{"role": "user", "content": "hello"}]}},
    ]
    path = write_jsonl(tmp_path / "long.jsonl", rows)
    args = [part.format(path=path) for part in command]
    single = cli("create", "--file", str(path), "--model", TRANSLATE, exit_code=ExitCode.REFUSED)
    before = uploads(sandbox)
    job = cli(
        *args, "--model", TRANSLATE, "--max-records-per-batch", "2", exit_code=ExitCode.REFUSED
    )
    huge = sandbox_tokenizer.count("x " * 10_000)
    line = f"long.jsonl:2: {huge:,} input tokens + 4,096 output tokens (assumed: no max_tokens) exceed the context length of {TRANSLATE}"
    refusal = f"error: {path} has 1 record that cannot fit the context of {TRANSLATE} (8,992 tokens); nothing was uploaded"
    dry = cli(
        *args, "--model", TRANSLATE, "--max-records-per-batch", "2", "--dry-run",
        exit_code=ExitCode.REFUSED,
    )  # fmt: skip
    for result in (single, job, dry):
        assert line in result.stderr and result.stderr.rstrip().endswith(refusal)
    assert uploads(sandbox) == before
    assert "checked; job" not in job.stderr  # refused before a part was planned

    job_id = cli(
        *args, "--model", TRANSLATE, "--max-records-per-batch", "2", "--no-context-check", "-q"
    )
    assert job_id.stdout.strip() and uploads(sandbox) == before + 2  # both parts sent


def test_a_job_whose_records_fit_by_size_says_so_once_and_reads_no_tokenizer(
    cli: Cli, sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox_tokenizer.tokenizer()
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    path = write_jsonl(tmp_path / "small.jsonl", CHATS)
    downloads = tokenizer_downloads(sandbox)
    result = cli("jobs", "create", str(path), "--model", "command-r-08-2024", "-q")
    assert (
        result.stderr.count(
            "every record fits the context of command-r-08-2024 (128,000 tokens), by its size"
        )
        == 1
    )
    assert tokenizer_downloads(sandbox) == downloads


def test_records_that_fit_by_their_size_need_no_tokenizer(
    cli: Cli, sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox_tokenizer.tokenizer()  # the sandbox keeps its own loaded copy; only cbatch loses the library
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    path = write_jsonl(tmp_path / "small.jsonl", CHATS)
    downloads = tokenizer_downloads(sandbox)
    result = cli(
        "create", "--file", str(path), "--model", "command-r-08-2024", "-q", "--strict-context"
    )
    assert (
        "every record fits the context of command-r-08-2024 (128,000 tokens), by its size"
        in result.stderr
    )
    assert tokenizer_downloads(sandbox) == downloads


def test_without_the_extra_create_says_once_the_check_was_skipped(
    cli: Cli, sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox_tokenizer.tokenizer()
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    rows = [
        {"custom_id": f"r{i}", "body": {"messages": [{"role": "user", "content": "hello " * 1000}]}}
        for i in range(3)
    ]
    path = write_jsonl(
        tmp_path / "near.jsonl", rows
    )  # 6,000 bytes + 4,096 assumed: only tokens can tell
    before = uploads(sandbox)
    strict = cli(
        "create",
        "--file",
        str(path),
        "--model",
        TRANSLATE,
        "--strict-context",
        exit_code=ExitCode.USAGE,
    )
    assert (
        "pip install 'tokenizers<1,>=0.20' (the [estimate] extra)" in strict.stderr
        and uploads(sandbox) == before
    )
    result = cli("create", "--file", str(path), "--model", TRANSLATE, "-q")
    assert result.stderr.count("the context check was skipped") == 1
    assert (
        "3 records are too long to clear by size" in result.stderr and "[estimate]" in result.stderr
    )
    assert uploads(sandbox) == before + 1 and len(result.stdout.split()) == 1

    refused = cli("estimate", str(path), "--model", TRANSLATE, exit_code=ExitCode.USAGE)
    assert (
        refused.stderr
        == "error: cbatch estimate needs the tokenizers library: pip install 'tokenizers<1,>=0.20' (the [estimate] extra)\n"
    )


def test_an_unlisted_model_skips_the_check_unless_strict(cli: Cli, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "any.jsonl", CHATS[:1])
    result = cli("create", "--file", str(path), "--model", "batch-only-model", "-q")
    assert (
        "the context check was skipped: the API lists no model 'batch-only-model'" in result.stderr
    )
    cli(
        "create",
        "--file",
        str(path),
        "--model",
        "batch-only-model",
        "--strict-context",
        exit_code=ExitCode.NOT_FOUND,
    )
    missing = cli(
        "estimate", str(path), "--model", "batch-only-model", exit_code=ExitCode.NOT_FOUND
    )
    assert "check the model name 'batch-only-model'" in missing.stderr


PRICES = {"CBATCH_INPUT_PRICE": "2.50", "CBATCH_OUTPUT_PRICE": "10"}


def test_max_cost_refuses_a_batch_over_budget_before_a_byte_is_sent(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "priced.jsonl", CHATS)
    estimate = estimate_json(cli, str(path), "--model", "command-r-08-2024", env=PRICES)
    tin, tout = estimate["input_tokens"]["total"], estimate["output_tokens_bound"]
    bound = (tin * 2.5 + tout * 10) / 1e6
    assert float(estimate["cost"]["total_bound"]) == pytest.approx(bound)
    before = uploads(sandbox)
    refused = cli(
        "create",
        "--file",
        str(path),
        "-m",
        "command-r-08-2024",
        "--max-cost",
        "0.10",
        exit_code=ExitCode.REFUSED,
        env=PRICES,
    )
    assert (
        f"error: priced.jsonl: at most 0.12 ({tin:,} input tokens + at most {tout:,} output tokens), over --max-cost 0.10; nothing was uploaded"
        in refused.stderr
    )
    tokens = cli(
        "create",
        "--file",
        str(path),
        "-m",
        "command-r-08-2024",
        "--max-input-tokens",
        "10",
        exit_code=ExitCode.REFUSED,
    )
    assert f"priced.jsonl: {tin:,} input tokens, over --max-input-tokens 10" in tokens.stderr
    unpriced = cli(
        "create",
        "--file",
        str(path),
        "-m",
        "command-r-08-2024",
        "--max-cost",
        "1",
        exit_code=ExitCode.USAGE,
    )
    assert "--max-cost needs prices for command-r-08-2024" in unpriced.stderr
    assert uploads(sandbox) == before
    accepted = cli(
        "create",
        "--file",
        str(path),
        "-m",
        "command-r-08-2024",
        "--max-cost",
        "$0.50",
        "-q",
        env=PRICES,
    )
    assert "within the budget" in accepted.stderr and uploads(sandbox) == before + 1
    over = cli(
        "estimate",
        str(path),
        "-m",
        "command-r-08-2024",
        "--max-cost",
        "0.1",
        exit_code=ExitCode.REFUSED,
        env=PRICES,
    )
    assert (
        "Cost:          at most 0.12 (prices from environment CBATCH_INPUT_PRICE, CBATCH_OUTPUT_PRICE)"
        in over.stdout
    )
    cli("create", "--dataset", "d", "-m", "m", "--max-cost", "1", exit_code=ExitCode.USAGE)


def test_prices_and_the_assumed_bound_come_from_the_profile(
    cli: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    isolated_env.parent.mkdir(parents=True, exist_ok=True)
    isolated_env.write_text(
        '[profiles.default]\nassumed_output_tokens = 100\n\n[profiles.default.prices."command-r-08-2024"]\ninput = 1\noutput = 2\n'
    )
    path = write_jsonl(tmp_path / "p.jsonl", CHATS[:1])
    estimate = estimate_json(cli, str(path), "-m", "command-r-08-2024")
    assert estimate["output_tokens_bound"] == 100 and estimate["assumed_max_tokens"] == 100
    assert estimate["cost"]["total_bound"] == str((estimate["input_tokens"]["total"] + 200) / 1e6)
    assert estimate["cost"]["prices_from"].startswith("profile 'default'")
    env = estimate_json(
        cli, str(path), "-m", "command-r-08-2024", env={"CBATCH_ASSUMED_OUTPUT_TOKENS": "7"}
    )
    assert env["output_tokens_bound"] == 7
    bad = cli(
        "estimate",
        str(path),
        "-m",
        "command-r-08-2024",
        exit_code=ExitCode.AUTH,
        env={"CBATCH_INPUT_PRICE": "1"},
    )
    assert "CBATCH_OUTPUT_PRICE is not set" in bad.stderr
    isolated_env.write_text('[profiles.default.prices."m"]\ninput = -1\noutput = 2\n')
    wrong = cli("estimate", str(path), "-m", "m", exit_code=ExitCode.AUTH)
    assert 'profiles.default.prices."m".input must be a number at least 0' in wrong.stderr


# -- the tokenizer: once, without the key, through the proxy and CA settings ------------------


def test_the_second_estimate_downloads_nothing(cli: Cli, sandbox: Any, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "twice.jsonl", CHATS)
    downloads = tokenizer_downloads(sandbox)
    first = estimate_json(cli, str(path), "-m", "command-r-08-2024")
    assert tokenizer_downloads(sandbox) == downloads + 1
    cached = list((tmp_path / "cache" / "cbatch" / "tokenizers").iterdir())
    assert len(cached) == 1 and cached[0].read_bytes() == sandbox_tokenizer.text()
    assert (
        estimate_json(cli, str(path), "-m", "embed-v4.0") != first
    )  # another model, the same tokenizer URL
    assert estimate_json(cli, str(path), "-m", "command-r-08-2024") == first
    assert tokenizer_downloads(sandbox) == downloads + 1

    cached[0].write_bytes(b"{not a tokenizer")
    assert estimate_json(cli, str(path), "-m", "command-r-08-2024") == first
    assert (
        tokenizer_downloads(sandbox) == downloads + 2
        and cached[0].read_bytes() == sandbox_tokenizer.text()
    )


@pytest.fixture
def storage() -> Iterator[TokenizerHost]:
    with TokenizerHost() as host:
        yield host


def model_api(tokenizer_url: str, context: int = 128_000) -> ModelAPI:
    return ModelAPI({"m": {"context_length": context, "tokenizer_url": tokenizer_url}})


def test_the_key_never_reaches_the_tokenizer_host(storage: TokenizerHost, tmp_path: Path) -> None:
    url = storage.add("t.json", sandbox_tokenizer.text()) + "?X-Goog-Signature=sig-SECRET"
    path = write_jsonl(tmp_path / "r.jsonl", CHATS)
    with model_api(url) as api:
        cli = Cli(api.base_url, TEST_KEY)
        first = cli("--debug", "estimate", str(path), "-m", "m", "--json")
        cli("estimate", str(path), "-m", "m")
    assert [r.headers.get("Authorization") for r in api.requests] == [f"Bearer {TEST_KEY}"] * 2
    (fetch,) = storage.requests  # the second estimate read the cache
    assert TEST_KEY not in json.dumps(fetch.headers) and "authorization" not in {
        k.lower() for k in fetch.headers
    }
    assert "x-client-name" not in {k.lower() for k in fetch.headers}
    assert "sig-SECRET" not in first.stderr + first.stdout, "the link's query is never shown"
    assert json.loads(first.stdout)["tokenizer"] == f"{storage.base_url}/tokenizers/t.json"


def test_a_proxy_setting_reaches_the_tokenizer_host(storage: TokenizerHost, tmp_path: Path) -> None:
    url = storage.add("t.json", sandbox_tokenizer.text(), host="tokenizers.invalid")
    path = write_jsonl(tmp_path / "r.jsonl", CHATS[:1])
    with model_api(url) as api:
        Cli(api.base_url, TEST_KEY)(
            "estimate",
            str(path),
            "-m",
            "m",
            env={"HTTP_PROXY": storage.base_url, "NO_PROXY": "127.0.0.1"},
        )
    (through,) = storage.requests
    assert through.target == "http://tokenizers.invalid/tokenizers/t.json"
    assert "authorization" not in {k.lower() for k in through.headers}


def test_the_ca_bundle_applies_to_the_tokenizer_host(tmp_path: Path) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    path = write_jsonl(tmp_path / "r.jsonl", CHATS[:1])
    with (
        TokenizerHost(tls=context) as host,
        model_api(host.add("t.json", sandbox_tokenizer.text())) as api,
    ):
        cli = Cli(api.base_url, TEST_KEY)
        refused = cli("estimate", str(path), "-m", "m", exit_code=ExitCode.SERVER)
        assert (
            "the tokenizer could not be downloaded from https://127.0.0.1" in refused.stderr
            and "--ca-bundle" in refused.stderr
        )
        cli("--ca-bundle", str(bundle), "estimate", str(path), "-m", "m")


def test_a_tokenizer_file_is_used_instead_of_a_download(
    storage: TokenizerHost, tmp_path: Path
) -> None:
    local = tmp_path / "tokenizer.json"
    local.write_bytes(sandbox_tokenizer.text())
    path = write_jsonl(tmp_path / "r.jsonl", CHATS)
    with model_api(storage.add("t.json", b"never fetched")) as api:
        cli = Cli(api.base_url, TEST_KEY)
        estimate = json.loads(
            cli("estimate", str(path), "-m", "m", "--tokenizer", str(local), "--json").stdout
        )
        assert estimate["tokenizer"] == str(local) and storage.requests == []
        unlisted = json.loads(
            cli("estimate", str(path), "-m", "other", "--tokenizer", str(local), "--json").stdout
        )
        assert (
            unlisted["context_length"] is None
            and unlisted["input_tokens"] == estimate["input_tokens"]
        )
        local.write_text("not json")
        broken = cli(
            "estimate", str(path), "-m", "m", "--tokenizer", str(local), exit_code=ExitCode.USAGE
        )
        assert broken.stderr.startswith(
            f"error: --tokenizer {local}: the tokenizer from {local} could not be read"
        )
        storage_gone = cli("estimate", str(path), "-m", "m", exit_code=ExitCode.SERVER)
        assert "could not be read" in storage_gone.stderr


def test_a_missing_tokenizer_file_on_storage_is_one_line(
    storage: TokenizerHost, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", CHATS[:1])
    with model_api(f"{storage.base_url}/tokenizers/gone.json") as api:
        result = Cli(api.base_url, TEST_KEY)(
            "estimate", str(path), "-m", "m", exit_code=ExitCode.SERVER
        )
    assert result.stderr == (
        f"error: the tokenizer could not be downloaded from {storage.base_url}/tokenizers/gone.json: "
        "the storage server answered 404\n"
    )


# -- afterwards ---------------------------------------------------------------------------------


def test_results_join_sets_the_count_beside_the_bill(cli: Cli, tmp_path: Path) -> None:
    rows = [
        *CHATS,
        {
            "custom_id": "fails",
            "body": {"messages": [{"role": "user", "content": f"{FAIL} on purpose"}]},
        },
    ]
    path = write_jsonl(tmp_path / "joined.jsonl", rows)
    batch = run_batch(cli, path, "command-r-08-2024")
    out = cli("results", batch["id"], "--join", str(path), "-o", str(tmp_path / "out.jsonl")).stderr
    estimate = estimate_json(cli, str(path), "-m", "command-r-08-2024")
    difference = int(batch["input_tokens"]) - estimate["input_tokens"]["total"]
    versus = (
        f"{-difference:,} more than the batch reports"
        if difference < 0
        else f"{difference:,} fewer than the batch reports"
        if difference > 0
        else "as many as the batch reports"
    )
    assert (
        f"batch {batch['id']} reports {int(batch['input_tokens']):,} input tokens for 4 of 5 records; the text of "
        f"all 5 counts {estimate['input_tokens']['total']:,}, {versus}; "
        "the 1 failed or missing record bills nothing, so this is not like for like"
    ) in out, "a difference in words, never a bare signed number (issue 24, item 9)"
    plain = cli("results", batch["id"], "-o", str(tmp_path / "out2.jsonl")).stderr
    assert "reports" not in plain, "without --join there is nothing to count"


def test_results_join_without_the_extra_still_downloads(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_jsonl(tmp_path / "j.jsonl", CHATS[:2])
    batch = run_batch(cli, path, "command-r-08-2024")
    sandbox_tokenizer.tokenizer()
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    out = cli("results", batch["id"], "--join", str(path), "-o", str(tmp_path / "out.jsonl")).stderr
    assert "wrote 2 records" in out
    assert (
        "no token comparison: comparing the tokens with the batch's needs the tokenizers library: pip install"
        in out
    )


def test_the_report_for_people(cli: Cli, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "people.jsonl", CHATS)
    shown = cli("estimate", str(path), "-m", "command-r-08-2024").stdout.splitlines()
    assert [line.split(":", 1)[0] for line in shown] == [
        "File", "Model", "Input tokens", "Output tokens", "Over context", "Images", "Cost", "Counts",
    ]  # fmt: skip
    assert shown[0] == f"File:          {path}: 4 chat records (batch-chat-v2-input)"
    assert (
        shown[3]
        == "Output tokens: at most 12,318: 3 records without max_tokens at the assumed 4,096"
    )
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(CHATS[0]) + "\n{oops\n")
    result = cli("estimate", str(broken), "-m", "command-r-08-2024", exit_code=ExitCode.REFUSED)
    assert (
        "broken.jsonl:2: not counted: invalid JSON" in result.stderr
        and "Not counted:   1 line" in result.stdout
    )
    cli("estimate", str(path), "-m", "m", "--type", "text", exit_code=ExitCode.USAGE)
    cli("estimate", str(tmp_path / "none.jsonl"), "-m", "m", exit_code=ExitCode.USAGE)


def test_the_client_reads_the_models_endpoint(sandbox: Any) -> None:
    from cohere_batch_cli.api.client import CohereClient

    with CohereClient(TEST_KEY, sandbox.base_url) as client:
        models = list(client.list_models(page_size=4))
        assert len(models) == len({m.name for m in models}) == 17
        embed = list(client.list_models(endpoint="embed"))
        assert embed and all(m.endpoints == ["embed"] for m in embed)
        (default,) = client.list_models(endpoint="chat", default_only=True)
        model = client.get_model(default.name)
        assert (model.name, model.context_length, model.is_deprecated) == (
            "command-a-03-2025",
            256_000,
            False,
        )
        assert model.tokenizer_url == f"{sandbox.base_url}/_sandbox/tokenizers/sandbox-bpe-v1.json"
        assert client.get_model("command-r").is_deprecated
