"""What a new user tripped over (issue 18): short ids, refusals in one line, scripts' recipes,
notifications, throttled logs, completion and defaults from the environment."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.api.models import Batch
from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.output.watch_views import PlainRenderer
from cohere_batch_cli.watcher import Progress, Snapshot, StatusChanged
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, make_batch, make_dataset, wait_terminal, write_jsonl

CBATCH = str(Path(sys.executable).parent / "cbatch")


@pytest.fixture
def client(sandbox: Any) -> Any:
    with CohereClient(TEST_KEY, sandbox.base_url) as c:
        yield c


def one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


# -- short ids and exact names -----------------------------------------------------------------


def test_a_unique_prefix_or_an_exact_name_finds_the_batch(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    batch = make_batch(client, tmp_path, 1, name=f"by-name-{time.monotonic_ns()}")
    shown = cli("get", batch.id[:13], "-q")
    assert shown.stdout.strip() == batch.id and f"is batch {batch.id}" in shown.stderr
    assert cli("get", batch.name, "-q").stdout.strip() == batch.id
    assert cli("get", batch.id[:8], "-q").stdout.strip() == batch.id


def test_an_ambiguous_name_is_refused_with_the_candidates(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    name = f"twice-{time.monotonic_ns()}"
    first, second = (make_batch(client, tmp_path, 1, name=name) for _ in range(2))
    line = one_line_error(cli("get", name, exit_code=ExitCode.USAGE).stderr)
    assert "matches 2 batches" in line and first.id in line and second.id in line


def test_nothing_matching_is_not_found(cli: Cli) -> None:
    line = one_line_error(cli("get", "no-such-batch-anywhere", exit_code=ExitCode.NOT_FOUND).stderr)
    assert "404" in line
    one_line_error(cli("watch", "ffff0000", exit_code=ExitCode.NOT_FOUND).stderr)


def test_cancel_refuses_a_prefix_off_a_terminal_without_yes(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    batch = make_batch(client, tmp_path, 2000, name="cancel-by-prefix")
    line = one_line_error(cli("cancel", batch.id[:12], exit_code=ExitCode.USAGE).stderr)
    assert "not a whole batch id" in line and "--yes" in line
    done = cli("cancel", batch.id[:12], "--yes")
    assert f"{batch.id}: cancel requested" in done.stderr


def test_cancel_reads_ids_from_stdin_and_nothing_is_fine(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    nothing = cli("cancel", "-", input="")
    assert "nothing to cancel" in nothing.stderr
    batch = make_batch(client, tmp_path, 2000, name="cancel-stdin")
    result = cli("cancel", "-", input=f"{batch.id}\n")
    assert f"{batch.id}: cancel requested" in result.stderr


def test_the_documented_xargs_recipe_is_safe_with_nothing_to_cancel(
    sandbox: Any, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "CO_API_KEY": TEST_KEY,
        "CO_API_URL": sandbox.base_url,
        "PATH": f"{Path(CBATCH).parent}:{os.environ['PATH']}",
    }
    for recipe in (
        "cbatch list -q --status canceling --name no-such-name | cbatch cancel -",
        "cbatch list -q --status canceling --name no-such-name | xargs -r cbatch cancel",
    ):
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", recipe],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, (recipe, done.stderr)


# -- refusals in one line ---------------------------------------------------------------------


def test_an_empty_name_is_refused(cli: Cli, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", chat_records(1))
    one_line_error(
        cli(
            "create", "--file", str(path), "--model", "m", "--name", "", exit_code=ExitCode.USAGE
        ).stderr
    )
    one_line_error(
        cli("datasets", "upload", str(path), "--name", " ", exit_code=ExitCode.USAGE).stderr
    )


def test_an_unknown_dataset_type_or_validation_status_is_refused(cli: Cli) -> None:
    line = one_line_error(
        cli("datasets", "list", "--type", "bogus", exit_code=ExitCode.USAGE).stderr
    )
    assert "unknown dataset type 'bogus'" in line and "batch-chat-v2-input" in line
    one_line_error(cli("datasets", "list", "--validation", "done", exit_code=ExitCode.USAGE).stderr)


def test_a_max_interval_below_the_interval_is_refused(cli: Cli) -> None:
    line = one_line_error(
        cli(
            "watch", "some-id", "--interval", "60", "--max-interval", "10", exit_code=ExitCode.USAGE
        ).stderr
    )
    assert "--max-interval (10s) is shorter than --interval (1m)" in line


def test_typos_in_the_config_file_are_warned_about(cli: Cli, isolated_env: Path) -> None:
    isolated_env.parent.mkdir(parents=True, exist_ok=True)
    isolated_env.write_text(
        '[profile.default]\napi-key = "x"\n[profiles.default]\napi-key = "y"\n', encoding="utf-8"
    )
    isolated_env.chmod(0o600)
    stderr = Cli(None, None)("config").stderr
    assert "'profile' is not a setting cbatch reads (did you mean 'profiles'?)" in stderr
    assert (
        "profiles.default.api-key is not a setting cbatch reads (did you mean 'api_key'?)" in stderr
    )


def test_cbatch_model_is_the_default_model(cli: Cli, tmp_path: Path, client: CohereClient) -> None:
    dataset_id = make_dataset(client, write_jsonl(tmp_path / "m.jsonl", chat_records(1)))
    created = json.loads(
        cli(
            "create",
            "-d",
            dataset_id,
            "-n",
            "env-model",
            "--json",
            env={"CBATCH_MODEL": "command-from-env"},
        ).stdout
    )
    assert created["model"] == "command-from-env"
    assert "environment CBATCH_MODEL" in cli("config", env={"CBATCH_MODEL": "x"}).stdout


def test_create_watch_takes_the_watch_options(cli: Cli, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", chat_records(3))
    result = cli(
        "create",
        "--file",
        str(path),
        "-m",
        "m",
        "--watch",
        "--plain",
        "--timeout",
        "1h",
        "--interval",
        "0.1",
        "--max-interval",
        "0.5",
    )
    assert "completed: 3/3 records" in result.stdout
    one_line_error(
        cli(
            "create", "--file", str(path), "-m", "m", "--timeout", "1h", exit_code=ExitCode.USAGE
        ).stderr
    )


# -- --on-done ------------------------------------------------------------------------------


def test_on_done_runs_with_the_outcome_in_its_environment_only(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    hostile = "x'; touch pwned; echo '$(touch pwned2)"
    dataset_id = make_dataset(client, write_jsonl(tmp_path / "h.jsonl", chat_records(2, fail={1})))
    batch = client.create_batch(name=hostile, input_dataset_id=dataset_id, model="command-r")
    record = tmp_path / "seen.json"
    script = tmp_path / "hook.py"
    script.write_text(
        "import json, os, sys\nprint('notified')\n"
        "json.dump({k: v for k, v in os.environ.items() if k.startswith('CBATCH_')}, open(sys.argv[1], 'w'))\n"
    )
    hook = shlex.join([sys.executable, str(script), str(record)])
    result = cli("watch", batch.id, "--plain", "--interval", "0.05", "--on-done", hook)
    seen = json.loads(record.read_text())
    assert seen["CBATCH_BATCH_ID"] == batch.id and seen["CBATCH_BATCH_NAME"] == hostile
    assert seen["CBATCH_BATCH_STATUS"] == "completed" and seen["CBATCH_EXIT_CODE"] == "0"
    assert (seen["CBATCH_RECORDS"], seen["CBATCH_SUCCEEDED"], seen["CBATCH_FAILED"]) == (
        "2",
        "1",
        "1",
    )
    assert seen["CBATCH_RESULTS_COMMAND"].startswith(f"cbatch results {batch.id} -o ")
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    assert "on-done: notified" in result.stderr and "notified" not in result.stdout


def test_a_failing_on_done_command_is_a_warning_not_the_outcome(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    batch = make_batch(client, tmp_path, 1, name="hook-fails")
    result = cli("watch", batch.id, "--plain", "--on-done", "exit 3")
    assert "--on-done for batch" in result.stderr and "exited 3" in result.stderr


# -- the plain watch log ------------------------------------------------------------------------


class Lines:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def _batch(status: str, done: int) -> Batch:
    return Batch.from_api(
        {
            "id": "b-1",
            "name": "log",
            "status": f"BATCH_STATUS_{status}",
            "num_records": 7200,
            "num_successful_records": done,
        }
    )


def test_plain_progress_lines_are_throttled_and_status_changes_always_print() -> None:
    from datetime import datetime, timezone

    lines = Lines()
    view = PlainRenderer(
        lines,
        now=lambda: datetime(2026, 11, 29, 4, 21, 30, tzinfo=timezone.utc),
        progress_every=30.0,
    )
    view.handle([Snapshot(_batch("QUEUED", 0), None, None, 0.0)])
    view.handle(
        [
            StatusChanged(
                _batch("IN_PROGRESS", 1),
                _batch("QUEUED", 0).status,
                _batch("IN_PROGRESS", 1).status,
                None,
                None,
                2.0,
            )
        ]
    )
    for second in range(4, 7200, 2):  # two hours of progress every 2 s
        view.handle([Progress(_batch("IN_PROGRESS", second), 1.0, None, float(second))])
    printed = lines.text.splitlines()
    assert len(printed) <= 2 + 7200 // 30 + 1, len(printed)
    assert printed[0].startswith("2026-11-29 04:21:30Z  log (b-1)  queued")
    assert ": queued -> in progress" in printed[1]


# -- completion ---------------------------------------------------------------------------------


def complete(words: str, env: dict[str, str] | None = None) -> list[str]:
    full = {
        **os.environ,
        **(env or {}),
        "_CBATCH_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    done = subprocess.run([CBATCH], env=full, capture_output=True, text=True, timeout=30)
    return done.stdout.split()


def test_completion_offers_statuses_and_types_not_file_names(tmp_path: Path) -> None:
    (tmp_path / "in_progress_notes.txt").write_text("")
    assert complete("cbatch list --status in") == ["in_progress"]
    assert "completed" in complete("cbatch list --status ")
    assert complete("cbatch datasets list --type batch-chat-v2-o") == ["batch-chat-v2-output"]
    assert complete("cbatch list --format t") == ["table", "text"]


def test_completion_offers_dataset_ids_from_the_last_listing(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    dataset_id = make_dataset(client, write_jsonl(tmp_path / "complete-me.jsonl", chat_records(1)))
    cli("datasets", "list")
    assert dataset_id in complete(
        f"cbatch datasets get {dataset_id[:6]}",
        {"XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"], "CO_API_URL": cli.base_url or ""},
    )


# -- list --watch ---------------------------------------------------------------------------------


def test_list_watch_appends_a_row_when_a_batch_changes(
    sandbox: Any, client: CohereClient, tmp_path: Path
) -> None:
    import threading

    env = {**os.environ, "CO_API_KEY": TEST_KEY, "CO_API_URL": sandbox.base_url}
    polls_before = len(sandbox.request_log)
    child = subprocess.Popen(
        [CBATCH, "list", "--watch", "--limit", "3", "--interval", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    assert child.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(child.stdout or ()), daemon=True)
    reader.start()

    def wait_for(what: str, done: Any, limit: float = 30.0) -> None:
        deadline = time.monotonic() + limit
        while not done():
            assert time.monotonic() < deadline, f"{what}: {lines}"
            time.sleep(0.05)

    try:
        # Watching once it polls a second time (the listing is the first request): on a loaded
        # machine that is seconds after the start, never a fixed sleep.
        wait_for("the watch polls", lambda: sum(
            1 for m, p, _ in sandbox.request_log[polls_before:] if m == "GET" and p.startswith("/v2/batches")
        ) >= 2)  # fmt: skip
        batch = make_batch(client, tmp_path, 3, name="appears-while-watched")
        wait_terminal(client, batch.id)
        wait_for("a completed row", lambda: any(
            batch.id in line and line.split("\t")[2] == "completed" for line in list(lines)
        ))  # fmt: skip
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(timeout=20)
        reader.join(timeout=20)
        child.stdout.close()
        assert child.stderr is not None
        child.stderr.close()
    rows = [line for line in lines if batch.id in line]
    assert rows[-1].split("\t")[2] == "completed"
    assert child.returncode == ExitCode.INTERRUPTED


# -- the demo -----------------------------------------------------------------------------------


def test_a_small_demo_still_ends_completed(cli: Cli, tmp_path: Path) -> None:
    """Its batches live on a sandbox that stops with it: no hint names them for later (issue 24, item 7)."""
    where = tmp_path / "demo"
    result = cli("demo", "--records", "3", "--records-per-second", "1000", "--dir", str(where))
    assert "demo done: batch completed, 1 succeeded, 2 failed (on purpose)" in result.stderr
    said = result.stdout + result.stderr
    assert f"get results: the demo writes them into {where}" in said
    assert "cbatch results" not in said and "cbatch watch" not in said and "cbatch list" not in said
