"""The one rule for text from outside on its way to a person: shown, never obeyed.

Batch and dataset names, the API's messages, file contents and paths come from
whoever made them. Printed raw, ``ESC [2J`` clears the screen, ``ESC ]0;...BEL``
renames the window, a C1 ``CSI`` does what ``ESC [`` does on many terminals, and
a bidi override makes ``exe.txt`` read as ``txt.exe``. Every human-readable line
cbatch prints passes through :func:`clean`, which replaces each such character
with a visible escape (``\\x1b``, ``\\u202e``) that does nothing.

JSON is data, so its values must stay exact: :func:`json_for_terminal` writes
the same characters as ``\\uXXXX`` escapes, which decode to the same value.
"""

from __future__ import annotations

import re

_UNSAFE = (
    "\x00-\x1f\x7f-\x9f"  # C0 controls (ESC, BEL, CR, tab, line feed...), DEL, C1 controls
    "\u061c\u200b-\u200f"  # Arabic letter mark; zero-width space, joiners, LRM, RLM
    "\u2028\u2029"  # line and paragraph separators
    "\u202a-\u202e"  # bidi embeddings and overrides
    "\u2066-\u2069"  # bidi isolates
    "\ufeff"  # zero-width no-break space (a byte order mark mid-text)
)
_UNSAFE_CHAR = re.compile(f"[{_UNSAFE}]")
_UNSAFE_IN_JSON = re.compile(f"[{_UNSAFE.replace(chr(0) + '-' + chr(0x1F), '')}]")
"""What ``json.dumps(..., ensure_ascii=False)`` leaves raw: it already escapes C0 itself."""

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: str) -> str:
    """``text`` as one harmless line: every control, escape and bidi character made visible.

    Idempotent (the escapes it writes are plain characters), so text cleaned
    once may be cleaned again by the output object without changing.
    """
    if _UNSAFE_CHAR.search(text) is None:  # the common case: nothing to do, no copy
        return text
    return _UNSAFE_CHAR.sub(_visible, text)


def clean_lines(text: str) -> str:
    """Like :func:`clean`, but the line breaks cbatch itself put in a message are kept.

    Text from outside that may hold a line break is cleaned by the caller
    first, so a server message can never forge a line of its own.
    """
    if _UNSAFE_CHAR.search(text) is None:
        return text
    return "\n".join(clean(line) for line in text.split("\n"))


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_for_terminal(text: str) -> str:
    """JSON text with the characters a terminal would obey written as ``\\uXXXX`` escapes.

    Only valid on text made by ``json.dumps``: there, such characters can only
    stand inside strings, where the escape is the same value.
    """
    if _UNSAFE_IN_JSON.search(text) is None:
        return text
    return _UNSAFE_IN_JSON.sub(_json_escape, text)


_UNSAFE_BYTES_JSON = re.compile(
    rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xd8\x9c|\xe2\x80[\x8b-\x8f\xa8-\xae]|\xe2\x81[\xa6-\xa9]|\xef\xbb\xbf"
)
"""The same characters as UTF-8 bytes (tab and line feed excepted: they lay out JSON lines)."""


def _bytes_escape(match: re.Match[bytes]) -> bytes:
    char = match.group().decode("utf-8")
    return f"\\u{ord(char):04x}".encode("ascii")


def bytes_for_terminal(data: bytes) -> bytes:
    """UTF-8 output bound for a terminal, with every character it would obey escaped.

    For streamed results (``cbatch results -o -`` at a terminal): in JSON the
    escape is the same value; in CSV a person reads it as what it is.
    """
    if _UNSAFE_BYTES_JSON.search(data) is None:
        return data
    return _UNSAFE_BYTES_JSON.sub(_bytes_escape, data)
