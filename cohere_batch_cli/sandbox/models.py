"""The models the sandbox lists, and what a batch needs to know of its model.

Names, endpoints, context lengths and embedding dimensions are Cohere's published ones
(docs.cohere.com/docs/models); every model's ``tokenizer_url`` points at the sandbox's
one tokenizer (:mod:`.tokenizer`), served without a key as public storage is. A batch may
name a model that is not listed (the sandbox runs any name, as it always has): it then
gets :data:`FALLBACK_CHAT` or :data:`FALLBACK_EMBED`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .settings import SandboxSettings
from .tokenizer import TOKENIZER_NAME

DEFAULT_PAGE_SIZE = 20
"""``GET /v1/models`` pages hold 20 models unless ``page_size`` says otherwise."""
ENDPOINTS = ("chat", "embed", "classify", "summarize", "rerank", "rate", "generate")
"""``CompatibleEndpoint`` of the API description (it has no ``batch``)."""

_CHAT_FEATURES = [
    "json_mode",
    "json_schema",
    "safety_modes",
    "strict_tools",
    "tool_choice",
    "tools",
]
_CHAT_SAMPLING = {
    "temperature": 0.3,
    "k": 0,
    "p": 0.75,
    "frequency_penalty": 0.0,
    "presence_penalty": 0.0,
}


@dataclass(frozen=True)
class Model:
    name: str
    endpoints: tuple[str, ...]
    context_length: int
    embed_dimension: int | None = None
    default_for: tuple[str, ...] = ()
    deprecated: bool = False
    vision: bool = False

    @property
    def is_embed(self) -> bool:
        return "embed" in self.endpoints


MODELS: tuple[Model, ...] = (
    Model("command-a-03-2025", ("chat",), 256_000, default_for=("chat",)),
    Model("command-a-reasoning-08-2025", ("chat",), 256_000),
    Model("command-a-vision-07-2025", ("chat",), 128_000, vision=True),
    Model("command-a-translate-08-2025", ("chat",), 8_992),
    Model("command-r7b-12-2024", ("chat",), 128_000),
    Model("command-r-plus-08-2024", ("chat",), 128_000),
    Model("command-r-08-2024", ("chat",), 128_000),
    Model("command-r-plus", ("chat",), 128_000, deprecated=True),
    Model("command-r", ("chat",), 128_000, deprecated=True),
    Model(
        "embed-v4.0", ("embed",), 128_000, embed_dimension=1536, default_for=("embed",), vision=True
    ),
    Model("embed-english-v3.0", ("embed",), 512, embed_dimension=1024),
    Model("embed-multilingual-v3.0", ("embed",), 512, embed_dimension=1024),
    Model("embed-english-light-v3.0", ("embed",), 512, embed_dimension=384),
    Model("embed-multilingual-light-v3.0", ("embed",), 512, embed_dimension=384),
    Model("rerank-v3.5", ("rerank",), 4_096, default_for=("rerank",)),
    Model("rerank-english-v3.0", ("rerank",), 4_096),
    Model("rerank-multilingual-v3.0", ("rerank",), 4_096),
)
BY_NAME = {m.name: m for m in MODELS}
FALLBACK_CHAT = Model("(unlisted chat model)", ("chat",), 128_000)
FALLBACK_EMBED = Model("(unlisted embed model)", ("embed",), 512, embed_dimension=1024)


def resolve(name: str, kind: str) -> Model:
    """The model a batch of ``kind`` (``chat`` or ``embed``) runs as."""
    model = BY_NAME.get(name)
    if model is not None:
        return model
    return FALLBACK_EMBED if kind == "embed" else FALLBACK_CHAT


def context_length(model: Model, settings: SandboxSettings) -> int:
    return settings.context_length or model.context_length


def embed_dimension(model: Model, settings: SandboxSettings) -> int:
    return (
        settings.embed_dimension or model.embed_dimension or FALLBACK_EMBED.embed_dimension or 1024
    )


def tokenizer_url(base_url: str) -> str:
    return f"{base_url}/_sandbox/tokenizers/{TOKENIZER_NAME}.json"


def model_json(model: Model, settings: SandboxSettings, base_url: str) -> dict[str, Any]:
    """A ``GetModelResponse``."""
    out: dict[str, Any] = {
        "name": model.name,
        "is_deprecated": model.deprecated,
        "endpoints": list(model.endpoints),
        "finetuned": False,
        "context_length": context_length(model, settings),
        "tokenizer_url": tokenizer_url(base_url),
        "default_endpoints": list(model.default_for),
    }
    if model.is_embed:
        out["features"] = ["embedding_types"] + (["image_inputs"] if model.vision else [])
    elif "chat" in model.endpoints:
        out["features"] = _CHAT_FEATURES + (["vision"] if model.vision else [])
        out["sampling_defaults"] = dict(_CHAT_SAMPLING)
    else:
        out["features"] = []
        out["sampling_defaults"] = {"max_tokens_per_doc": 4096}
    return out


def listed(endpoint: str | None, default_only: bool) -> list[Model]:
    """The list ``GET /v1/models`` pages through, filtered as its query asks."""
    models = [m for m in MODELS if endpoint is None or endpoint in m.endpoints]
    if default_only and endpoint is not None:
        models = [m for m in models if endpoint in m.default_for]
    return models
