"""``cbatch help TOPIC``: reference pages that live beside the code they describe.

Each topic is generated from the same source the code uses (the exit code
table, the environment variable list), so help and behaviour cannot drift.
``cbatch help COMMAND`` is that command's ``--help``, as in git and gh.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any

import typer

from .. import ExitCode, UsageError
from ._context import get_state
from ._errors import command_errors

DESCRIPTIONS: dict[ExitCode, str] = {
    ExitCode.OK: "Success (for watch: every batch COMPLETED); also a reader that closed our stdout (| head -1).",
    ExitCode.UNEXPECTED: "An unexpected error: a bug in cbatch. Run again with --debug and report it.",
    ExitCode.USAGE: "Usage error: unknown command or option, a bad value, an unreadable file, a missing extra, a confirmation declined.",
    ExitCode.AUTH: "Authentication or configuration: no API key, a bad config file, 401, 403, 498.",
    ExitCode.NOT_FOUND: "The batch or dataset does not exist (404); or there are no results: a canceled batch or job ran no record.",
    ExitCode.REFUSED: "The API refused the request (400, 422, other 4xx), a local check refused the input, or another cbatch on this machine sends for the same run.",
    ExitCode.SERVER: "Rate limit or server error (429, 5xx, unreadable answer) still failing after retries.",
    ExitCode.NETWORK: "Network failure: could not connect, TLS error, or a timeout.",
    ExitCode.BATCH_FAILED: "watch: a watched batch ended FAILED.",
    ExitCode.BATCH_CANCELED: "watch: a watched batch ended CANCELED.",
    ExitCode.TIMEOUT: "A wait ran out of time (watch --timeout, dataset validation); batches are left running.",
    ExitCode.LOCAL_WRITE: "A local file could not be written (no space, permission, read-only, a stdout closed before the start: >&-).",
    ExitCode.RECORDS_FAILED: "Records still failing after the last retry round (retry, create --retry-failed, jobs; a schema run's invalid answers count), or failed (or invalid) records with watch --fail-on-records.",
    ExitCode.RESULTS_EXPIRED: "The results no longer exist: the output dataset expired.",
    ExitCode.NEVER_RAN: "A run that never ran: a job stopped while splitting, or with parts never sent (carry on with: cbatch jobs resume JOB).",
    ExitCode.STATE_BUSY: "The local state store stayed busy: another process held it past the wait (10 s). Run again when it is done.",
    ExitCode.STATE_DAMAGED: "The local state store is damaged or from a newer cbatch: the error names the file and how to move it aside.",
    ExitCode.KEY_REUSED: "An idempotency key already names a run made from another input or other options: the error names what differs. Nothing was sent.",
    ExitCode.HANGUP: "Hung up (SIGHUP): cleaned up as for Ctrl-C.",
    ExitCode.INTERRUPTED: "Interrupted (Ctrl-C): nothing was cancelled, no partial file was left.",
    ExitCode.TERMINATED: "Terminated (SIGTERM, as CI cancellation sends): cleaned up as for Ctrl-C.",
}
"""What each exit code means, in the words ``cbatch help exit-codes`` prints."""


def precedence_text() -> str:
    """The combining order as one line, for ``cbatch help exit-codes`` and the docs."""
    from ..engine import PRECEDENCE

    return " > ".join(str(int(code)) for code in PRECEDENCE) + " > 0"


def exit_codes_text() -> str:
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
    from ..engine import ENVIRONMENT

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
