"""From an exception to one line on stderr and an exit code: the only place that happens.

Every command is wrapped by :func:`command_errors`; nothing else turns
exceptions into exit codes. The code is the one each error class says
(``exit_code``, set beside the class in :mod:`cohere_batch_cli.errors` and
:mod:`cohere_batch_cli.api.errors`, the API's errors being cbatch's too), so the
command line and the Python API read one table.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import typer

from .. import (
    AuthenticationError,
    CbatchError,
    CohereAPIError,
    ExitCode,
    InputRejected,
    NotFoundError,
)
from ..engine import InvalidBaseURL, for_interruption, stop_word
from ..output.core import Output
from ._context import CliState, get_state

F = TypeVar("F", bound=Callable[..., Any])

# What the API layer reports as facts, worded here where the commands are known.
_MAY_HAVE_CREATED = {
    "batch": "the batch may have been created: look for it with 'cbatch list' before creating it again",
    "dataset": "the file may have been stored: look for it with 'cbatch datasets list' before uploading it again",
}
_BASE_URL_HINT = "it comes from --base-url, CO_API_URL or the profile: 'cbatch config' shows which"


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code ``exc`` means: its class's ``exit_code`` (the one table), else 1.

    Every error cbatch raises on purpose is a :class:`CbatchError`, the API's
    included, and says its own code (:mod:`cohere_batch_cli.errors`); anything
    else is a bug.
    """
    return exc.exit_code if isinstance(exc, CbatchError) else ExitCode.UNEXPECTED


def message_for(exc: BaseException, key_source: str | None = None) -> str:
    """The one line a user sees, naming the next thing to try where there is one.

    Hints come from the layer that knows the next command (a task, or this
    table for what every command shares); the API layer only says what
    happened, so this is where its errors learn which cbatch command helps.
    """
    if isinstance(exc, AuthenticationError):
        source = f"the key from {key_source} was refused" if key_source else "check the key"
        return _with_request_id(
            f"authentication failed: {exc}; {source}; 'cbatch config' shows the settings in effect",
            exc,
        )
    if isinstance(exc, NotFoundError):
        return _with_request_id(f"{exc}; {exc.hint or _not_found_hint(exc.path or '')}", exc)
    if isinstance(exc, CohereAPIError):
        text = str(exc)
        if exc.retries:
            text += f" (after {exc.retries} retr{'y' if exc.retries == 1 else 'ies'})"
        advice = exc.hint or _MAY_HAVE_CREATED.get(exc.may_have_created or "")
        return _with_request_id(text, exc) + (f"; {advice}" if advice else "")
    if isinstance(exc, InvalidBaseURL):
        return f"{exc}; {exc.hint or _BASE_URL_HINT}"
    if isinstance(exc, CbatchError):
        return f"{exc}; {exc.hint}" if exc.hint else str(exc)
    text = str(exc).strip()
    return text if text else type(exc).__name__


def _not_found_hint(path: str) -> str:
    if path.startswith("/v1/datasets/"):
        return "list datasets with: cbatch datasets list"
    if path.startswith("/v2/batches/"):
        return "list batches with: cbatch list"
    return "is the base URL right? see: cbatch config"


def _with_request_id(text: str, exc: CohereAPIError) -> str:
    return f"{text} [request id {exc.request_id}]" if exc.request_id else text


def report(exc: BaseException, out: Output, *, key_source: str | None = None) -> ExitCode:
    """Print the error line (and the traceback under --debug); return the exit code."""
    code = exit_code_for(exc)
    if out.debug_enabled:
        out.traceback(exc)
    if isinstance(exc, InputRejected) and not str(exc):
        return code
    out.error(message_for(exc, key_source), unexpected=code == ExitCode.UNEXPECTED)
    if code == ExitCode.UNEXPECTED and not out.debug_enabled:
        out.info("run again with --debug for details, and report it if it persists")
    return code


def command_errors(func: F) -> F:
    """Wrap a command: known errors become one line and their exit code; Ctrl-C exits 130, SIGTERM 143, SIGHUP 129."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx")  # every command takes typer's context as ``ctx``
        # typer hands over its bundled Click's Context; find_root is what get_state needs
        state = get_state(cast(typer.Context, ctx)) if hasattr(ctx, "find_root") else CliState()
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C, and SIGTERM and SIGHUP (errors.Terminated)
            state.out.info(f"\n{stop_word(exc)}")
            raise typer.Exit(for_interruption(exc)) from None
        except BrokenPipeError:
            state.out.silence_stdout()
            raise typer.Exit(ExitCode.OK) from None
        except Exception as exc:  # the one catch-all, by design: see the module docstring
            code = report(exc, state.out, key_source=state.key_source)
            raise typer.Exit(code) from None
        finally:
            state.close()

    return wrapper  # type: ignore[return-value]
