"""JMESPath expressions from the command line (``--query``, ``--column``), compiled once.

The library's own message for a malformed expression spans three lines (the
message, the expression, a caret under the position); an error line is one
line, so the same facts are said in one: what is wrong, at which character,
and the expression up to it. jmespath is imported here only, when a query is
given.
"""

from __future__ import annotations

from typing import Any


class QuerySyntaxError(ValueError):
    """A malformed JMESPath expression, described in one line."""


def compile_query(expression: str) -> Any:
    """The compiled expression, or :class:`QuerySyntaxError` saying what is wrong and where."""
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        raise QuerySyntaxError(describe(exc, expression)) from None


def describe(exc: BaseException, expression: str) -> str:
    """``Unclosed ` delimiter at character 8 (after '[?x == ')``: the parser's verdict in one line."""
    from jmespath.exceptions import IncompleteExpressionError, LexerError

    position = getattr(exc, "lex_position", None)
    if isinstance(exc, LexerError):
        what = getattr(exc, "message", "") or "cannot read it"
    elif isinstance(exc, IncompleteExpressionError) or getattr(exc, "token_type", "") == "EOF":
        what = "the expression ends too soon"
    elif getattr(exc, "token_value", None):
        what = f"unexpected {exc.token_value!r}"  # type: ignore[attr-defined]
    else:
        what = str(exc).strip().splitlines()[0]
    if not isinstance(position, int):
        return what
    before = expression[:position]
    where = f"at character {position + 1}"
    return f"{what} {where} (after {before!r})" if before else f"{what} {where}"
