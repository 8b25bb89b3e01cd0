"""Start-up stays cheap: the entry module imports typer and nothing heavy.

Measured as which modules get imported (a fact), not as wall-clock time (a
flaky number on shared machines); the timings live in benchmarks/.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "httpx", "rich", "rich.console", "platformdirs", "fastavro", "tomli_w", "tomlkit", "tomllib", "tomli",
    "starlette", "uvicorn", "multipart", "pydantic", "sqlite3", "concurrent.futures", "tokenizers",
    "jinja2", "jsonschema_rs",
)  # fmt: skip


def imported_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_entry_module_imports_no_heavy_module() -> None:
    loaded = imported_after("import cohere_batch_cli.cli.app")
    assert "typer" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_version_imports_not_even_typer() -> None:
    code = "import sys; sys.argv = ['cbatch', '--version']\nfrom cohere_batch_cli.main import main; main()"
    loaded = imported_after(code)
    assert "typer" not in loaded and not loaded & set(HEAVY)


def test_installed_script_answers_version_and_help() -> None:
    import shutil

    cbatch = shutil.which("cbatch") or str(
        __import__("pathlib").Path(sys.executable).parent / "cbatch"
    )
    version = subprocess.run([cbatch, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("cbatch 0.") and "Python 3." in version.stdout
    helped = subprocess.run([cbatch, "--help"], capture_output=True, text=True, check=True)
    listed = {
        line.split()[0]
        for line in helped.stdout.splitlines()
        if line.startswith("  ") and line.split()
    }
    for command in (
        "create",
        "list",
        "get",
        "cancel",
        "watch",
        "results",
        "datasets",
        "sandbox",
        "login",
        "config",
    ):
        assert command in listed, f"{command} missing from --help"
    module = subprocess.run(
        [sys.executable, "-m", "cohere_batch_cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert module.stdout == version.stdout


def test_the_command_table_matches_the_commands() -> None:
    from cohere_batch_cli.cli._lazy import build_module
    from cohere_batch_cli.cli.app import COMMANDS

    for name, (module, panel, summary) in COMMANDS.items():
        command = build_module(module).commands.get(name)
        assert command is not None, f"{name} is not registered by cli/{module}.py"
        assert command.help.strip().splitlines()[0] == summary, name
        assert command.rich_help_panel == panel, name
    for module in {m for m, _, _ in COMMANDS.values()}:
        registered = set(build_module(module).commands)
        listed = {n for n, (m, _, _) in COMMANDS.items() if m == module}
        assert registered == listed, (
            f"cli/{module}.py registers {registered - listed} not in COMMANDS"
        )


def test_one_command_builds_only_its_own_module() -> None:
    code = (
        "import sys; sys.argv = ['cbatch', 'get', '--help']\n"
        "from cohere_batch_cli.cli import app\n"
        "try:\n    app.run()\nexcept SystemExit:\n    pass\n"
    )
    loaded = imported_after(code)
    assert "cohere_batch_cli.cli.batches" in loaded
    assert (
        not {
            "cohere_batch_cli.cli.watch",
            "cohere_batch_cli.cli.datasets",
            "cohere_batch_cli.cli.sandbox",
        }
        & loaded
    )


def test_create_help_loads_neither_jinja2_nor_pyarrow() -> None:
    """``create --from`` renders with Jinja2 and may read Parquet: only a run with a table pays for them."""
    code = (
        "import sys; sys.argv = ['cbatch', 'create', '--help']\n"
        "from cohere_batch_cli.cli import app\n"
        "try:\n    app.run()\nexcept SystemExit:\n    pass\n"
    )
    loaded = imported_after(code)
    assert "cohere_batch_cli.cli.batches" in loaded
    assert not {"jinja2", "pyarrow", "cohere_batch_cli.tasks.table_prompts"} & loaded


def test_the_python_api_and_a_client_load_neither_the_cli_nor_rich_nor_pyarrow() -> None:
    """``import cohere_batch_cli as cb; cb.Client(...)`` is a library's cost, not a terminal's."""
    code = (
        "import cohere_batch_cli as cb\n"
        "client = cb.Client('test-key-0123', base_url='http://127.0.0.1:9')\n"
        "client.close()"
    )
    loaded = imported_after(code)
    assert "cohere_batch_cli.library.client" in loaded and "httpx" in loaded
    top = {name.split(".")[0] for name in loaded}
    assert not top & {"rich", "typer", "click", "pyarrow"}, sorted(
        top & {"rich", "typer", "click", "pyarrow"}
    )
    assert not {
        m for m in loaded if m.startswith(("cohere_batch_cli.cli", "cohere_batch_cli.output"))
    }


def test_importing_the_package_loads_nothing_but_itself() -> None:
    """The public names are loaded when first used (PEP 562), so the import costs what it did."""
    assert imported_after("import cohere_batch_cli") - imported_after("pass") == {
        "cohere_batch_cli"
    }


def test_importing_the_engine_loads_nothing_but_it() -> None:
    """``from cohere_batch_cli import engine`` is as free as the package: each name loads its home when used."""
    assert imported_after("import cohere_batch_cli.engine") - imported_after("pass") == {
        "cohere_batch_cli",
        "cohere_batch_cli.engine",
    }
