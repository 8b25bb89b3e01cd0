"""The built wheel is what users get: it holds the sandbox and the entry point, and a fresh
venv that installs it (with the sandbox extra, from the package index as a user would)
answers --version and --help and prints completion scripts for bash, zsh and fish.

Needs the package index (for hatchling, and the dependencies), as CI has. One build
and one install for the whole module.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohere_batch_cli import __version__

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def run(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


def clean_env(**extra: str) -> dict[str, str]:
    """The environment a user's shell would have: nothing pointing back at the repo or its venv."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--quiet",
        "-w",
        dist,
        ROOT,
        cwd=dist,
        env=clean_env(),
    )
    (built,) = dist.glob("cohere_batch_cli-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """bin/ of a fresh venv with the wheel and its sandbox extra installed."""
    home = tmp_path_factory.mktemp("fresh")
    venv = home / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=home, env=clean_env())
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    run(
        bin_dir / "python",
        "-m",
        "pip",
        "install",
        "--quiet",
        f"{wheel}[sandbox]",
        cwd=home,
        env=clean_env(),
    )
    yield bin_dir


def test_wheel_holds_the_package_the_sandbox_and_the_entry_point(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    sandbox_sources = {
        f"cohere_batch_cli/sandbox/{p.name}"
        for p in (ROOT / "cohere_batch_cli" / "sandbox").glob("*.py")
    }
    assert {
        "cohere_batch_cli/sandbox/server.py",
        "cohere_batch_cli/sandbox/__main__.py",
    } <= sandbox_sources
    assert sandbox_sources <= names, sorted(sandbox_sources - names)
    package_sources = {
        str(p.relative_to(ROOT)).replace(os.sep, "/")
        for p in (ROOT / "cohere_batch_cli").rglob("*.py")
    }
    assert package_sources <= names, sorted(package_sources - names)
    assert "cohere_batch_cli/py.typed" in names  # the Python API's types reach a user's checker
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]

    dist_info = f"cohere_batch_cli-{__version__}.dist-info"
    with zipfile.ZipFile(wheel) as zf:
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
        metadata = zf.read(f"{dist_info}/METADATA").decode()
    assert re.search(r"^cbatch = cohere_batch_cli\.main:main$", entry_points, flags=re.MULTILINE), (
        entry_points
    )
    assert "Provides-Extra: sandbox" in metadata and "Provides-Extra: estimate" in metadata
    # The server's and the tokenizer's dependencies come only with their extras: the client stays light.
    for dep in ("starlette", "uvicorn", "python-multipart", "tokenizers"):
        lines = [line for line in metadata.splitlines() if line.startswith(f"Requires-Dist: {dep}")]
        assert lines and all("extra ==" in line for line in lines), lines


def test_fresh_venv_runs_version_and_help(installed: Path, tmp_path: Path) -> None:
    version = run(installed / "cbatch", "--version", cwd=tmp_path, env=clean_env()).stdout
    python = run(
        installed / "python",
        "-c",
        "import platform; print(platform.python_version())",
        cwd=tmp_path,
    ).stdout.strip()
    assert version == f"cbatch {__version__} (Python {python})\n"

    help_text = run(
        installed / "cbatch", "--help", cwd=tmp_path, env=clean_env(COLUMNS="100", NO_COLOR="1")
    ).stdout
    for section in ("Batches:", "Datasets:", "Results:", "Sandbox:", "Configuration:"):
        assert section in help_text, help_text
    # It is the wheel that runs, not the repository's source tree.
    where = run(
        installed / "python",
        "-c",
        "import cohere_batch_cli.sandbox.server as s; print(s.__file__)",
        cwd=tmp_path,
    ).stdout
    assert Path(where.strip()).is_relative_to(installed.parent), where
    run(installed / "cbatch", "sandbox", "serve", "--help", cwd=tmp_path, env=clean_env())


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o default -F _cbatch_completion cbatch"),
        ("zsh", "#compdef cbatch"),
        ("fish", "complete --command cbatch"),
    ],
)
def test_fresh_venv_prints_completion_scripts(
    installed: Path, tmp_path: Path, shell: str, marker: str
) -> None:
    # What `cbatch --install-completion` writes into the shell's start-up file, and what
    # the shell then runs on each Tab: typer's completion protocol through _CBATCH_COMPLETE.
    script = run(
        installed / "cbatch", cwd=tmp_path, env=clean_env(_CBATCH_COMPLETE=f"source_{shell}")
    ).stdout
    assert marker in script, script


def test_fresh_venv_completes_commands_on_tab(installed: Path, tmp_path: Path) -> None:
    env = clean_env(_CBATCH_COMPLETE="complete_bash", COMP_WORDS="cbatch wa", COMP_CWORD="1")
    assert run(installed / "cbatch", cwd=tmp_path, env=env).stdout.split() == ["watch"]
    env = clean_env(
        _CBATCH_COMPLETE="complete_bash", COMP_WORDS="cbatch datasets up", COMP_CWORD="2"
    )
    assert run(installed / "cbatch", cwd=tmp_path, env=env).stdout.split() == ["upload"]


def test_fresh_venv_without_the_parquet_extra_says_how_to_get_it(
    wheel: Path, installed: Path, tmp_path: Path
) -> None:
    # The venv has the sandbox extra only: pyarrow is truly absent, and the wheel says it is an extra.
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(f"cohere_batch_cli-{__version__}.dist-info/METADATA").decode()
    assert "Provides-Extra: parquet" in metadata
    pyarrow = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: pyarrow")]
    assert "Requires-Dist: pyarrow>=14; extra == 'parquet'" in pyarrow and all(
        "extra ==" in line for line in pyarrow
    )
    absent = subprocess.run(
        [installed / "python", "-c", "import pyarrow"], cwd=tmp_path, capture_output=True
    )
    assert absent.returncode != 0
    result = subprocess.run(
        [installed / "cbatch", "results", "b-1", "-o", "out.parquet"], cwd=tmp_path, capture_output=True, text=True,
        env=clean_env(CO_API_KEY="k", CO_API_URL="http://127.0.0.1:9", CBATCH_CONFIG=str(tmp_path / "c.toml")),
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        result.stderr
        == "error: --format parquet needs pyarrow: pip install 'pyarrow>=14' (the [parquet] extra)\n"
    )
    assert not (tmp_path / "out.parquet").exists()
