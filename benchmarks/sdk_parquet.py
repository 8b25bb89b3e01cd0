"""P12's comparison: what a user does without cbatch to get an embed batch's vectors into Parquet.

Usage: python sdk_parquet.py BASE_URL OUTPUT_DATASET_ID JSONL PARQUET. Runs in the
bench-only venv (the official SDK, and pyarrow). Two steps, as the SDK's docs lead a user:

1. ``client.utils.save_dataset(dataset, JSONL, format="jsonl")``: each record a line, its
   ``body`` the response as a JSON string (exactly P4's comparison).
2. pyarrow reads that JSONL and builds the same columns cbatch writes (custom_id, status,
   error, input_tokens, embeddings_float as lists of float32 vectors) into Parquet.

Step 2 is written as a careful user would, the fastest of the ways tried on this machine:
the JSONL is streamed in blocks (``pyarrow.json.open_json``, so memory stays bounded),
and each block's body strings are parsed by pyarrow's own C++ JSON reader with an
explicit schema (about twice the speed of ``json.loads`` per body), then written as one
row group per block.
"""

import io
import sys

import cohere
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

base_url, dataset_id, jsonl, parquet = sys.argv[1:5]
client = cohere.ClientV2(
    api_key="bench-key", base_url=base_url, log_warning_experimental_features=False
)
dataset = client.datasets.get(dataset_id).dataset
client.utils.save_dataset(dataset, jsonl, format="jsonl")

VECTORS = pa.list_(pa.list_(pa.float32()))
BODY = pa.schema(
    [
        ("embeddings", pa.struct([("float", VECTORS)])),
        ("meta", pa.struct([("billed_units", pa.struct([("input_tokens", pa.int64())]))])),
    ]
)
SCHEMA = pa.schema(
    [
        ("custom_id", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("input_tokens", pa.int64()),
        ("embeddings_float", VECTORS),
    ]
)
LINES = pa.schema([("custom_id", pa.string()), ("body", pa.string()), ("error", pa.string())])

reader = pj.open_json(
    jsonl,
    read_options=pj.ReadOptions(block_size=16 << 20),
    parse_options=pj.ParseOptions(explicit_schema=LINES),
)
with pq.ParquetWriter(parquet, SCHEMA, compression="zstd") as writer:
    for batch in reader:
        bodies = batch.column("body").to_pylist()
        text = "\n".join(body or "{}" for body in bodies).encode()
        parsed = pj.read_json(
            io.BytesIO(text),
            parse_options=pj.ParseOptions(explicit_schema=BODY, unexpected_field_behavior="ignore"),
        ).combine_chunks()
        error = batch.column("error")
        failed = pc.fill_null(pc.not_equal(error, ""), False)
        table = pa.Table.from_arrays(
            [
                batch.column("custom_id"),
                pc.if_else(failed, "failed", "succeeded"),
                pc.if_else(failed, error, pa.scalar(None, pa.string())),
                parsed.column("meta").combine_chunks().field("billed_units").field("input_tokens"),
                parsed.column("embeddings").combine_chunks().field("float"),
            ],
            schema=SCHEMA,
        )
        writer.write_table(table)
