"""cbatch against a sandbox that behaves like the real service where it surprises (issue 13).

Each behaviour real clients recorded (CONTRACT.md, "What real clients have seen"), with
short lifetimes and small limits, lowered in the sandbox and in cbatch together (the
CBATCH_* settings), through the installed ``cbatch`` as a user's shell runs it: links
that expire mid-part, shuffled output with empty-string errors, COMPLETED batches that
lost records, a file over the dataset limit, an organisation over its storage, results
gone with their dataset's lifetime, and when results expire.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli.api.models import parse_time
from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from tests.conftest import TEST_KEY, Cli
from tests.sandbox.sandbox_client import Api, chat_lines
from tests.support.fake_api import FakeApi
from tests.support.installed import cbatch_env, cbatch_path
from tests.support.storage_proxy import StorageProxy


class Sandbox:
    """A sandbox of its own, a client to fill it, and the installed cbatch pointed at it."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        base = {
            "data_dir": tmp_path / "sandbox",
            "port": 0,
            "records_per_second": 5000.0,
            "output_ready_delay": 0.0,
        }
        self.server = SandboxServer(SandboxSettings(**{**base, **settings})).start()
        self.api = Api(self.server)
        self.cwd = tmp_path
        self.env: dict[str, str] = {}

    def close(self) -> None:
        self.api.close()
        self.server.stop()

    def cbatch(
        self, *args: str, exit_code: int = 0, url: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the installed cbatch; assert its exit code, that stderr has no traceback and no key."""
        result = subprocess.run(
            [cbatch_path(), *args],
            cwd=self.cwd,
            env=cbatch_env(url or self.server.base_url, self.cwd, **self.env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        shown = f"cbatch {' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        assert result.returncode == exit_code, shown
        assert "Traceback" not in result.stderr and TEST_KEY not in result.stdout + result.stderr, (
            shown
        )
        return result

    def requests(self, method: str, prefix: str) -> int:
        return sum(
            1 for m, path, _ in self.server.request_log if m == method and path.startswith(prefix)
        )


@pytest.fixture
def sandboxes(tmp_path: Path) -> Iterator[Any]:
    made: list[Sandbox] = []

    def make(**settings: Any) -> Sandbox:
        made.append(Sandbox(tmp_path, **settings))
        return made[-1]

    yield make
    for sandbox in made:
        sandbox.close()


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), result.stderr
    return lines[-1]


# -- links that expire in the middle of a part -------------------------------------------------------


def test_a_download_whose_links_expire_mid_part_completes_with_every_record_once(
    sandboxes: Any,
) -> None:
    # Links are signed to the second, so a 2 s link lives 1 to 2 s: long enough for a fresh
    # one to be used at once, surely dead after the 3.2 s hold.
    sbx = sandboxes(link_ttl=2, part_max_records=60)
    done = sbx.api.run(chat_lines(240))
    expected = [
        r["custom_id"] for r in sbx.api.results(done["output_dataset_id"])
    ]  # parts in index order
    with StorageProxy(
        sbx.server.base_url, hold=3.2
    ) as proxy:  # each part's first download cut after 3.2 s
        result = sbx.cbatch("--debug", "results", done["id"], "-o", "out.jsonl", url=proxy.base_url)
        seen = proxy.parts_seen()
    written = [
        json.loads(line)["custom_id"] for line in (sbx.cwd / "out.jsonl").read_text().splitlines()
    ]
    assert written == expected, (
        "every record exactly once, in the same order as an uninterrupted download"
    )
    assert len(set(written)) == 240

    by_part: dict[str, list[Any]] = {}
    for request in seen:
        by_part.setdefault(request.path.split("?")[0], []).append(request)
    assert len(by_part) == 4
    for requests in by_part.values():
        assert requests[0].cut and requests[0].range is None, (
            "each part's first download was cut off"
        )
        assert requests[-1].status == 206 and requests[-1].range not in (None, "bytes=0-"), (
            "resumed where it stopped"
        )
        assert 400 in [r.status for r in requests], "its link had expired by then"
    assert "part links expired during the download" in result.stderr
    assert "/v1/datasets/" in result.stderr, "--debug traces the API call that renewed them"
    assert (
        "X-Goog-Signature" not in result.stdout + result.stderr
        and "/_sandbox/parts/" not in result.stderr
    )
    storage = [
        headers
        for _, path, headers in sbx.server.request_log
        if path.startswith("/_sandbox/parts/")
    ]
    assert storage and not [h for h in storage if "authorization" in {k.lower() for k in h}], (
        "no key to storage"
    )

    again = sbx.cbatch("results", done["id"], "-o", "direct.jsonl", "--concurrency", "1")
    assert (sbx.cwd / "direct.jsonl").read_bytes() == (sbx.cwd / "out.jsonl").read_bytes()
    assert "part links expired" not in again.stderr


# -- records in any order, empty-string errors, and records that never came back ----------------------


def test_shuffled_output_is_written_in_a_stable_order_with_empty_errors_as_successes(
    sandboxes: Any,
) -> None:
    sbx = sandboxes(part_max_records=30)
    done = sbx.api.run(chat_lines(100, fail={3}))
    held = sbx.api.results(done["output_dataset_id"])
    assert {r["error"] for r in held} == {
        "",
        held[[r["custom_id"] for r in held].index("r3")]["error"],
    }
    first = sbx.cbatch("results", done["id"], "-o", "a.jsonl")
    sbx.cbatch("results", done["id"], "-o", "b.jsonl", "--concurrency", "1")
    assert (sbx.cwd / "a.jsonl").read_bytes() == (sbx.cwd / "b.jsonl").read_bytes()
    lines = [json.loads(line) for line in (sbx.cwd / "a.jsonl").read_text().splitlines()]
    order = [r["custom_id"] for r in lines]
    assert order == [r["custom_id"] for r in held] and order != [f"r{i}" for i in range(100)]
    assert "(99 succeeded, 1 failed)" in first.stderr and "warning" not in first.stderr
    assert [r["custom_id"] for r in lines if "error" in r] == ["r3"]


def test_a_completed_batch_that_lost_records_says_so_in_one_warning(sandboxes: Any) -> None:
    sbx = sandboxes(missing_rate=0.2, seed=3)
    data = chat_lines(100)
    (sbx.cwd / "in.jsonl").write_bytes(data)
    done = sbx.api.run(data)
    assert done["status"] == "BATCH_STATUS_COMPLETED"
    kept = {r["custom_id"] for r in sbx.api.results(done["output_dataset_id"])}
    lost = {f"r{i}" for i in range(100)} - kept
    assert lost

    plain = sbx.cbatch("results", done["id"], "-o", "out.jsonl")
    [warning] = [line for line in plain.stderr.splitlines() if line.startswith("warning:")]
    assert (
        f"the batch reports 100 records ({len(kept)} succeeded, 0 failed, {len(lost)} neither)"
        in warning
    )
    assert (
        f"{len(lost)} records have no result (--join with the batch's input file names them)"
        in warning
    )

    joined = sbx.cbatch("results", done["id"], "-o", "joined.jsonl", "--join", "in.jsonl")
    [warning] = [line for line in joined.stderr.splitlines() if line.startswith("warning:")]
    assert f"{len(lost)} requests in in.jsonl have no result: " in warning
    named = warning.split("have no result: ")[-1].split(" and ")[0].split(", ")
    assert named and set(named) <= lost


# -- limits: one dataset, the organisation ----------------------------------------------------------


def test_a_file_one_byte_over_the_dataset_limit_is_refused_before_upload(sandboxes: Any) -> None:
    data = chat_lines(20)
    limit = len(data) - 1
    sbx = sandboxes(dataset_max_bytes=limit)
    sbx.env["CBATCH_DATASET_MAX_BYTES"] = str(limit)
    (sbx.cwd / "big.jsonl").write_bytes(data)
    for args in (
        ["datasets", "upload", "big.jsonl"],
        ["create", "--file", "big.jsonl", "--model", "command-r-08-2024"],
    ):
        refused = sbx.cbatch(*args, exit_code=ExitCode.REFUSED)
        assert refused.stderr.count("\n") == 1, refused.stderr
        line = error_line(refused)
        assert f"big.jsonl is {len(data):,} bytes, 1 byte over the limit of {limit:,} bytes" in line
        assert "nothing was uploaded" in line
        assert (
            "split it into 2 files of at most 17 lines" in line
        )  # 20 lines, a tenth of the limit spare
        assert (
            "split -l 17 big.jsonl big-part-" in line and "add --split to run it as one job" in line
        )
    assert sbx.requests("POST", "/v1/datasets") == 0, "not a byte was sent"

    (sbx.cwd / "fits.jsonl").write_bytes(
        data[:limit]
    )  # exactly at the limit (a last line without newline)
    sbx.cbatch("datasets", "upload", "fits.jsonl", "-q")


def test_the_services_own_size_refusal_gets_the_way_to_split(sandboxes: Any) -> None:
    sbx = sandboxes(dataset_max_bytes=1000)  # lower than cbatch knows: the service refuses
    (sbx.cwd / "in.jsonl").write_bytes(chat_lines(40))
    line = error_line(sbx.cbatch("datasets", "upload", "in.jsonl", exit_code=ExitCode.REFUSED))
    assert "HTTP 400: dataset too large" in line and "over the limit of 1,000 bytes" in line
    assert "split -l " in line and "lower dataset_max_bytes" in line


def test_an_organisation_over_its_storage_gets_the_recorded_message_and_what_to_delete(
    sandboxes: Any,
) -> None:
    data = chat_lines(50)
    assert len(data) == 4430
    sbx = sandboxes(org_max_bytes=len(data) + 100)
    sbx.env["CBATCH_ORG_MAX_BYTES"] = str(len(data) + 100)
    (sbx.cwd / "in.jsonl").write_bytes(data)
    first = sbx.cbatch("datasets", "upload", "in.jsonl", "--wait", "-q").stdout.strip()
    line = error_line(sbx.cbatch("datasets", "upload", "in.jsonl", exit_code=ExitCode.REFUSED))
    assert "HTTP 400: You have exceeded capacity" in line
    assert "the organisation stores 4.4 KB of its 4.5 KB (cbatch datasets usage)" in line
    assert "delete datasets it no longer needs with: cbatch datasets delete ID" in line
    assert f"(the largest: {first} " in line
    usage = sbx.cbatch("datasets", "usage").stdout
    assert usage.startswith(f"4.4 KB of 4.5 KB ({len(data):,} bytes, 98 %)")


# -- lifetimes: when results expire, and results that have ----------------------------------------


def test_expired_results_are_exit_13_and_their_expiry_shows_beforehand(sandboxes: Any) -> None:
    # 8 s: the checks before the expiry take a few seconds on a loaded machine, and
    # "not within a second yet" must still hold when the last of them runs.
    sbx = sandboxes(dataset_ttl=8.0)
    sbx.env["CBATCH_DATASET_TTL"] = "8s"
    done = sbx.api.run(chat_lines(3))
    ended = parse_time(done["updated_at"])
    assert ended is not None

    shown = sbx.cbatch(
        "get", done["id"]
    ).stdout  # off a terminal: the raw moment, ended + the lifetime
    expires_at = (ended + timedelta(seconds=8)).strftime("%Y-%m-%dT%H:%M:%S")
    assert f"Results expire: {expires_at}" in shown.replace("  ", " ").replace("  ", " ")
    assert "Expires" in sbx.cbatch("datasets", "get", done["output_dataset_id"]).stdout
    before = len(sbx.server.request_log)
    listed = sbx.cbatch("list", "--expiring", "1h", "--format", "table").stdout
    assert "RESULTS EXPIRE" in listed and done["id"] in listed and "in " in listed
    assert [
        path
        for _, path, _ in sbx.server.request_log[before:]
        if not path.startswith("/v2/batches?")
    ] == []
    assert done["id"] not in sbx.cbatch("list", "--expiring", "1s").stdout, (
        "not within a second yet"
    )

    time.sleep(max(0.0, ended.timestamp() + 8.3 - time.time()))
    expired = sbx.cbatch("results", done["id"], exit_code=ExitCode.RESULTS_EXPIRED)
    assert expired.stderr.count("\n") == 1
    assert f"the results of batch {done['id']} expired at " in error_line(expired)
    assert f"{expires_at}Z" in sbx.cbatch("get", done["id"]).stdout, "still shown once passed"
    assert done["id"] not in sbx.cbatch("list", "--expiring", "30d").stdout
    assert not list(sbx.cwd.glob(f"{done['id']}*")), "no file written"


def test_an_output_deleted_before_its_lifetime_is_a_plain_not_found(sandboxes: Any) -> None:
    sbx = sandboxes()
    done = sbx.api.run(chat_lines(2))
    assert sbx.api.http.delete(f"/v1/datasets/{done['output_dataset_id']}").status_code == 200
    line = error_line(sbx.cbatch("results", done["id"], exit_code=ExitCode.NOT_FOUND))
    assert "its output dataset is gone: it was deleted before its 30 days were up" in line


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    server = FakeApi().start()
    yield server
    server.stop()


def test_an_output_that_answers_404_expired_only_past_its_lifetime(fake_api: FakeApi) -> None:
    del fake_api.datasets["out-1"]  # b-done ended an hour ago and names out-1
    cli = Cli(fake_api.base_url, TEST_KEY)
    gone = cli("results", "b-done", exit_code=ExitCode.NOT_FOUND)
    assert "names output dataset out-1, which does not exist" in gone.stderr
    expired = cli(
        "results", "b-done", exit_code=ExitCode.RESULTS_EXPIRED, env={"CBATCH_DATASET_TTL": "30m"}
    )
    assert (
        "the results of batch b-done expired at " in expired.stderr
        and expired.stderr.count("\n") == 1
    )


# -- the limits as settings ----------------------------------------------------------------------


def test_limits_come_from_the_environment_then_the_profile(isolated_env: Path) -> None:
    isolated_env.parent.mkdir(parents=True, exist_ok=True)
    isolated_env.write_text('[profiles.default]\ndataset_max_bytes = 5000\ndataset_ttl = "2d"\n')
    isolated_env.chmod(0o600)
    shown = Cli(None, TEST_KEY)("config", env={"CBATCH_ORG_MAX_BYTES": "2GB"}).stdout
    assert "dataset max bytes  5,000  (dataset_max_bytes in profile 'default'" in shown
    assert "org max bytes      2,000,000,000  (environment CBATCH_ORG_MAX_BYTES)" in shown
    assert "dataset ttl        2d  (dataset_ttl in profile 'default'" in shown
    bad = Cli(None, TEST_KEY)("config", exit_code=ExitCode.AUTH, env={"CBATCH_DATASET_TTL": "soon"})
    assert (
        bad.stderr
        == "error: dataset_ttl from environment CBATCH_DATASET_TTL: 'soon' is not a duration; use e.g. 90, 90s, 15m or 2h\n"
    )


def test_a_setting_takes_every_duration_an_option_takes(isolated_env: Path) -> None:
    """One parser for options and settings: ``1h30m`` works for --timeout, so it works here."""
    shown = Cli(None, TEST_KEY)("config", env={"CBATCH_DATASET_TTL": "1h30m"}).stdout
    assert "dataset ttl        90m  (environment CBATCH_DATASET_TTL)" in shown
