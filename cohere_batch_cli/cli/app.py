"""The root of the CLI: global options, and the table of every command.

Imports only typer at module level, and builds a command's module only when
that command runs, so ``cbatch --help`` stays close to Python's own start-up
(see docs/performance.md).

Global options may come before or after the command (``cbatch list --debug``,
as with gh, kubectl and the AWS CLI): :func:`hoist_global_options` is the one
place that decides it, moving them before the command before typer parses
anything, except where the command has an option of the same name (``login
--profile``), which stays the command's.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..engine import version_line
from ._context import CliState
from ._lazy import LazyGroup, build_module, keep_examples_whole

HELP = """cbatch: run Cohere batch jobs from your terminal, scripts and CI.

Set CO_API_KEY (or run 'cbatch login'). Try it with no account: cbatch demo.
Global options go before or after the command: cbatch list --debug.

Examples:

  cbatch list

  cbatch create --file requests.jsonl --model command-r-08-2024 --watch

  cbatch retry BATCH_ID --watch

  cbatch results BATCH_ID -o results.jsonl
"""

PANEL_ORDER = ("Batches", "Datasets", "Results", "Sandbox", "Configuration")

COMMANDS: dict[str, tuple[str, str, str]] = {
    "create": ("batches", "Batches", "Create a batch from a dataset, a JSONL file, or a table, in one step."),
    "list": ("batches", "Batches", "List batches, newest first."),
    "get": ("batches", "Batches", "Show every field of a batch: status, progress, token counts, datasets."),
    "cancel": ("batches", "Batches", "Cancel one or several batches and report each outcome."),
    "watch": ("watch", "Batches", "Follow batches until every one has ended: completed, failed or canceled."),
    "retry": ("retry", "Batches", "Send again only the records of a finished batch that failed or never came back."),
    "estimate": ("estimate", "Batches", "Count a file's tokens with the model's tokenizer: context overflows, cost bound."),
    "jobs": ("jobs", "Batches", "One input of any size, run as several batches and followed as one."),
    "datasets": ("datasets", "Datasets", "Upload, check and manage datasets (batch inputs and outputs)."),
    "results": ("results", "Results", "Download a finished batch's results as JSONL, CSV or Parquet."),
    "demo": ("demo", "Sandbox", "Run a real batch end to end against a local sandbox: no account, no network."),
    "sandbox": ("sandbox", "Sandbox", "A local Cohere batch and dataset API for tests, demos and CI: no account, no network."),
    "login": ("config_cmd", "Configuration", "Store an API key in a profile, after checking it with one cheap call."),
    "config": ("config_cmd", "Configuration", "Show the settings in effect and where each comes from (the key masked)."),
    "cache": ("cache_cmd", "Configuration", "The local answer cache: answers of table runs (create --from) kept on this machine."),
    "help": ("help_topics", "Configuration", "Reference topics: exit codes, environment variables."),
}  # fmt: skip
"""Every command: (module under cli/, help group, summary line).

The root's --help is printed from this table, and a command's module is
imported and built only when that command runs: Typer evaluates every
parameter annotation of every command it builds, which was most of the cost
of each cbatch invocation (docs/performance.md, P1). tests/test_startup.py
checks the table against the commands themselves, so it cannot drift.
"""


def _option_table(command: Any) -> dict[str, bool]:
    """Every option spelling of ``command`` (``--profile``, ``-p``), and whether it takes a value."""
    table: dict[str, bool] = {}
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") != "option":
            continue
        takes_value = not (param.is_flag or getattr(param, "count", False))
        for name in (*param.opts, *param.secondary_opts):
            table[name] = takes_value
    return table


def hoist_global_options(root: Any, ctx: Any, args: list[str]) -> list[str]:
    """``args`` with the global options found after the command moved before it.

    The one place that decides where a global option may go. A token the
    command itself knows (``login --profile``, ``watch --timeout``) is the
    command's, and so is the value after it; everything after ``--`` is left
    alone; an unknown command is left for Click to report.
    """
    globals_ = {
        name: takes for name, takes in _option_table(root).items() if name in GLOBAL_OPTION_NAMES
    }
    position = 0
    while position < len(args) and args[position].startswith("-") and args[position] != "--":
        name, has_value = _split(args[position])
        position += 2 if globals_.get(name) and not has_value else 1
    if position >= len(args) or args[position] == "--":
        return args
    command = root.get_command(ctx, args[position])
    if command is None:
        return args
    moved: list[str] = []
    kept = [args[position]]
    index = position + 1
    own = _option_table(command)
    while index < len(args):
        token = args[index]
        index += 1
        if token == "--":
            kept += args[index - 1 :]
            break
        name, has_value = _split(token)
        if not token.startswith("-") or token == "-":
            kept.append(token)
            if hasattr(command, "get_command"):  # option values were taken with their option
                sub = command.get_command(ctx, token)
                if sub is not None:  # a group's subcommand: its options are what count from here
                    command, own = sub, _option_table(sub)
            continue
        target = kept if name in own or name not in globals_ else moved
        takes_value = own[name] if name in own else globals_.get(name, False)
        target.append(token)
        if takes_value and not has_value and index < len(args):
            target.append(args[index])
            index += 1
    return args[:position] + moved + kept


def _split(token: str) -> tuple[str, bool]:
    """``--profile=ci`` -> (``--profile``, True); ``-p`` -> (``-p``, False)."""
    if token.startswith("--") and "=" in token:
        return token.split("=", 1)[0], True
    return token, False


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 3)].rsplit(" ", 1)[0] + "..."


class GroupedCommands(LazyGroup):
    """The root group: commands from the COMMANDS table, built lazily, listed by group.

    Typer groups commands by ``rich_help_panel`` only in its rich help, which
    costs ~120 ms per ``--help`` (PERF-NOTES); this keeps the grouping with
    the plain, fast formatter.
    """

    def names(self) -> list[str]:
        return list(COMMANDS)

    def load(self, ctx: Any, name: str) -> Any:
        return build_module(COMMANDS[name][0]).get_command(ctx, name)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(self, ctx, list(args)))

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        groups: dict[str, list[tuple[str, str]]] = {}
        for name, (_module, panel, summary) in COMMANDS.items():
            groups.setdefault(panel, []).append((name, _shorten(summary, limit)))
        for panel in PANEL_ORDER:
            with formatter.section(panel):
                formatter.write_dl(groups[panel])


GLOBAL_OPTION_NAMES = frozenset(
    {
        "--profile",
        "-p",
        "--base-url",
        "--request-timeout",
        "--retries",
        "--ca-bundle",
        "--no-color",
        "--local-time",
        "--debug",
    }
)
"""The global options, accepted after the command too."""

app = typer.Typer(
    name="cbatch",
    cls=GroupedCommands,
    help=keep_examples_whole(HELP),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        from ..output.core import Output

        Output().raw_line(version_line())
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile", "-p", help="Config profile to use (or CBATCH_PROFILE).", show_default=False
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="API base URL (or CO_API_URL).", show_default=False),
    ] = None,
    request_timeout: Annotated[
        float | None,
        typer.Option(
            "--request-timeout",
            min=0.1,
            help="Seconds to wait for each answer from the API [default: 60].",
            show_default=False,
        ),
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option(
            "--retries",
            min=0,
            max=20,
            help="Retries for 408/409/429/5xx and network failures [default: 4].",
            show_default=False,
        ),
    ] = None,
    ca_bundle: Annotated[
        Path | None,
        typer.Option(
            "--ca-bundle",
            exists=True,
            dir_okay=False,
            help="CA bundle file to verify TLS certificates with (or SSL_CERT_FILE).",
            show_default=False,
        ),
    ] = None,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colour (also NO_COLOR, TERM=dumb).")
    ] = False,
    local_time: Annotated[
        bool,
        typer.Option(
            "--local-time",
            help="Show times in this machine's time zone, with the offset (or CBATCH_LOCAL_TIME=1) [default: UTC].",
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="Trace HTTP on stderr (Authorization redacted) and show tracebacks."
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_version,
            is_eager=True,
            help="Show cbatch's version and exit.",
        ),
    ] = False,
) -> None:
    """Global options, before or after the command: cbatch --profile ci list, cbatch list --debug."""
    from ..output.core import Output  # here, not at the top: --help needs no output object

    out = Output(no_color=no_color, debug=debug, local_time=local_time)
    ctx.obj = CliState(
        profile=profile,
        base_url=base_url,
        timeout=request_timeout,
        retries=retries,
        no_color=no_color,
        debug=debug,
        ca_bundle=str(ca_bundle) if ca_bundle else None,
        out=out,
    )


def run() -> None:
    """Run the app as the ``cbatch`` script, exiting with its code.

    SIGTERM and SIGHUP are made to raise where Ctrl-C would (see
    :class:`~cohere_batch_cli.errors.Terminated`), so each command cleans up
    and says how to resume the same way for all three. What typer writes
    itself (``--help``, a usage error) to a stdout that fails ends as exit
    11, or quietly for a reader that went away.
    """
    _raise_on_termination()
    try:
        app()
    except KeyboardInterrupt as exc:  # outside a command: while parsing or importing
        from ..engine import for_interruption, stop_word
        from ..output.core import Output

        Output().info(f"\n{stop_word(exc)}")
        sys.exit(for_interruption(exc))
    except BrokenPipeError:
        from .. import ExitCode
        from ..output.core import Output

        Output().silence_stdout()
        sys.exit(ExitCode.OK)
    except OSError as exc:
        from .. import ExitCode
        from ..output.core import Output

        out = Output()
        out.silence_stdout()
        out.error(f"cannot write to stdout: {exc.strerror or exc}")
        sys.exit(ExitCode.LOCAL_WRITE)


def _raise_on_termination() -> None:
    import signal

    from ..engine import Terminated

    def terminated(signum: int, frame: object) -> None:
        raise Terminated(signum)

    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if (
            signum is not None and signal.getsignal(signum) is signal.SIG_DFL
        ):  # an ignored SIGHUP (nohup) stays ignored
            signal.signal(signum, terminated)
