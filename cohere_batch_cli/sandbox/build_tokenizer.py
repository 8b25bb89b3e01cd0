"""Regenerate ``sandbox-tokenizer.json``, the sandbox's byte-level BPE tokenizer.

Run ``python -m cohere_batch_cli.sandbox.build_tokenizer`` (add ``--check`` to compare
instead of writing). The file is committed, so every installation counts tokens the
same way whatever ``tokenizers`` release it has; this script is how it was made, from
the fixed corpus below, with Hugging Face ``tokenizers`` (the library whose JSON format
Cohere's ``tokenizer_url`` files use).

Why byte-level BPE with these settings: the 256 byte symbols are all in the vocabulary,
there is no normalizer (NFKC can turn one character into many) and no prefix space, so
every token covers at least one byte of the text and **no input makes more tokens than
its UTF-8 bytes**. Without special tokens or a post-processor, ``encode(text,
add_special_tokens=False)`` counts the text alone, as Cohere's SDK counts offline.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .log import get

TOKENIZER_FILE = Path(__file__).with_name("sandbox-tokenizer.json")
VOCAB_SIZE = 2048

_CORPUS = """\
You are a helpful assistant. Answer the question in one short paragraph.
What is the capital of France? The capital of France is Paris.
Summarise the following text in three bullet points for a busy reader.
Translate this sentence into Spanish, French and German, please.
Classify the sentiment of this review as positive, negative or neutral.
The product arrived on time and works exactly as described in the listing.
I would like to return my order because the size does not fit.
Write a short story about a robot who learns to paint the sea at night.
Explain the difference between a list and a tuple in Python with an example.
How many days are there in a leap year, and why do we need leap years at all?
Give me a recipe for a quick vegetarian dinner with rice, beans and tomatoes.
Question number one: what is the weather like today in London and in Toronto?
Extract the names, dates and amounts from this invoice and return them as JSON.
The meeting has been moved to Thursday at 10:30 in the main conference room.
Please write an email to the customer apologising for the delay in shipping.
The quick brown fox jumps over the lazy dog while the cat watches from the window.
Batch inference lets you send thousands of requests at once and collect the results later.
Each request in the batch has a custom identifier, a body and a model set on the batch.
Search the documents for the section about data retention and quote it exactly.
def add(a: int, b: int) -> int:
    return a + b
for i in range(10):
    print(f"record {i}: {i * i}")
{"custom_id": "request-1", "body": {"messages": [{"role": "user", "content": "Hello"}]}}
SELECT id, name, created_at FROM batches WHERE status = 'COMPLETED' ORDER BY created_at DESC;
Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 100 250 1000 2024 2025 3.14 42 99.9 1,500,000
Dates and times: 2025-03-05T14:59:25Z, Monday, Tuesday, Wednesday, January, February, March.
¿Dónde está la estación de tren? Me gustaría comprar un billete para mañana.
Où se trouve la gare ? Je voudrais acheter un billet pour demain matin.
Wo ist der Bahnhof? Ich möchte eine Fahrkarte für morgen kaufen.
Onde fica a estação de comboios? Gostaria de comprar um bilhete para amanhã.
東京の天気はどうですか？明日は晴れるでしょう。
北京今天的天气怎么样？明天会下雨吗？
서울의 날씨는 어떻습니까? 내일은 맑을 것입니다.
Москва — столица России. Какая сегодня погода?
مرحبا، كيف حالك اليوم؟ أريد أن أتعلم اللغة العربية.
नमस्ते, आप कैसे हैं? मुझे हिंदी सीखनी है।
Emoji and symbols: 😀 👍 🚀 ✅ → ← © ® ™ € £ ¥ % & @ # * + = < > ~ | \\ / ^
"""


def corpus() -> list[str]:
    """The training text: the lines above, each repeated so common pairs reach min_frequency."""
    lines = [line for line in _CORPUS.splitlines() if line.strip()]
    return [line for line in lines for _ in range(3)]


def build() -> Any:
    """Train the tokenizer from :func:`corpus`; deterministic for a given ``tokenizers``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    return tokenizer


def render(tokenizer: Any) -> str:
    """The JSON text as committed: the library's own serialisation, keys sorted, one newline."""
    data = json.loads(tokenizer.to_str())
    return (
        json.dumps(data, ensure_ascii=False, sort_keys=True, indent=None, separators=(",", ":"))
        + "\n"
    )


def model_of(text: str) -> dict[str, Any]:
    """The vocabulary and merges of a tokenizer JSON, merges as pairs whatever the format."""
    model = json.loads(text)["model"]
    merges = [m.split(" ") if isinstance(m, str) else list(m) for m in model["merges"]]
    return {"vocab": model["vocab"], "merges": merges}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render(build())
    if "--check" in args:
        same = model_of(text) == model_of(TOKENIZER_FILE.read_text(encoding="utf-8"))
        if not same:
            get("build_tokenizer").error("%s differs from a fresh build", TOKENIZER_FILE.name)
        return 0 if same else 1
    tmp = TOKENIZER_FILE.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(TOKENIZER_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
