"""``python -m cohere_batch_cli.sandbox``: ``cbatch sandbox serve`` under another name.

It runs the very same typer command (:func:`cohere_batch_cli.cli.sandbox.serve`), so the
options are defined once: the first line on stdout is ``cbatch sandbox listening on
http://HOST:PORT`` (flushed) once it accepts connections, for a parent process to read,
and SIGINT/SIGTERM stop it cleanly with exit code 0.
"""

from __future__ import annotations

from typing import Any

PROG = "python -m cohere_batch_cli.sandbox"


def build_app() -> Any:
    """A one-command typer app whose command is ``serve`` itself."""
    import typer

    from cohere_batch_cli.cli.sandbox import serve

    app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
    app.command()(serve)
    return app


def main(argv: list[str] | None = None) -> None:
    build_app()(args=argv, prog_name=PROG)


if __name__ == "__main__":
    main()
