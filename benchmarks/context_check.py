"""Time the local check of a file against the context check create --file adds to it.

    python benchmarks/context_check.py FILE CONTEXT_LENGTH RUNS

Both run in this one process, interleaved, on the same file (in the page cache after the
first read): ``validate.check_file`` (what create --file always did) and
``tasks.estimating.undecided_lines`` (the byte-bound pass the context check adds, which
settles every record that fits by its size; the model call it also makes is one GET).
Prints the medians as JSON.
"""

import json
import statistics
import sys
import time
from pathlib import Path

from cohere_batch_cli.tasks.estimating import undecided_lines
from cohere_batch_cli.validate import check_file

path, context, runs = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
checks, passes, left = [], [], 0
for _ in range(runs):
    t0 = time.perf_counter()
    report = check_file(path)
    t1 = time.perf_counter()
    left = len(undecided_lines(path, "chat", context, 4096))
    t2 = time.perf_counter()
    assert report.ok, report.problems[:3]
    checks.append(t1 - t0)
    passes.append(t2 - t1)
print(
    json.dumps(
        {
            "check": statistics.median(checks),
            "context": statistics.median(passes),
            "undecided": left,
            "rows": report.rows,
        }
    )
)
