"""``cbatch help TOPIC``: reference pages that live beside the code they describe.

Each topic is generated from the same source the code uses (the exit code
table, the environment variable list), so help and behaviour cannot drift.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import UsageError
from ._context import get_state
from ._errors import command_errors


def exit_codes_text() -> str:
    from ..exit_codes import DESCRIPTIONS, precedence_text

    lines = ["Exit codes (the same for every command):", ""]
    lines += [f"  {int(code):>3}  {text}" for code, text in DESCRIPTIONS.items()]
    lines += ["", "When one run has several outcomes (a watch of several batches), the first", "of these that applies is the exit code:", "", "  " + precedence_text()]
    return "\n".join(lines)


def environment_text() -> str:
    from ..config import ENVIRONMENT

    width = max(len(name) for name, _ in ENVIRONMENT)
    lines = ["Environment variables cbatch reads:", ""]
    lines += [f"  {name:<{width}}  {text}" for name, text in ENVIRONMENT]
    lines += ["", "Precedence: flags, then environment, then the selected profile, then defaults."]
    return "\n".join(lines)


TOPICS = {"exit-codes": exit_codes_text, "environment": environment_text}


def register(app: typer.Typer) -> None:
    @app.command("help", rich_help_panel="Configuration")
    @command_errors
    def help_topic(
        ctx: typer.Context,
        topic: Annotated[str | None, typer.Argument(help="exit-codes or environment.", show_default=False)] = None,
    ) -> None:
        """Reference topics: exit codes, environment variables.

        Each topic is printed from the same table the code uses, so it is
        always current. For a command's options: cbatch COMMAND --help.

        Examples:

          cbatch help exit-codes

          cbatch help environment
        """
        out = get_state(ctx).out
        if topic is None:
            out.line("Topics: " + ", ".join(TOPICS) + "\nFor a command: cbatch COMMAND --help")
            return
        if topic not in TOPICS:
            raise UsageError(f"no help topic {topic!r}; topics: {', '.join(TOPICS)}")
        out.line(TOPICS[topic]())
