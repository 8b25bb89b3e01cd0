"""``cbatch help TOPIC``: reference pages that live beside the code they describe.

Each topic is generated from the same source the code uses (the exit code
table, the environment variable list), so help and behaviour cannot drift.
``cbatch help COMMAND`` is that command's ``--help``, as in git and gh.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any

import typer

from ..errors import UsageError
from ._context import get_state
from ._errors import command_errors


def exit_codes_text() -> str:
    from ..exit_codes import DESCRIPTIONS, precedence_text

    lines = ["Exit codes (the same for every command):", ""]
    lines += [f"  {int(code):>3}  {text}" for code, text in DESCRIPTIONS.items()]
    lines += [
        "",
        "When one run has several outcomes (a watch of several batches), the first",
        "of these that applies is the exit code:",
        "",
        "  " + precedence_text(),
    ]
    return "\n".join(lines)


def environment_text() -> str:
    from ..config import ENVIRONMENT

    width = max(len(name) for name, _ in ENVIRONMENT)
    lines = ["Environment variables cbatch reads:", ""]
    lines += [f"  {name:<{width}}  {text}" for name, text in ENVIRONMENT]
    lines += ["", "Precedence: flags, then environment, then the selected profile, then defaults."]
    return "\n".join(lines)


TOPICS = {"exit-codes": exit_codes_text, "environment": environment_text}


def command_help(ctx: Any, words: list[str]) -> str | None:
    """The ``--help`` of ``cbatch WORDS...`` (``create``, ``datasets upload``), or None."""
    parent = ctx.find_root()
    command = parent.command
    for word in words:
        sub = command.get_command(parent, word) if hasattr(command, "get_command") else None
        if sub is None:
            return None
        parent = sub.make_context(word, [], parent=parent, resilient_parsing=True)
        command = sub
    return str(command.get_help(parent))


def register(app: typer.Typer) -> None:
    @app.command("help", rich_help_panel="Configuration")
    @command_errors
    def help_topic(
        ctx: typer.Context,
        topic: Annotated[
            list[str] | None,
            typer.Argument(
                help="exit-codes, environment, or a command (create, datasets upload).",
                show_default=False,
                metavar="[TOPIC|COMMAND...]",
            ),
        ] = None,
    ) -> None:
        """Reference topics: exit codes, environment variables.

        Each topic is printed from the same table the code uses, so it is
        always current. 'cbatch help COMMAND' is the same as 'cbatch COMMAND
        --help'.

        Examples:

          cbatch help exit-codes

          cbatch help environment

          cbatch help create
        """
        out = get_state(ctx).out
        if not topic:
            out.line(
                "Topics: "
                + ", ".join(TOPICS)
                + "\nFor a command: cbatch help COMMAND (or cbatch COMMAND --help)"
            )
            return
        if len(topic) == 1 and topic[0] in TOPICS:
            out.line(TOPICS[topic[0]]())
            return
        text = command_help(ctx, topic)
        if text is None:
            root = ctx.find_root()
            wanted = " ".join(topic)
            close = difflib.get_close_matches(
                topic[0],
                [*TOPICS, *getattr(root.command, "list_commands", lambda _ctx: [])(root)],
                n=1,
                cutoff=0.6,
            )
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(
                f"no help topic or command {wanted!r}{hint} Topics: {', '.join(TOPICS)}; commands: cbatch --help"
            )
        out.raw_line(text)
