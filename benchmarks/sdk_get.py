"""P2's comparison: one batch retrieve with the official Cohere SDK (runs in the bench-only venv).

Usage: python sdk_get.py BASE_URL BATCH_ID. Prints the batch as JSON on stdout, as
``cbatch get ID --json`` does, and the time of each stage as JSON on stderr.
"""

import json
import sys
import time

t0 = time.perf_counter()
import cohere  # noqa: E402

t1 = time.perf_counter()
client = cohere.ClientV2(
    api_key="bench-key", base_url=sys.argv[1], log_warning_experimental_features=False
)
t2 = time.perf_counter()
response = client.batches.retrieve(sys.argv[2])
t3 = time.perf_counter()
batch = response.batch if hasattr(response, "batch") else response
sys.stdout.write(json.dumps(batch.model_dump(mode="json", exclude_none=True)) + "\n")
sys.stderr.write(json.dumps({"import": t1 - t0, "client": t2 - t1, "call": t3 - t2}) + "\n")
