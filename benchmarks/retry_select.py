"""P7's measured child: select the records to retry from a local input and local output parts.

    python benchmarks/retry_select.py INPUT PARTS_DIR WORK_DIR

Runs :func:`cohere_batch_cli.selection.select` (the step of ``cbatch retry`` between the
download and the upload, with its worker processes) and prints one JSON line: the counts,
the seconds the selection took, and the peak RSS of this process and of its largest worker.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def main() -> int:
    from cohere_batch_cli.selection import select

    source, parts_dir, work = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    parts = sorted(parts_dir.glob("part-*.avro"))
    started = time.monotonic()
    found = select(source, [parts], work / "retry-input.jsonl", work)
    took = time.monotonic() - started
    print(
        json.dumps(
            {
                "input_records": found.input_records,
                "records": found.records,
                "failed": found.failed,
                "missing": found.missing,
                "seconds": took,
                "workers": found.workers,
                "self_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                "retry_input_bytes": (work / "retry-input.jsonl").stat().st_size,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
