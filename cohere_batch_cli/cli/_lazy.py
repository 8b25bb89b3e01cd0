"""Commands built only when they run: the one lazy mechanism of the CLI.

Typer evaluates every parameter annotation of every command it builds, which
was most of the cost of each cbatch invocation (docs/performance.md, P1): a
group of ten commands built whole cost ``jobs list --json`` a third of its
time. So the root and the ``jobs`` group both list their commands from a
table and build one only when Click asks for it by name. Both kinds of table
entry (a module under ``cli/`` that registers several commands, a single
command function) go through :class:`LazyGroup`, and every built command's
help passes :func:`keep_examples_whole` once.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator
from typing import Any

import typer
from typer.core import TyperGroup


def keep_examples_whole(text: str | None) -> str | None:
    """Help text whose indented paragraphs (examples) are never rewrapped.

    Click rewraps every paragraph to the terminal's width, which put a line
    break inside ``cbatch results ID --format csv ... -o failed.csv`` at 80
    columns: a command that no longer pastes. A ``\\b`` line before a paragraph
    tells Click to keep it as written; a line longer than the terminal is then
    wrapped by the terminal itself, and copies whole.
    """
    if not text:
        return text
    paragraphs = text.split("\n\n")
    kept = []
    for paragraph in paragraphs:
        lines = [line for line in paragraph.split("\n") if line.strip()]
        if (
            lines
            and all(line.startswith((" ", "\t")) for line in lines)
            and not paragraph.startswith("\b")
        ):
            paragraph = "\b\n" + paragraph.strip("\n")
        kept.append(paragraph)
    return "\n\n".join(kept)


def _walk(command: Any) -> Iterator[Any]:
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from _walk(sub)


def _built(sub: typer.Typer) -> Any:
    group = typer.main.get_command(sub)
    for command in _walk(group):
        command.help = keep_examples_whole(command.help)
    return group


def _typer() -> typer.Typer:
    return typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False, add_completion=False)


@functools.cache
def build_module(module_name: str) -> Any:
    """The commands of one module under cli/, as a Click group built on first use."""
    module = importlib.import_module(f"{__package__}.{module_name}")
    sub = _typer()
    if module_name == "sandbox":
        sub.add_typer(module.app, name="sandbox", rich_help_panel="Sandbox")
    else:
        module.register(sub)

    @sub.callback()
    def _group() -> None:  # keeps a module of one command a group, so it is found by name
        """Commands of one module."""

    return _built(sub)


@functools.cache
def build_function(name: str, function: Callable[..., None]) -> Any:
    """One command function as a Click command, built on first use."""
    sub = _typer()
    sub.command(name)(function)
    return _built(sub)


class LazyGroup(TyperGroup):
    """A group that lists its commands from a table and builds one only when asked.

    Subclasses say which names exist (:meth:`names`) and how one is built
    (:meth:`load`); nothing else in the CLI builds commands lazily.
    """

    def names(self) -> list[str]:
        raise NotImplementedError

    def load(self, ctx: Any, name: str) -> Any:
        raise NotImplementedError

    def list_commands(self, ctx: Any) -> list[str]:
        return self.names()

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.names():
            return None
        return self.load(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """As Click's, with "did you mean" drawn from the table (the commands are not built)."""
        try:
            return super().resolve_command(ctx, args)
        except typer.BadParameter:
            raise
        except Exception as exc:
            message = getattr(exc, "message", None)
            if message is None or not args or "Did you mean" in message:
                raise
            import difflib

            matches = difflib.get_close_matches(args[0], self.names(), n=3, cutoff=0.6)
            if matches:
                suggestion = " or ".join(repr(m) for m in matches)
                exc.message = f"{message.rstrip('.')}. Did you mean {suggestion}?"  # type: ignore[attr-defined]
            raise


def function_group(table: dict[str, Callable[..., None]]) -> type[LazyGroup]:
    """A :class:`LazyGroup` class over a table of command functions (as ``jobs`` has)."""

    class FunctionGroup(LazyGroup):
        def names(self) -> list[str]:
            return list(table)

        def load(self, ctx: Any, name: str) -> Any:
            return build_function(name, table[name])

    return FunctionGroup
