"""The fault matrix: every network-facing command against every kind of failure, as data.

``MATRIX`` below is the whole specification: for each command and fault, what
happens when the fault is *transient* (the first two API requests meet it,
then the API answers normally) and when it *lasts* (every API request meets
it). ``docs/reliability.md`` shows the same table, rendered by
:func:`render_markdown` and checked by the last test of this module.

The server is :class:`tests.support.fake_api.FakeApi`: a small stateful fake
of the API in which every fault but a 429 or a 503 strikes *after* the
request was acted on (the worst case for a client that repeats itself), so
the create cells prove that no second batch appears, and the upload cells
that an upload of unknown fate is not sent twice.

Every cell runs ``cbatch --retries 2 --request-timeout 0.2 <command>`` and asserts:
the exit code; on failure, one stderr line naming the fault, no traceback,
nothing on stdout (watch: only its outage log); a bounded number of API
requests and a bounded time; for create, at most one batch (exactly one
unless every attempt was refused); for results, no file under the final name
and no temporary file left.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY, Cli
from tests.support.cli_cache import cache_app_command
from tests.support.fake_api import FAULTS, REFUSALS, FakeApi
from tests.support.fault_server import FaultServer, batch_json
from tests.support.flows import chat_records, write_jsonl
from tests.support.part_server import DROP, ERROR, STALL, PartServer

# -- the specification ---------------------------------------------------------------------

GLOBAL_ARGS = ("--retries", "2", "--request-timeout", "0.2")
"""Every cell runs with these: two retries, a 0.2 s answer timeout."""
SLOW_SECONDS = 0.4
"""How late the slow fault answers: past the timeout."""
TRANSIENT_FAILURES = 2
"""A transient fault meets the first this-many API requests, then the API answers normally."""
CELL_SECONDS = 8.0
"""No cell may take longer than this: nothing hangs."""


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    max_requests: int
    """API requests the command may make in any cell: the bound on its retries."""


COMMANDS: dict[str, Command] = {
    "list": Command(("list", "--limit", "5"), max_requests=3),
    "get": Command(("get", "b-done"), max_requests=3),
    "create": Command(("create", "--name", "nightly", "--dataset", "ds-in", "--model", "command-r"), max_requests=9),
    "cancel": Command(("cancel", "b-run"), max_requests=4),  # + one quick GET: is b-run an id or a name?
    "watch": Command(("watch", "b-done", "--plain", "--interval", "0.05", "--max-interval", "0.1", "--outage-limit", "0.3s"), max_requests=20),
    "datasets upload": Command(("datasets", "upload", "requests.jsonl"), max_requests=6),
    "results": Command(("results", "b-done", "-o", "results.jsonl"), max_requests=9),
}  # fmt: skip

FAULT_NAMES: dict[str, str] = {
    "429": "429 with `Retry-After`",
    "500": "500",
    "503": "503",
    "html502": "HTML 502 from a proxy",
    "reset": "connection reset",
    "truncated": "truncated body",
    "not_json": "200 with a body that is not JSON",
    "wrong_shape": "200 with JSON of the wrong shape",
    "slow": "answer slower than `--request-timeout`",
    "trickle": "body trickling in, each read within `--request-timeout`",
    "storage_500": "storage: 500 on a part",
    "storage_drop": "storage: part cut off mid-file",
}
STORAGE_FAULTS = {"storage_500": ERROR, "storage_drop": DROP}
"""Faults of the pre-signed part links (results only), served by the part server."""


@dataclass(frozen=True)
class Ok:
    """Retried (where needed) and succeeded: exit 0."""

    note: str = ""
    retried: bool = True
    code: int = ExitCode.OK

    def doc(self) -> str:
        return ("retried, succeeds" if self.retried else "succeeds") + (
            f": {self.note}" if self.note else ""
        )


@dataclass(frozen=True)
class Fails:
    """Ends with this exit code and one stderr line holding ``fragment``."""

    code: ExitCode
    fragment: str
    note: str = ""

    def doc(self) -> str:
        return f"exit {int(self.code)}, `{self.fragment}`" + (f": {self.note}" if self.note else "")


MAY_EXIST = {
    "create": "the batch may have been created",
    "datasets upload": "the file may have been stored",
}
"""The hint an error carries when the request it ends may have been acted on."""

E6, E7 = ExitCode.SERVER, ExitCode.NETWORK
NOT_RETRIED = "a 200 is not retried"
LOOKUP = "the look-up finds the batch the lost answer created"
UPLOAD_FATE = "not repeated: the error says the file may have been stored"
CREATED_BUT = "the batch exists: the answer was unreadable; the error says so"
UNKNOWN_FATE = "one batch, never posted twice; the error says it may exist"

# (command, fault): (transient outcome, lasting outcome)
MATRIX: dict[tuple[str, str], tuple[Ok | Fails, Ok | Fails]] = {
    ("list", "429"): (Ok(), Fails(E6, "HTTP 429: rate limited")),
    ("list", "500"): (Ok(), Fails(E6, "HTTP 500: internal error")),
    ("list", "503"): (Ok(), Fails(E6, "HTTP 503: overloaded")),
    ("list", "html502"): (Ok(), Fails(E6, "HTTP 502: Bad Gateway")),
    ("list", "reset"): (Ok(), Fails(E7, "was lost")),
    ("list", "truncated"): (Ok(), Fails(E7, "closed the connection")),
    ("list", "not_json"): (Ok(), Fails(E6, "not JSON")),
    ("list", "wrong_shape"): (Fails(E6, "not a list of objects", NOT_RETRIED), Fails(E6, "not a list of objects")),
    ("list", "slow"): (Ok(), Fails(E7, "timed out")),
    ("list", "trickle"): (Ok(), Fails(E7, "timed out")),

    ("get", "429"): (Ok(), Fails(E6, "HTTP 429: rate limited")),
    ("get", "500"): (Ok(), Fails(E6, "HTTP 500: internal error")),
    ("get", "503"): (Ok(), Fails(E6, "HTTP 503: overloaded")),
    ("get", "html502"): (Ok(), Fails(E6, "HTTP 502: Bad Gateway")),
    ("get", "reset"): (Ok(), Fails(E7, "was lost")),
    ("get", "truncated"): (Ok(), Fails(E7, "closed the connection")),
    ("get", "not_json"): (Ok(), Fails(E6, "not JSON")),
    ("get", "wrong_shape"): (Fails(E6, "no 'batch' object", NOT_RETRIED), Fails(E6, "no 'batch' object")),
    ("get", "slow"): (Ok(), Fails(E7, "timed out")),
    ("get", "trickle"): (Ok(), Fails(E7, "timed out")),

    ("create", "429"): (Ok("posted again: a 429 is a refusal"), Fails(E6, "HTTP 429: rate limited", "no batch created")),
    ("create", "500"): (Ok(LOOKUP), Fails(E6, "HTTP 500: internal error", UNKNOWN_FATE)),
    ("create", "503"): (Ok("posted again: a 503 is a refusal"), Fails(E6, "HTTP 503: overloaded", "no batch created")),
    ("create", "html502"): (Ok(LOOKUP), Fails(E6, "HTTP 502: Bad Gateway", UNKNOWN_FATE)),
    ("create", "reset"): (Ok(LOOKUP), Fails(E7, "was lost", UNKNOWN_FATE)),
    ("create", "truncated"): (Ok(LOOKUP), Fails(E7, "closed the connection", UNKNOWN_FATE)),
    ("create", "not_json"): (Ok(LOOKUP), Fails(E6, "not JSON", UNKNOWN_FATE)),
    ("create", "wrong_shape"): (Fails(E6, "no 'batch' object", CREATED_BUT), Fails(E6, "no 'batch' object", CREATED_BUT)),
    ("create", "slow"): (Ok(LOOKUP), Fails(E7, "timed out", UNKNOWN_FATE)),
    ("create", "trickle"): (Ok(LOOKUP), Fails(E7, "timed out", UNKNOWN_FATE)),

    ("cancel", "429"): (Ok(), Fails(E6, "not cancelled: HTTP 429: rate limited")),
    ("cancel", "500"): (Ok("cancelling twice is harmless"), Fails(E6, "not cancelled: HTTP 500: internal error")),
    ("cancel", "503"): (Ok(), Fails(E6, "not cancelled: HTTP 503: overloaded")),
    ("cancel", "html502"): (Ok("cancelling twice is harmless"), Fails(E6, "not cancelled: HTTP 502: Bad Gateway")),
    ("cancel", "reset"): (Ok("cancelling twice is harmless"), Fails(E7, "not cancelled: the connection")),
    ("cancel", "truncated"): (Ok("cancelling twice is harmless"), Fails(E7, "closed the connection mid-answer")),
    ("cancel", "not_json"): (Ok(), Fails(E6, "not cancelled: POST /v2/batches/b-run:cancel answered 200")),
    ("cancel", "wrong_shape"): (Ok("the answer of a cancel is not read", retried=False), Ok("the answer of a cancel is not read", retried=False)),
    ("cancel", "slow"): (Ok("cancelling twice is harmless"), Fails(E7, "not cancelled: timed out")),
    ("cancel", "trickle"): (Ok("cancelling twice is harmless"), Fails(E7, "not cancelled: timed out")),

    ("watch", "429"): (Ok("the outage is logged"), Fails(E6, "HTTP 429: rate limited", "after --outage-limit")),
    ("watch", "500"): (Ok("the outage is logged"), Fails(E6, "HTTP 500: internal error", "after --outage-limit")),
    ("watch", "503"): (Ok("the outage is logged"), Fails(E6, "HTTP 503: overloaded", "after --outage-limit")),
    ("watch", "html502"): (Ok("the outage is logged"), Fails(E6, "HTTP 502: Bad Gateway", "after --outage-limit")),
    ("watch", "reset"): (Ok("the outage is logged"), Fails(E7, "was lost", "after --outage-limit")),
    ("watch", "truncated"): (Ok("the outage is logged"), Fails(E7, "closed the connection", "after --outage-limit")),
    ("watch", "not_json"): (Ok("the outage is logged"), Fails(E6, "not JSON", "after --outage-limit")),
    ("watch", "wrong_shape"): (Ok("the outage is logged"), Fails(E6, "no 'batch' object", "after --outage-limit")),
    ("watch", "slow"): (Ok("the outage is logged"), Fails(E7, "timed out", "after --outage-limit")),
    ("watch", "trickle"): (Ok("the outage is logged"), Fails(E7, "timed out", "after --outage-limit")),

    ("datasets upload", "429"): (Ok("sent again: a 429 is a refusal"), Fails(E6, "HTTP 429: rate limited", "nothing stored")),
    ("datasets upload", "500"): (Fails(E6, "HTTP 500: internal error", UPLOAD_FATE), Fails(E6, "HTTP 500: internal error", UPLOAD_FATE)),
    ("datasets upload", "503"): (Ok("sent again: a 503 is a refusal"), Fails(E6, "HTTP 503: overloaded", "nothing stored")),
    ("datasets upload", "html502"): (Fails(E6, "HTTP 502: Bad Gateway", UPLOAD_FATE), Fails(E6, "HTTP 502: Bad Gateway", UPLOAD_FATE)),
    ("datasets upload", "reset"): (Fails(E7, "was lost", UPLOAD_FATE), Fails(E7, "was lost", UPLOAD_FATE)),
    ("datasets upload", "truncated"): (Fails(E7, "closed the connection", UPLOAD_FATE), Fails(E7, "closed the connection", UPLOAD_FATE)),
    ("datasets upload", "not_json"): (Fails(E6, "not JSON", UPLOAD_FATE), Fails(E6, "not JSON", UPLOAD_FATE)),
    ("datasets upload", "wrong_shape"): (Fails(E6, "no 'id' value", UPLOAD_FATE), Fails(E6, "no 'id' value", UPLOAD_FATE)),
    ("datasets upload", "slow"): (Fails(E7, "timed out", UPLOAD_FATE), Fails(E7, "timed out", UPLOAD_FATE)),
    ("datasets upload", "trickle"): (Fails(E7, "timed out", UPLOAD_FATE), Fails(E7, "timed out", UPLOAD_FATE)),

    ("results", "429"): (Ok(), Fails(E6, "HTTP 429: rate limited", "no file written")),
    ("results", "500"): (Ok(), Fails(E6, "HTTP 500: internal error", "no file written")),
    ("results", "503"): (Ok(), Fails(E6, "HTTP 503: overloaded", "no file written")),
    ("results", "html502"): (Ok(), Fails(E6, "HTTP 502: Bad Gateway", "no file written")),
    ("results", "reset"): (Ok(), Fails(E7, "was lost", "no file written")),
    ("results", "truncated"): (Ok(), Fails(E7, "closed the connection", "no file written")),
    ("results", "not_json"): (Ok(), Fails(E6, "not JSON", "no file written")),
    ("results", "wrong_shape"): (Fails(E6, "no 'batch' object", NOT_RETRIED), Fails(E6, "no 'batch' object", "no file written")),
    ("results", "slow"): (Ok(), Fails(E7, "timed out", "no file written")),
    ("results", "trickle"): (Ok(), Fails(E7, "timed out", "no file written")),
    ("results", "storage_500"): (Ok("the part is fetched again"), Fails(E6, "after 5 attempts", "no file written, no temporary file left")),
    ("results", "storage_drop"): (Ok("resumed with a Range request"), Fails(E6, "after 5 attempts", "no file written, no temporary file left")),
}  # fmt: skip

MODES = ("transient", "lasting")
_FIRST_RESULTS: dict[str, str] = {}
CELLS = [
    pytest.param(
        command, fault, mode, outcomes[i], id=f"{command}-{fault}-{mode}".replace(" ", "_")
    )
    for (command, fault), outcomes in MATRIX.items()
    for i, mode in enumerate(MODES)
]


# -- running one cell ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def _api() -> Iterator[FakeApi]:
    server = FakeApi(slow_seconds=SLOW_SECONDS).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def _part_server() -> Iterator[PartServer]:
    with PartServer() as server:
        yield server


@pytest.fixture
def api(_api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    cache_app_command(monkeypatch)
    return _api.reset()


@pytest.fixture
def part_server(_part_server: PartServer) -> PartServer:
    _part_server.requests.clear()
    return _part_server


def _set_fault(api: FakeApi, parts: PartServer, fault: str, mode: str) -> None:
    times = TRANSIENT_FAILURES if mode == "transient" else math.inf
    if fault in STORAGE_FAULTS:
        plan = [STORAGE_FAULTS[fault]] * (TRANSIENT_FAILURES if mode == "transient" else 50)
        url = parts.add("out-1-0", api.parts["out-1-0"], plan)
        api.datasets["out-1"]["dataset_parts"][0]["url"] = url
    else:
        api.fail(fault, times)


@pytest.mark.parametrize(("command", "fault", "mode", "expected"), CELLS)
def test_cell(
    api: FakeApi,
    part_server: PartServer,
    tmp_path: Path,
    command: str,
    fault: str,
    mode: str,
    expected: Ok | Fails,
) -> None:
    write_jsonl(tmp_path / "requests.jsonl", chat_records(3))
    before = {p.name for p in tmp_path.iterdir()}
    _set_fault(api, part_server, fault, mode)
    spec = COMMANDS[command]

    started = time.monotonic()
    result = Cli(api.base_url, TEST_KEY)(*GLOBAL_ARGS, *spec.argv, exit_code=expected.code)
    took = time.monotonic() - started

    assert took < CELL_SECONDS, f"took {took:.1f}s"
    assert "Traceback" not in result.stderr
    assert api.api_requests() <= spec.max_requests, [r.path for r in api.requests]
    if isinstance(expected, Fails):
        lines = result.stderr.splitlines()
        naming = [line for line in lines if expected.fragment in line]
        assert len(naming) == 1 and lines[-1] == naming[0], result.stderr
        if command == "watch":  # stdout is the watch's log: only the outage is in it
            assert all("poll failed: " in line for line in result.stdout.splitlines()), (
                result.stdout
            )
        else:
            assert result.stdout == ""
    elif fault not in STORAGE_FAULTS:
        assert api.faults_left < TRANSIENT_FAILURES or math.isinf(api.faults_left), (
            "the fault was never met"
        )

    if isinstance(expected, Fails) and command in MAY_EXIST:
        # An error that leaves a create or an upload of unknown fate says so, or a re-run duplicates it.
        assert (MAY_EXIST[command] in result.stderr) == (
            expected.note in (UNKNOWN_FATE, CREATED_BUT, UPLOAD_FATE)
        )

    if command == "create":
        created = api.created("nightly")
        posts = api.count("POST /v2/batches")
        assert posts <= 3
        refused_every_time = fault in REFUSALS and mode == "lasting"
        assert len(created) == (0 if refused_every_time else 1), created
        if isinstance(expected, Ok):
            assert created[0]["id"] in result.stdout
            if fault not in REFUSALS:
                assert posts == 1, "a POST whose fate was unknown was sent again"
    if command == "datasets upload":
        posts = api.count("POST /v1/datasets")
        assert posts <= 3
        if fault not in REFUSALS:
            assert posts == 1, "an upload whose fate was unknown was sent again"
    new_files = (
        {p.name for p in tmp_path.iterdir()} - before - {"cache"}
    )  # cache: list's id completion
    if command == "results" and isinstance(expected, Ok):
        text = (tmp_path / "results.jsonl").read_text()
        assert len(text.splitlines()) == 3
        assert _FIRST_RESULTS.setdefault("text", text) == text, "a re-run wrote different bytes"
        assert new_files == {"results.jsonl"}, "a temporary file was left behind"
    else:
        assert new_files == set(), "a partial or temporary file was left behind"
    if command == "results":
        assert len(part_server.requests) <= 5
    if command == "watch" and isinstance(expected, Ok):
        assert "completed" in result.stdout.splitlines()[-1]


def test_every_command_meets_every_api_fault_in_the_table() -> None:
    for command in COMMANDS:
        for fault in FAULTS:
            assert (command, fault) in MATRIX, (command, fault)


# -- bounds the matrix does not reach ------------------------------------------------------


def test_a_stalled_part_download_is_bounded_by_timeout(api: FakeApi, tmp_path: Path) -> None:
    guard = 2.5  # without the bound, the part server is stopped after this long to end the test
    with PartServer() as parts:
        url = parts.add("out-1-0", api.parts["out-1-0"], [STALL] * 10)
        api.datasets["out-1"]["dataset_parts"][0]["url"] = url
        timer = threading.Timer(guard, parts.__exit__, (None, None, None))
        timer.start()
        started = time.monotonic()
        try:
            result = Cli(api.base_url, TEST_KEY)(
                "--request-timeout",
                "0.2",
                "results",
                "b-done",
                "-o",
                "results.jsonl",
                exit_code=ExitCode.SERVER,
            )
        finally:
            timer.cancel()
        took = time.monotonic() - started
    assert not (tmp_path / "results.jsonl").exists()
    assert "no data for 0.2 s" in result.stderr, result.stderr
    assert took < guard - 0.5


def test_a_failed_results_run_leaves_an_existing_file_as_it_was(
    api: FakeApi, tmp_path: Path
) -> None:
    final = tmp_path / "results.jsonl"
    final.write_text("the results of yesterday\n")
    with PartServer() as parts:
        url = parts.add("out-1-0", api.parts["out-1-0"], [DROP] * 10)
        api.datasets["out-1"]["dataset_parts"][0]["url"] = url
        Cli(api.base_url, TEST_KEY)(
            *GLOBAL_ARGS, "results", "b-done", "-o", "results.jsonl", exit_code=E6
        )
    assert final.read_text() == "the results of yesterday\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("mode", ["--json", "--jsonl", "--plain-default", "--format=csv"])
def test_a_listing_that_fails_after_its_first_page_exits_6_and_never_looks_complete(
    fault_server: FaultServer, mode: str
) -> None:
    first = (200, {}, {"batches": [batch_json("b-1"), batch_json("b-2")], "next_page_token": "t2"})
    fault_server.plans["GET /v2/batches"] = [first] + [(500, {}, {"message": "internal error"})] * 3
    args = [] if mode == "--plain-default" else [mode]
    result = Cli(fault_server.base_url, TEST_KEY)(
        *GLOBAL_ARGS, "list", "--all", *args, exit_code=E6
    )
    assert result.stderr.splitlines() == ["error: HTTP 500: internal error (after 2 retries)"]
    assert "b-1" in result.stdout and "b-2" in result.stdout  # streamed as the page arrived
    if mode == "--json":  # still one valid document; the exit code says it is incomplete
        assert [b["id"] for b in json.loads(result.stdout)] == ["b-1", "b-2"]


# -- the table in the docs -----------------------------------------------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
BEGIN, END = (
    "<!-- fault-matrix:begin (generated by tests/test_fault_matrix.py) -->",
    "<!-- fault-matrix:end -->",
)


def render_markdown() -> str:
    """The matrix as the markdown table that ``docs/reliability.md`` holds between its markers."""
    rows = [
        f"| fault | command | transient: fails {TRANSIENT_FAILURES}×, then answers | lasting: always fails |",  # noqa: RUF001 - the docs' sign
        "|---|---|---|---|",
    ]
    fault_order = list(FAULT_NAMES)
    command_order = list(COMMANDS)
    for command, fault in sorted(
        MATRIX, key=lambda k: (fault_order.index(k[1]), command_order.index(k[0]))
    ):
        transient, lasting = MATRIX[(command, fault)]
        rows.append(f"| {FAULT_NAMES[fault]} | `{command}` | {transient.doc()} | {lasting.doc()} |")
    return "\n".join(rows)


def test_the_docs_table_matches_the_matrix() -> None:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), text, re.S)
    assert match, f"{DOC} has no fault-matrix markers"
    assert match.group(1).strip() == render_markdown(), (
        "docs/reliability.md is out of date; regenerate with:\n"
        "  .venv/bin/python -c 'from tests.test_fault_matrix import render_markdown as r; print(r())'"
    )
