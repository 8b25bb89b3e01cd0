"""P11's data: a production-size byte-level BPE tokenizer, chat records to count, and a model API.

The tokenizer is trained once with Hugging Face ``tokenizers`` (the library Cohere's
tokenizer files are made for) on a generated corpus, to a vocabulary of 200,000 like the
real ones, and cached in ``benchmarks/.work/p11/``. The text is made of a lexicon of
syllable words drawn with Zipf's law, the way words occur in real text: a few very
common short words, a long tail of rare long ones, capitals, numbers and punctuation.
The corpus is drawn more evenly over the lexicon than the records are, as a tokenizer is
trained on far more text than any one batch holds. Everything is seeded: every run
builds and counts the same data.

``ModelServer`` answers ``GET /v1/models/{model}`` with that tokenizer's URL and serves
the file, so ``cbatch estimate`` runs its real path: the model call, the key-less
download once, the cache after.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

VOCAB_SIZE = 200_000
MODEL = "bench-200k"
CONTEXT_LENGTH = 128_000
RECORD_CHARS = 500

_ONSETS = ["", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
           "br", "ch", "cl", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr", "sk", "sp", "qu"]  # fmt: skip
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ee", "io", "ou", "y", "oa"]
_CODAS = ["", "", "n", "r", "s", "t", "l", "m", "ng", "st", "nd", "ck", "x"]


@cache
def lexicon() -> tuple[list[str], list[float], list[float]]:
    """(words by rank, cumulative weights of the records' Zipf law, of the corpus's)."""
    rng = random.Random(11)
    syllables = sorted({o + v + c for o in _ONSETS for v in _VOWELS for c in _CODAS})

    def word(rank: int) -> str:
        n = 1 if rank < 1_500 else 2 if rank < 25_000 else 3 if rank < 150_000 else 4
        return "".join(rng.choice(syllables) for _ in range(n))

    words = list(dict.fromkeys(word(rank) for rank in range(400_000)))
    records = list(itertools.accumulate(1.0 / (i + 1.5) ** 1.07 for i in range(len(words))))
    corpus = list(itertools.accumulate(1.0 / (i + 10) for i in range(len(words))))
    return words, records, corpus


def _sentence(rng: random.Random, weights: list[float]) -> str:
    words = rng.choices(lexicon()[0], cum_weights=weights, k=rng.randint(6, 18))
    words[0] = words[0].capitalize()
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words)), str(rng.randrange(1, 2000)))
    if rng.random() < 0.3:
        words[rng.randrange(len(words))] += ","
    return " ".join(words) + rng.choice(".....?!")


def text(
    rng: random.Random, size: int = RECORD_CHARS, *, weights: list[float] | None = None
) -> str:
    weights = weights or lexicon()[1]
    out = ""
    while len(out) < size:
        out += _sentence(rng, weights) + " "
    return out[:size].rstrip()


def tokenizer_file(work: Path) -> tuple[Path, float | None]:
    """The 200k tokenizer's file, trained on first use; (path, seconds it took or None if cached)."""
    path = work / "p11" / f"bpe-{VOCAB_SIZE}.json"
    if path.exists():
        return path, None
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    started = time.monotonic()
    rng = random.Random(5)
    corpus_weights = lexicon()[2]
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
    tokenizer.train_from_iterator(
        (text(rng, 2_000, weights=corpus_weights) for _ in range(50_000)), trainer=trainer
    )
    if tokenizer.get_vocab_size() < VOCAB_SIZE:
        raise RuntimeError(
            f"the P11 tokenizer has {tokenizer.get_vocab_size():,} tokens, fewer than {VOCAB_SIZE:,}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tokenizer.save(str(tmp))
    tmp.replace(path)
    return path, time.monotonic() - started


def write_records(path: Path, count: int, seed: int = 1) -> Path:
    """``count`` chat records of about RECORD_CHARS characters, each different."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(count):
            body = {"messages": [{"role": "user", "content": text(rng)}]}
            fh.write(json.dumps({"custom_id": f"r-{i}", "body": body}) + "\n")
    return path


class ModelServer:
    """``GET /v1/models/bench-200k`` and ``GET /tokenizers/bench.json``, on a free loopback port."""

    def __init__(self, tokenizer: Path) -> None:
        data = tokenizer.read_bytes()
        self.downloads = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == f"/v1/models/{MODEL}":
                    body = json.dumps({
                        "name": MODEL, "endpoints": ["chat"], "context_length": CONTEXT_LENGTH,
                        "tokenizer_url": f"{server.base_url}/tokenizers/bench.json",
                    }).encode()  # fmt: skip
                elif self.path == "/tokenizers/bench.json":
                    server.downloads += 1
                    body = data
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> ModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
