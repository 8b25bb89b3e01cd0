"""Fail before spending (issue 24, item 18): ``-o`` in a folder that does not exist is refused
before any API call, with the exit code of a file that cannot be written (11), not after the
batch was looked up and its parts downloaded."""

from __future__ import annotations

from pathlib import Path

from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import Cli
from tests.support.fault_server import FaultServer, batch_json


def test_results_into_a_missing_folder_is_refused_before_any_call(
    fault_cli: Cli, fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.steady["GET /v2/batches/b-1"] = (200, {}, {"batch": batch_json("b-1")})
    target = tmp_path / "no-such-folder" / "out.jsonl"
    refused = fault_cli("results", "b-1", "-o", str(target), exit_code=ExitCode.LOCAL_WRITE)
    assert refused.stderr.startswith(
        f"error: cannot write {target}: the folder {target.parent} does not exist"
    )
    assert len(refused.stderr.strip().splitlines()) == 1
    assert fault_server.requests == [], "the API was asked before the refusal"
    assert not target.parent.exists()
