"""One way to run the sandbox and one place for its options and its log: ``python -m``
runs ``cbatch sandbox serve``; nothing in sandbox/ prints; docs/sandbox.md lists every option."""

from __future__ import annotations

import ast
import dataclasses
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.main import get_command

from cohere_batch_cli.cli import sandbox as sandbox_cli
from cohere_batch_cli.sandbox.settings import SandboxSettings
from tests.sandbox.sandbox_client import KEY, chat_lines

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "cohere_batch_cli" / "sandbox"
NOT_OPTIONS = {"data_dir", "api_keys", "cancel_grace", "tick", "retry_after"}
"""Settings without a serve option: the directory and keys have differently named options,
the rest are internal knobs for tests."""


def _serve_options() -> dict[str, object]:
    command = get_command(sandbox_cli.app).commands["serve"]  # type: ignore[attr-defined]
    return {p.name: p.default for p in command.params}


def test_nothing_in_the_sandbox_prints_or_writes_the_std_streams() -> None:
    offenders = []
    for path in SANDBOX.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "print"
            ):
                offenders.append(f"{path.name}:{node.lineno} print()")
            if isinstance(node, ast.Attribute) and node.attr in (
                "stdout",
                "stderr",
                "__stdout__",
                "__stderr__",
            ):
                offenders.append(f"{path.name}:{node.lineno} .{node.attr}")
            if isinstance(node, (ast.Import, ast.ImportFrom)) and "argparse" in ast.dump(node):
                offenders.append(f"{path.name}:{node.lineno} argparse")
    assert offenders == []


def test_every_setting_has_a_serve_option_with_the_same_default(tmp_path: Path) -> None:
    options = _serve_options()
    defaults = SandboxSettings(data_dir=tmp_path)
    for field in dataclasses.fields(SandboxSettings):
        if field.name in NOT_OPTIONS or field.name in ("host", "port"):
            continue
        assert field.name in options, f"no --{field.name.replace('_', '-')} option"
        default = options[field.name]
        if default is not None:  # None: the pace options, resolved by --realistic or the setting
            assert default == getattr(defaults, field.name), field.name


def test_python_m_runs_the_serve_command() -> None:
    from typer.testing import CliRunner

    from cohere_batch_cli.cli.app import app as cbatch
    from cohere_batch_cli.sandbox.__main__ import build_app

    def flags(app: object, *args: str) -> set[str]:
        out = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200"}).stdout  # type: ignore[arg-type]
        return set(re.findall(r"^ +(--[a-z][a-z0-9-]+)", out, flags=re.MULTILINE)) - {"--help"}

    module = flags(build_app())
    assert module == flags(cbatch, "sandbox", "serve")
    assert {"--link-ttl", "--realistic", "--log-level", "--port", "--data-dir"} <= module


def test_python_m_prints_the_docs_example_logs_at_info_and_never_a_link(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "sandbox.md").read_text(encoding="utf-8")
    example = text.split("```console\n$ cbatch sandbox serve --port 8787\n", 1)[1].split("```", 1)[
        0
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cohere_batch_cli.sandbox", "--port", "0", "--data-dir", str(tmp_path), "--log-level", "info"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        # The example shows stdout and stderr together, as a terminal does (docs/console_examples.py
        # checks it whole); stdout holds the lines a parent process reads: the URL and the exports.
        on_stdout = [
            line
            for line in example.splitlines(keepends=True)
            if line.startswith(("cbatch sandbox listening", "  export "))
        ]
        printed = [proc.stdout.readline() for _ in on_stdout]
        url = printed[0].rsplit(" ", 1)[1].strip()
        port = url.rsplit(":", 1)[1]
        documented_port = on_stdout[0].rsplit(":", 1)[1].strip()
        assert documented_port == "8787", "the example listens on the --port its command gives"
        assert "".join(printed).replace(f":{port}", f":{documented_port}") == "".join(on_stdout), (
            "the docs show what serve prints"
        )
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as http:
            up = http.post("/v1/datasets", params={"name": "d", "type": "batch-chat-v2-input", "keep_original_file": "true"},
                           files={"data": ("f", chat_lines(3))})  # fmt: skip
            dataset_id = up.json()["id"]
            links: list[str] = []
            deadline = time.monotonic() + 10
            while not links:
                assert time.monotonic() < deadline
                parts = http.get(f"/v1/datasets/{dataset_id}").json()["dataset"]["dataset_parts"]
                links = [p[k] for p in parts for k in ("url", "original_url")]
                time.sleep(0.02)
            for link in links:
                assert httpx.get(link).status_code == 200
            batch = http.post(
                "/v2/batches", json={"name": "b", "input_dataset_id": dataset_id, "model": "m"}
            ).json()["batch"]
            while (
                http.get(f"/v2/batches/{batch['id']}").json()["batch"]["status"]
                != "BATCH_STATUS_COMPLETED"
            ):
                assert time.monotonic() < deadline
                time.sleep(0.02)
    finally:
        proc.terminate()  # SIGTERM: a clean stop
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert (
        f"dataset {dataset_id} validated" in stderr and f"batch {batch['id']} completed" in stderr
    )
    assert "X-Goog" not in stderr and "/_sandbox/parts" not in stderr and KEY not in stderr


def test_docs_list_every_serve_option() -> None:
    text = (ROOT / "docs" / "sandbox.md").read_text(encoding="utf-8")
    command = get_command(sandbox_cli.app).commands["serve"]  # type: ignore[attr-defined]
    missing = [
        o for p in command.params for o in p.opts if o.startswith("--") and f"`{o}" not in text
    ]
    assert missing == []


def test_a_second_sandbox_on_a_data_dir_in_use_is_refused_and_the_first_keeps_serving(
    tmp_path: Path,
) -> None:
    """Two servers on one folder would run two workers over the same batches: refused."""
    from tests.support.installed import cbatch_path

    first = subprocess.Popen(
        [cbatch_path(), "sandbox", "serve", "--port", "0", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert first.stdout is not None
        url = first.stdout.readline().rsplit(" ", 1)[1].strip()
        second = subprocess.run(
            [cbatch_path(), "sandbox", "serve", "--port", "0", "--data-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert second.returncode == 2
        assert second.stdout == ""
        (line,) = second.stderr.strip().splitlines()
        assert f"another sandbox (pid {first.pid}) is serving from it" in line
        assert "choose another --data-dir" in line
        assert httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {KEY}"}).is_success
    finally:
        first.terminate()
        first.communicate(timeout=15)
    # Once the first has stopped, the folder is free again.
    again = subprocess.Popen(
        [cbatch_path(), "sandbox", "serve", "--port", "0", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert again.stdout is not None
        assert again.stdout.readline().startswith("cbatch sandbox listening on ")
    finally:
        again.terminate()
        again.communicate(timeout=15)
    assert again.returncode == 0
