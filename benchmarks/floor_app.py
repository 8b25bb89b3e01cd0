"""The start-up floor for P1: the least a five-command Typer CLI with cbatch's dependencies costs.

Same framework settings as cbatch's root app (``rich_markup_mode=None``, pretty
exceptions off, ``-h``), same dependencies installed, and every heavy import (httpx,
rich, platformdirs, fastavro, tomli_w) inside the command that needs it, so ``--help``
and ``--version`` pay for Python and Typer alone. ``--version`` is an eager Typer
option, as a plain Typer app would have it. Run: ``python benchmarks/floor_app.py --help``.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    name="floor",
    help="A minimal five-command Typer app: the start-up floor cbatch is measured against.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        typer.echo("floor 0.1.0")
        raise typer.Exit()


@app.callback()
def root(
    base_url: Annotated[str | None, typer.Option("--base-url", help="API base URL.")] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Global options."""


@app.command("list")
def list_(all_: Annotated[bool, typer.Option("--all", help="Every page.")] = False) -> None:
    """List things over HTTP."""
    import httpx

    typer.echo(httpx.__version__)


@app.command("get")
def get(item_id: Annotated[str, typer.Argument(help="The id.")]) -> None:
    """Show one thing in a table."""
    from rich.console import Console
    from rich.table import Table

    Console().print(Table(item_id))


@app.command("config")
def config() -> None:
    """Show where the config lives."""
    import platformdirs
    import tomli_w

    typer.echo(platformdirs.user_config_dir("floor") + tomli_w.dumps({}))


@app.command("results")
def results(path: Annotated[str, typer.Argument(help="An Avro file.")]) -> None:
    """Decode an Avro file."""
    import fastavro

    with open(path, "rb") as fh:
        for record in fastavro.reader(fh):
            typer.echo(str(record))


@app.command("watch")
def watch(ids: Annotated[list[str], typer.Argument(help="Ids.")]) -> None:
    """Follow things live."""
    from rich.live import Live

    with Live(auto_refresh=False):
        pass


if __name__ == "__main__":
    app()
