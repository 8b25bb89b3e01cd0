"""An interrupted ``create --file`` says which dataset it left, and how to go on from it (issue 24, item 19).

SIGTERM (CI cancelling a job) or Ctrl-C reaches the installed ``cbatch`` after the upload,
while it waits for validation, before any batch exists. Run again, the same command uploads
the file again (a new dataset), so the line names the dataset left and the
``cbatch create --dataset ...`` that makes the batch from it; that command then works,
uploading nothing.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from tests.conftest import TEST_KEY
from tests.support.flows import chat_records, write_jsonl
from tests.support.installed import cbatch_env, cbatch_path, run_cbatch

MODEL = "command-r-08-2024"


def test_sigterm_after_the_upload_names_the_dataset_left_and_the_create_that_uses_it(
    tmp_path: Path,
) -> None:
    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, validation_delay=1.0, queue_delay=0.0,
        records_per_second=2000.0,
    )  # fmt: skip
    write_jsonl(tmp_path / "faq.jsonl", chat_records(3))
    with SandboxServer(settings) as server:
        with subprocess.Popen(
            [cbatch_path(), "create", "--file", "faq.jsonl", "--model", MODEL, "--name", "faq"],
            cwd=tmp_path, env=cbatch_env(server.base_url, tmp_path), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ) as proc:  # fmt: skip
            assert proc.stderr is not None
            seen = []
            for (
                line
            ) in proc.stderr:  # the moment is read from cbatch itself, never guessed by a timer
                seen.append(line)
                if line.startswith("uploaded as dataset "):
                    break
            proc.send_signal(signal.SIGTERM)
            rest = proc.stderr.read()
            proc.wait(timeout=30)
        said = "".join(seen) + rest
        assert proc.returncode == 143, said
        left = re.search(r"dataset (\S+) holds the file", said)
        assert left is not None, said
        assert "before the batch was created" in said
        again = re.search(r"create the batch from that dataset with: (.+)$", said, re.M)
        assert again is not None, said
        command = shlex.split(again.group(1))
        assert command[:4] == ["cbatch", "create", "--dataset", left.group(1)]
        with CohereClient(TEST_KEY, server.base_url) as client:
            assert list(client.iter_batches()) == [], "no batch was created"
            deadline = time.monotonic() + 30
            while client.get_dataset(left.group(1)).validation_status != "validated":
                assert time.monotonic() < deadline
                time.sleep(0.05)
        uploads = sum(1 for m, p, _ in server.request_log if m == "POST" and p == "/v1/datasets")
        done = run_cbatch(server.base_url, [*command[1:], "-q"], tmp_path)
        assert done.returncode == 0, done.stderr
        assert (
            sum(1 for m, p, _ in server.request_log if m == "POST" and p == "/v1/datasets")
            == uploads
        )
