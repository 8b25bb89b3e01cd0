"""Embeddings of each model's published dimension, in every type the API returns, in the
API's response shape, the same for the same text."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest

from tests.sandbox.sandbox_client import embed_lines

TYPES = ["float", "int8", "uint8", "binary", "ubinary", "base64"]


def _bodies(api: Any, texts: list[str], model: str, **body: Any) -> dict[str, dict[str, Any]]:
    done = api.run(embed_lines(texts, **body), type_="batch-embed-v2-input", model=model)
    assert done["status"] == "BATCH_STATUS_COMPLETED", done
    return {cid: json.loads(r["body"]) for cid, r in api.by_id(done["output_dataset_id"]).items()}


@pytest.mark.parametrize(
    ("model", "dimension"),
    [
        ("embed-v4.0", 1536),
        ("embed-english-v3.0", 1024),
        ("embed-multilingual-light-v3.0", 384),
        ("an-unlisted-embed-model", 1024),
    ],
)
def test_each_model_has_its_published_dimension(shared: Any, model: str, dimension: int) -> None:
    (body,) = _bodies(shared, ["hello"], model, embedding_types=TYPES).values()
    e = body["embeddings"]
    assert sorted(e) == sorted(TYPES)
    assert [len(e[k][0]) for k in ("float", "int8", "uint8")] == [dimension] * 3
    assert [len(e[k][0]) for k in ("binary", "ubinary")] == [dimension // 8] * 2
    assert all(-128 <= v <= 127 for v in e["int8"][0] + e["binary"][0])
    assert all(0 <= v <= 255 for v in e["uint8"][0] + e["ubinary"][0])
    assert [b - 128 for b in e["ubinary"][0]] == e["binary"][0]
    floats = struct.unpack(f"<{dimension}f", base64.b64decode(e["base64"][0]))
    assert floats == pytest.approx(e["float"][0], abs=1e-6)
    signs = [1 if v > 0 else 0 for v in e["float"][0][:8]]
    assert e["ubinary"][0][0] == int("".join(map(str, signs)), 2), "binary packs the float signs"


def test_the_response_shape_and_determinism(shared: Any) -> None:
    bodies = _bodies(
        shared, ["same text", "other text", "same text"], "embed-v4.0", embedding_types=["int8"]
    )
    one = bodies["e0"]
    assert set(one) == {"id", "embeddings", "texts", "meta", "response_type"}
    assert one["response_type"] == "embeddings_by_type" and one["texts"] == ["same text"]
    assert (
        one["meta"]["api_version"] == {"version": "2"}
        and one["meta"]["billed_units"]["input_tokens"] > 0
    )
    assert list(one["embeddings"]) == ["int8"]
    assert one["embeddings"] == bodies["e2"]["embeddings"] != bodies["e1"]["embeddings"]
    default = _bodies(shared, ["x"], "embed-v4.0")["e0"]
    assert list(default["embeddings"]) == ["float"]


def test_the_dimension_option_applies_to_every_model(start: Any) -> None:
    api = start(embed_dimension=16)
    for model in ("embed-v4.0", "embed-english-light-v3.0"):
        (body,) = _bodies(api, ["hi"], model, embedding_types=["float", "binary"]).values()
        assert (
            len(body["embeddings"]["float"][0]) == 16 and len(body["embeddings"]["binary"][0]) == 2
        )


def test_an_unknown_embedding_type_fails_the_record(shared: Any) -> None:
    done = shared.run(
        embed_lines(["a"], embedding_types=["float", "int4"]),
        type_="batch-embed-v2-input",
        model="embed-v4.0",
    )
    (record,) = shared.results(done["output_dataset_id"])
    assert record["body"] is None and record["error"].startswith(
        "invalid request: embedding_types must be one of"
    )
