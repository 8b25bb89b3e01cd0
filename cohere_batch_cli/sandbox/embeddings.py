"""Deterministic embeddings of the model's real dimension, in every type the API returns.

One SHAKE-256 digest of the text gives ``dimension`` bytes; each byte picks a float from
a fixed table, and the other types are derived from the same bytes the way Cohere's are
from its floats: ``int8`` and ``uint8`` quantise, ``binary`` and ``ubinary`` pack the
signs 8 to a byte (``binary`` is ``ubinary - 128``), ``base64`` is the float32 bytes.
A digest and a table lookup keep a 1536-dimension vector at microseconds.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

FLOATS = tuple(round((b - 127.5) / 127.5 * 0.1, 4) for b in range(256))
"""Byte to float: small values around zero, as normalised embeddings have."""


def raw(text: str, dimension: int) -> bytes:
    return hashlib.shake_256(text.encode("utf-8")).digest(dimension)


def _packed(data: bytes) -> list[int]:
    out = []
    for i in range(0, len(data), 8):
        byte = 0
        for b in data[i : i + 8]:
            byte = (byte << 1) | (1 if b >= 128 else 0)
        out.append(byte)
    return out


def encode(data: bytes, kind: str) -> Any:
    if kind == "float":
        return [FLOATS[b] for b in data]
    if kind == "int8":
        return [b - 128 for b in data]
    if kind == "uint8":
        return list(data)
    if kind == "ubinary":
        return _packed(data)
    if kind == "binary":
        return [b - 128 for b in _packed(data)]
    floats = [FLOATS[b] for b in data]
    return base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode("ascii")


def embeddings(keys: list[str], dimension: int, kinds: list[str]) -> dict[str, list[Any]]:
    """``{"float": [[...], ...], "int8": ...}`` for each unit key, in the API's shape."""
    data = [raw(k, dimension) for k in keys]
    return {kind: [encode(d, kind) for d in data] for kind in kinds}
