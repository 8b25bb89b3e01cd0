"""The docs cannot rot: the reference is current, the site builds without a warning, the
exit-code table is complete, and the CI recipes' scripts run against a real sandbox.

The recipes are read from docs/watch-and-ci.md itself (the YAML block after each
``<!-- recipe: NAME -->`` marker), so the page is the one place their script lines live.
Only the lines that need no CI runner are run: the GitHub step with ``id: batch`` and the
GitLab job's ``script:``. Installing cbatch is the packaging test's job, and the sandbox
the recipes start on port 8787 is replaced by the test's own on a free port.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cohere_batch_cli.exit_codes import ExitCode

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
VENV_BIN = Path(sys.executable).parent


def _generate_reference():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(DOCS))
    try:
        import generate_reference
    finally:
        sys.path.remove(str(DOCS))
    return generate_reference


def test_committed_reference_is_current() -> None:
    assert _generate_reference().main(["--check"]) == 0, (
        "docs/reference.md is stale: run python docs/generate_reference.py"
    )


def test_mkdocs_builds_strict_without_warnings(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(VENV_BIN)) or shutil.which("mkdocs")
    command = [mkdocs] if mkdocs else [sys.executable, "-m", "mkdocs"]
    result = subprocess.run(
        [
            *command,
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "reference" / "index.html").exists()
    assert not (tmp_path / "site" / "generate_reference.py").exists()


def test_every_exit_code_is_in_the_scripting_table() -> None:
    text = (DOCS / "scripting.md").read_text(encoding="utf-8")
    table = text[text.index("## Exit codes") :]
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", table, flags=re.MULTILINE)}
    assert {int(code) for code in ExitCode} <= documented, sorted(
        {int(c) for c in ExitCode} - documented
    )


# --- the CI recipes -------------------------------------------------------------------------


def recipe(name: str) -> dict:  # type: ignore[type-arg]
    """The YAML block that follows ``<!-- recipe: NAME -->`` in docs/watch-and-ci.md, parsed."""
    import yaml

    text = (DOCS / "watch-and-ci.md").read_text(encoding="utf-8")
    match = re.search(
        rf"<!-- recipe: {re.escape(name)} -->\s*```yaml\n(.*?)\n```", text, flags=re.DOTALL
    )
    assert match, f"no recipe {name!r} in docs/watch-and-ci.md"
    return yaml.safe_load(match.group(1))


def github_script() -> str:
    steps = recipe("github-actions")["jobs"]["batch"]["steps"]
    (step,) = [s for s in steps if s.get("id") == "batch"]
    return step["run"]


def gitlab_script() -> str:
    return "\n".join(recipe("gitlab-ci")["batch"]["script"])


def _console_examples() -> object:
    sys.path.insert(0, str(DOCS))
    try:
        import console_examples
    finally:
        sys.path.remove(str(DOCS))
    return console_examples


@pytest.mark.parametrize("page", list(_console_examples().PAGES))  # type: ignore[attr-defined]
def test_console_examples_are_the_real_output(page: str) -> None:
    """Every ```console block of the page is run and matches (docs/console_examples.py); a page a test, so they spread over the workers."""
    examples = _console_examples()
    assert examples.main(["--check", page]) == 0, (  # type: ignore[attr-defined]
        f"run: python docs/console_examples.py --write {page}"
    )


def install_step() -> tuple[str, dict[str, str]]:
    """The GitHub job's install step, as written, and its env; GitLab's must say the same."""
    steps = recipe("github-actions")["jobs"]["batch"]["steps"]
    (step,) = [s for s in steps if s.get("name") == "Install cbatch"]
    gitlab = recipe("gitlab-ci")["batch"]
    assert gitlab["before_script"][0] == step["run"], "both recipes install cbatch the same way"
    assert gitlab["variables"] == step["env"]
    return step["run"], step["env"]


def test_recipes_install_cbatch_start_a_sandbox_and_keep_results() -> None:
    github = recipe("github-actions")["jobs"]["batch"]["steps"]
    runs = "\n".join(s.get("run", "") for s in github)
    assert "cbatch sandbox serve" in runs
    (upload,) = [s for s in github if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["path"] == "results/"
    command, _env = install_step()
    assert "cohere-batch-cli[sandbox]" not in command, (
        "not on PyPI: a wheel, a checkout or a repository"
    )

    gitlab = recipe("gitlab-ci")["batch"]
    before = "\n".join(gitlab["before_script"])
    assert "cbatch sandbox serve" in before
    assert gitlab["artifacts"]["paths"] == ["results/"]

    project = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'name = "cohere-batch-cli"' in project
    assert re.search(r"^sandbox = \[", project, flags=re.MULTILINE)


REQUESTS = [
    {
        "custom_id": f"req-{i}",
        "body": {"messages": [{"role": "user", "content": f"Question number {i}?"}]},
    }
    for i in range(1, 8)
] + [
    {
        "custom_id": "req-fails",
        "body": {"messages": [{"role": "user", "content": "[[sandbox:fail]] on purpose"}]},
    }
]


@pytest.mark.parametrize(
    "script", [github_script, gitlab_script], ids=["github-actions", "gitlab-ci"]
)
def test_recipe_script_runs_against_the_sandbox(script, sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path / "repo"
    work.mkdir()
    (work / "requests.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in REQUESTS), encoding="utf-8"
    )
    github_output = tmp_path / "github_output"
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "CO_API_URL": sandbox.base_url,
        "CO_API_KEY": "recipe-test-key",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_OUTPUT": str(github_output),
        "CI_PIPELINE_ID": "4242",
        "CI": "true",
    }
    # GitHub runs `run:` with `bash -e -o pipefail`; GitLab stops at the first failing line.
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script()],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"

    results = work / "results" / "results.jsonl"
    assert results.exists(), result.stderr
    records = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["custom_id"] for r in records) == sorted(r["custom_id"] for r in REQUESTS)
    failed = [r for r in records if r.get("error")]
    assert [r["custom_id"] for r in failed] == ["req-fails"]

    batch = json.loads((work / "results" / "batch.json").read_text(encoding="utf-8"))
    assert batch["status"] == "BATCH_STATUS_COMPLETED"
    assert batch["name"] == "ci-4242"
    if script is github_script:
        assert github_output.read_text(encoding="utf-8") == f"id={batch['id']}\n"


@pytest.mark.slow
def test_the_recipe_installs_cbatch_as_written_and_runs(tmp_path: Path) -> None:
    """The install step as written, from a wheel built here, into a fresh venv; then the
    sandbox step (on a free port instead of 8787) and the job's script, with that venv's cbatch."""
    import signal
    import socket

    from cohere_batch_cli import __version__

    command, step_env = install_step()
    work = tmp_path / "repo"
    wheel_path = work / step_env["CBATCH_WHEEL"]
    wheel_path.parent.mkdir(parents=True)
    dist = tmp_path / "dist"
    clean = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(ROOT)],
        check=True,
        env=clean,
        timeout=300,
    )
    (built,) = dist.glob("cohere_batch_cli-*.whl")
    assert built.name == wheel_path.name == f"cohere_batch_cli-{__version__}-py3-none-any.whl", (
        "the recipe names the wheel of this version"
    )
    shutil.copy(built, wheel_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=clean, timeout=120)
    env = {**clean, **step_env, "PATH": f"{venv / 'bin'}{os.pathsep}{clean.get('PATH', '')}"}
    installed = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", command],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr
    assert Path(shutil.which("cbatch", path=env["PATH"]) or "").parent == venv / "bin"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    steps = recipe("github-actions")["jobs"]["batch"]["steps"]
    (start,) = [s for s in steps if s.get("name") == "Start a sandbox"]
    github_env, github_output = tmp_path / "github_env", tmp_path / "github_output"
    runner = {
        **env,
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_ENV": str(github_env),
        "GITHUB_OUTPUT": str(github_output),
        "GITHUB_RUN_ID": "4242",
    }
    server = subprocess.Popen(
        ["bash", "-e", "-o", "pipefail", "-c", start["run"].replace("8787", str(port))],
        cwd=work,
        env=runner,
        start_new_session=True,
    )
    try:
        assert server.wait(timeout=60) == 0
        runner.update(line.split("=", 1) for line in github_env.read_text().splitlines())
        (work / "requests.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in REQUESTS), encoding="utf-8"
        )
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", github_script()],
            cwd=work,
            env=runner,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        batch = json.loads((work / "results" / "batch.json").read_text(encoding="utf-8"))
        assert (
            batch["status"] == "BATCH_STATUS_COMPLETED"
            and github_output.read_text() == f"id={batch['id']}\n"
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGINT)
