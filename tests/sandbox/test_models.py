"""GET /v1/models and /v1/models/{model} as openapi.yaml describes them, and the public
tokenizer file their ``tokenizer_url`` points to (CONTRACT.md, Models)."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from cohere_batch_cli.sandbox import build_tokenizer

GET_MODEL_FIELDS = {
    "name", "is_deprecated", "endpoints", "finetuned", "context_length", "tokenizer_url",
    "default_endpoints", "features",
}  # fmt: skip


def _all(api: Any, **params: Any) -> list[dict[str, Any]]:
    seen, token = [], None
    while True:
        body = api.http.get(
            "/v1/models", params={**params, **({"page_token": token} if token else {})}
        ).json()
        seen += body["models"]
        token = body.get("next_page_token")
        if not token:
            return seen


def test_the_list_is_realistic_and_pages(shared: Any) -> None:
    first = shared.http.get("/v1/models").json()
    assert len(first["models"]) == 17 and "next_page_token" not in first  # 20 a page by default
    everything = _all(shared, page_size=3)
    names = [m["name"] for m in everything]
    assert len(names) == len(set(names)) and names == [m["name"] for m in _all(shared)]
    for name in ("command-a-03-2025", "command-r-08-2024", "embed-v4.0", "embed-english-v3.0"):
        assert name in names
    small = shared.http.get("/v1/models", params={"page_size": 3}).json()
    assert len(small["models"]) == 3 and small["next_page_token"]
    assert "next_page_token" not in shared.http.get("/v1/models", params={"page_size": 1000}).json()
    for model in everything:
        assert set(model) >= GET_MODEL_FIELDS, model
        assert isinstance(model["context_length"], int) and model["context_length"] >= 512


def test_filters_by_endpoint_and_default(shared: Any) -> None:
    embed = _all(shared, endpoint="embed")
    assert embed and all(m["endpoints"] == ["embed"] for m in embed)
    (default,) = _all(shared, endpoint="chat", default_only="true")
    assert default["name"] == "command-a-03-2025" and default["default_endpoints"] == ["chat"]
    assert shared.http.get("/v1/models", params={"endpoint": "batch"}).status_code == 400
    assert shared.http.get("/v1/models", params={"default_only": "true"}).status_code == 400
    assert shared.http.get("/v1/models", params={"page_token": "nope"}).status_code == 400


def test_get_a_model_and_an_unknown_one(shared: Any) -> None:
    model = shared.http.get("/v1/models/embed-english-v3.0").json()
    assert (model["name"], model["context_length"], model["endpoints"]) == (
        "embed-english-v3.0",
        512,
        ["embed"],
    )
    chat = shared.http.get("/v1/models/command-a-03-2025").json()
    assert chat["context_length"] == 256_000 and chat["sampling_defaults"]["temperature"] == 0.3
    missing = shared.http.get("/v1/models/no-such-model")
    assert missing.status_code == 404
    assert missing.json()["message"].startswith("model 'no-such-model' not found")
    assert httpx.get(f"{shared.server.base_url}/v1/models").status_code == 401, (
        "the API itself needs a key"
    )


def test_context_length_option_applies_to_every_model(start: Any) -> None:
    api = start(context_length=64)
    assert {m["context_length"] for m in _all(api)} == {64}


def test_the_tokenizer_is_public_and_loads_in_the_tokenizers_library(shared: Any) -> None:
    from tokenizers import Tokenizer

    url = shared.http.get("/v1/models/command-r-08-2024").json()["tokenizer_url"]
    assert url == shared.http.get("/v1/models/embed-v4.0").json()["tokenizer_url"]
    response = httpx.get(url)  # no key: public storage
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "application/json"
    )
    assert httpx.head(url).status_code == 200
    tokenizer = Tokenizer.from_str(response.text)
    encoded = tokenizer.encode("What is the capital of France?", add_special_tokens=False)
    assert 1 < len(encoded.ids) < 30
    assert tokenizer.decode(encoded.ids) == "What is the capital of France?"
    other = httpx.get(url.replace("sandbox-bpe-v1", "gpt-2"))
    assert other.status_code == 404 and "<Code>NoSuchKey</Code>" in other.text


def test_the_committed_tokenizer_is_what_the_script_builds() -> None:
    assert build_tokenizer.main(["--check"]) == 0


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_no_text_makes_more_tokens_than_its_utf8_bytes(text: str) -> None:
    from cohere_batch_cli.sandbox import tokenizer

    ids = tokenizer.ids(text)
    assert len(ids) <= len(text.encode("utf-8"))
    assert tokenizer.decode(ids) == text
