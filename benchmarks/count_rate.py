"""Count the same records two ways in one process: the library alone, and cbatch's by words.

    python benchmarks/count_rate.py TOKENIZER.json RECORDS.jsonl

"The library alone" is ``encode_batch_fast`` over every text, 2,048 at a time (both
cores); "by words" is ``TextTokenizer.count_many`` on a fresh tokenizer (an empty word
memory, as a new process has). Both see the same texts, and must give the same counts.
Prints records per second of each as JSON; the time is the counting alone, not reading.
"""

import json
import sys
import time
from pathlib import Path

from cohere_batch_cli.tokens.tokenizer import TextTokenizer

data = Path(sys.argv[1]).read_bytes()
with open(sys.argv[2], "rb") as fh:
    texts = [json.loads(line)["body"]["messages"][0]["content"] for line in fh]
chunks = [texts[i : i + 2048] for i in range(0, len(texts), 2048)]
whole = TextTokenizer.from_bytes(data, "bench")
started = time.perf_counter()
plain = [n for chunk in chunks for n in whole.count_whole(chunk)]
library = time.perf_counter() - started
words = TextTokenizer.from_bytes(data, "bench")
started = time.perf_counter()
ours = [n for chunk in chunks for n in words.count_many(chunk)]
by_words = time.perf_counter() - started
assert ours == plain, "counting by words must give the library's counts"
print(
    json.dumps(
        {"records": len(texts), "library": len(texts) / library, "by_words": len(texts) / by_words}
    )
)
