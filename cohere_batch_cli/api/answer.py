"""An API answer's body, read and parsed within bounds, whatever the server sends.

The transport reads every answer through :func:`read_body` and parses it with
:func:`load_json`, so no answer can make cbatch use more than a bounded amount
of memory or stack:

- the body is decompressed here, not by httpx, a slice at a time
  (``zlib``'s ``max_length``), and reading stops once it passes
  :data:`MAX_ANSWER_BYTES`: a gzip bomb of a few kilobytes that inflates to
  gigabytes is refused after 32 MiB, and a body sent plain is bounded the same;
- the JSON is parsed by orjson, which refuses nesting past 1,024 levels and a
  number that only fits as infinity (``1e400``); a document nested deeper than
  :data:`MAX_DEPTH` levels is refused too, since cbatch walks and prints the
  objects it keeps (``--json``) and Python's own recursion stops near 1,000.

Nothing in the contract comes near these bounds: a page of 1,000 batches is
about 1 MB and 4 levels deep.

:class:`OutOfBounds` says which bound an answer passed; the transport turns it
into an :class:`~.errors.UnexpectedResponseError` that is not retried (asking
again gets the same answer). :class:`NotJSON` is a body that is not JSON at all
(an HTML page from a proxy), which the transport retries.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

import orjson

MAX_ANSWER_BYTES = 32 * 1024 * 1024
"""The largest body an answer may have, once decompressed."""

MAX_DEPTH = 64
"""The deepest nesting of arrays and objects an answer may have."""

ACCEPT_ENCODING = "gzip, deflate"
"""The encodings asked for: the ones :func:`read_body` decodes within its bound."""

_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class OutOfBounds(ValueError):
    """An answer past one of the bounds: its message says which, in words for the error line."""


class NotJSON(ValueError):
    """A body that is not JSON."""


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit:,} bytes"


def read_body(chunks: Iterable[bytes], encoding: str, *, limit: int = MAX_ANSWER_BYTES) -> bytes:
    """The body of ``chunks`` as sent (``iter_raw``), decoded per ``encoding``; at most ``limit`` bytes.

    ``encoding`` is the answer's ``Content-Encoding``. gzip and deflate are
    decoded a bounded slice at a time; an encoding not asked for (br, zstd,
    or two stacked) is refused rather than trusted to an unbounded decoder.
    """
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        decoder = None
    elif coding in _WBITS:
        decoder = zlib.decompressobj(_WBITS[coding])
    else:
        raise OutOfBounds(
            f"a body in the {encoding.strip()!r} encoding, which cbatch did not ask for"
        )
    body = bytearray()
    too_large = OutOfBounds(
        f"a body larger than {_size(limit)}" + (" once decompressed" if decoder else "")
    )
    for chunk in chunks:
        if decoder is None:
            body += chunk
            if len(body) > limit:
                raise too_large
            continue
        data = chunk
        while data and not decoder.eof:
            # Never more than one byte past the bound at a time, however much the input inflates.
            body += decoder.decompress(data, limit + 1 - len(body))
            if len(body) > limit:
                raise too_large
            data = decoder.unconsumed_tail
    if decoder is not None and not decoder.eof:
        raise NotJSON(f"a {coding} body cut short")
    return bytes(body)


def load_json(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``body`` parsed as strict JSON (no NaN, no Infinity), at most ``max_depth`` levels deep."""
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = str(exc)
        if "depth" in reason or "recursion" in reason:
            raise OutOfBounds(f"JSON nested deeper than {max_depth} levels") from None
        if "infinity" in reason or "out of range" in reason:
            raise OutOfBounds("a number too large to read") from None
        raise NotJSON(reason) from None
    if _deeper_than(value, max_depth):
        raise OutOfBounds(f"JSON nested deeper than {max_depth} levels")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest in ``value`` past ``limit`` levels; without recursion."""
    if not isinstance(value, (dict, list)):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
