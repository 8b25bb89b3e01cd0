"""The root of the CLI: global options, and the table of every command.

Imports only typer at module level, and builds a command's module only when
that command runs, so ``cbatch --help`` stays close to Python's own start-up
(see docs/performance.md).
"""

from __future__ import annotations

import functools
import importlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .. import version_line
from ..output.core import Output
from ._context import CliState

HELP = """cbatch: run Cohere batch jobs from your terminal, scripts and CI.

Set CO_API_KEY (or run 'cbatch login'). Try it with no account: cbatch demo.

Examples:

  cbatch list

  cbatch create --file requests.jsonl --model command-r-08-2024 --watch

  cbatch results BATCH_ID -o results.jsonl
"""

PANEL_ORDER = ("Batches", "Datasets", "Results", "Sandbox", "Configuration")

COMMANDS: dict[str, tuple[str, str, str]] = {
    "create": ("batches", "Batches", "Create a batch from a dataset, or from a JSONL file in one step."),
    "list": ("batches", "Batches", "List batches, newest first."),
    "get": ("batches", "Batches", "Show every field of a batch: status, progress, token counts, datasets."),
    "cancel": ("batches", "Batches", "Cancel one or several batches and report each outcome."),
    "watch": ("watch", "Batches", "Follow batches until every one has ended: completed, failed or canceled."),
    "estimate": ("estimate", "Batches", "Count a file's tokens with the model's tokenizer: context overflows, cost bound."),
    "datasets": ("datasets", "Datasets", "Upload, check and manage datasets (batch inputs and outputs)."),
    "results": ("results", "Results", "Download a finished batch's results as JSONL or CSV."),
    "demo": ("demo", "Sandbox", "Run a real batch end to end against a local sandbox: no account, no network."),
    "sandbox": ("sandbox", "Sandbox", "A local Cohere batch and dataset API for tests, demos and CI: no account, no network."),
    "login": ("config_cmd", "Configuration", "Store an API key in a profile, after checking it with one cheap call."),
    "config": ("config_cmd", "Configuration", "Show the settings in effect and where each comes from (the key masked)."),
    "help": ("help_topics", "Configuration", "Reference topics: exit codes, environment variables."),
}  # fmt: skip
"""Every command: (module under cli/, help group, summary line).

The root's --help is printed from this table, and a command's module is
imported and built only when that command runs: Typer evaluates every
parameter annotation of every command it builds, which was most of the cost
of each cbatch invocation (docs/performance.md, P1). tests/test_startup.py
checks the table against the commands themselves, so it cannot drift.
"""


@functools.cache
def build_module(module_name: str) -> Any:
    """The commands of one module under cli/, as a Click group built on first use."""
    module = importlib.import_module(f"{__package__}.{module_name}")
    sub = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)
    if module_name == "sandbox":
        sub.add_typer(module.app, name="sandbox", rich_help_panel="Sandbox")
    else:
        module.register(sub)

    @sub.callback()
    def _group() -> None:  # keeps a module of one command a group, so it is found by name
        """Commands of one module."""

    return typer.main.get_command(sub)


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 3)].rsplit(" ", 1)[0] + "..."


class GroupedCommands(TyperGroup):
    """The root group: commands from the COMMANDS table, built lazily, listed by group.

    Typer groups commands by ``rich_help_panel`` only in its rich help, which
    costs ~120 ms per ``--help`` (PERF-NOTES); this keeps the grouping with
    the plain, fast formatter.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        return build_module(COMMANDS[cmd_name][0]).get_command(ctx, cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        groups: dict[str, list[tuple[str, str]]] = {}
        for name, (_module, panel, summary) in COMMANDS.items():
            groups.setdefault(panel, []).append((name, _shorten(summary, limit)))
        for panel in PANEL_ORDER:
            with formatter.section(panel):
                formatter.write_dl(groups[panel])


app = typer.Typer(
    name="cbatch",
    cls=GroupedCommands,
    help=HELP,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        Output().raw_line(version_line())
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Config profile to use (or CBATCH_PROFILE).", show_default=False)] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="API base URL (or CO_API_URL).", show_default=False)] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", min=0.1, help="Seconds to wait for each answer from the API [default: 60].", show_default=False)] = None,
    retries: Annotated[int | None, typer.Option("--retries", min=0, max=20, help="Retries for 408/409/429/5xx and network failures [default: 4].", show_default=False)] = None,
    ca_bundle: Annotated[Path | None, typer.Option("--ca-bundle", exists=True, dir_okay=False, help="CA bundle file to verify TLS certificates with (or SSL_CERT_FILE).", show_default=False)] = None,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour (also NO_COLOR, TERM=dumb).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Trace HTTP on stderr (Authorization redacted) and show tracebacks.")] = False,
    version: Annotated[bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show cbatch's version and exit.")] = False,
) -> None:
    """Global options; they go before the command: cbatch --profile ci list."""
    ctx.obj = CliState(
        profile=profile,
        base_url=base_url,
        timeout=timeout,
        retries=retries,
        no_color=no_color,
        debug=debug,
        ca_bundle=str(ca_bundle) if ca_bundle else None,
        out=Output(no_color=no_color, debug=debug),
    )


def run() -> None:
    """Run the app as the ``cbatch`` script, exiting with its code."""
    try:
        app()
    except KeyboardInterrupt:  # outside a command: while parsing or importing
        Output().info("\ninterrupted")
        sys.exit(130)
