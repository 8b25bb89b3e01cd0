"""The root of the CLI: global options, and one line per command group.

Imports only typer at module level; each group module imports what its
commands need inside them, so ``cbatch --help`` stays close to Python's own
start-up (see docs/performance.md).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from ..main import version_line
from . import batches, config_cmd
from ._context import CliState

HELP = """cbatch: run Cohere batch jobs from your terminal, scripts and CI.

Set CO_API_KEY (or run 'cbatch login'). Try it with no account: cbatch demo.

Examples:

  cbatch list

  cbatch create --file requests.jsonl --model command-r-08-2024 --watch

  cbatch results BATCH_ID -o results.jsonl
"""

PANEL_ORDER = ("Batches", "Datasets", "Results", "Sandbox", "Configuration")


class GroupedCommands(TyperGroup):
    """Lists the root's commands by group (Batches, Datasets, ...) without rich.

    Typer groups commands by ``rich_help_panel`` only in its rich help, which
    costs ~120 ms per ``--help`` (PERF-NOTES); this keeps the grouping and the
    plain, fast formatter.
    """

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        groups: dict[str, list[tuple[str, str]]] = {}
        commands = [(n, self.get_command(ctx, n)) for n in self.list_commands(ctx)]
        shown = [(n, c) for n, c in commands if c is not None and not c.hidden]
        if not shown:
            return
        limit = formatter.width - 6 - max(len(n) for n, _ in shown)
        for name, cmd in shown:
            panel = getattr(cmd, "rich_help_panel", None) or "Commands"
            groups.setdefault(panel, []).append((name, cmd.get_short_help_str(limit)))
        order = [p for p in PANEL_ORDER if p in groups] + [p for p in groups if p not in PANEL_ORDER]
        for panel in order:
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
        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profile: Annotated[Optional[str], typer.Option("--profile", "-p", help="Config profile to use (or CBATCH_PROFILE).", show_default=False)] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="API base URL (or CO_API_URL).", show_default=False)] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=0.1, help="Seconds to wait for each answer from the API [default: 60].", show_default=False)] = None,
    retries: Annotated[Optional[int], typer.Option("--retries", min=0, max=20, help="Retries for 408/409/429/5xx and network failures [default: 4].", show_default=False)] = None,
    ca_bundle: Annotated[Optional[Path], typer.Option("--ca-bundle", exists=True, dir_okay=False, help="CA bundle file to verify TLS certificates with (or SSL_CERT_FILE).", show_default=False)] = None,
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
    )


batches.register(app)
config_cmd.register(app)


def _register_optional() -> None:
    """Groups written as separate modules; each adds its commands to the root app."""
    from . import datasets, demo, help_topics, results, watch

    datasets.register(app)
    results.register(app)
    watch.register(app)
    demo.register(app)
    help_topics.register(app)
    try:
        from . import sandbox
    except ImportError:  # pragma: no cover - the module ships with the package
        return
    app.add_typer(sandbox.app, name="sandbox", rich_help_panel="Sandbox")


_register_optional()


def run() -> None:
    """Run the app as the ``cbatch`` script, exiting with its code."""
    try:
        app()
    except KeyboardInterrupt:  # outside a command: while parsing or importing
        sys.stderr.write("\ninterrupted\n")
        sys.exit(130)
