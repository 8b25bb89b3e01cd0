"""P4's comparison: save a batch's output dataset as JSONL with the official Cohere SDK.

Usage: python sdk_results.py BASE_URL OUTPUT_DATASET_ID FILE. Runs in the bench-only
venv. The SDK (7.x) offers ``client.utils.save_dataset(dataset, path, format="jsonl")``
over ``client.datasets.get(id).dataset``: it streams each part with ``requests`` and
decodes it with ``fastavro``, writing one ``json.dump`` per record. Older SDKs had
``cohere.utils.save_jsonl`` with the same behaviour; either is used, whichever exists.
"""

import sys

import cohere

client = cohere.ClientV2(
    api_key="bench-key", base_url=sys.argv[1], log_warning_experimental_features=False
)
dataset = client.datasets.get(sys.argv[2]).dataset
utils = getattr(client, "utils", None)
if utils is not None and hasattr(utils, "save_dataset"):
    utils.save_dataset(dataset, sys.argv[3], format="jsonl")
else:  # older SDKs
    from cohere.utils import save_jsonl

    save_jsonl(dataset, sys.argv[3])
