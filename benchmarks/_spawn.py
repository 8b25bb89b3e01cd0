"""Run one command and report its own wall time, CPU and peak RSS: ``_spawn.py FD ARGV...``.

Why a launcher: on Linux a child's ``ru_maxrss`` starts from the resident size of the
process it was exec'd from (exec records the old address space's high-water mark), and
subprocess spawns with vfork, so every child of a harness holding a sandbox would report
the harness's 100 MB. Spawned from this small process instead, the floor is ~10 MB, below
any Python child's own peak. The report (JSON, times from the system-wide monotonic
clock) goes to file descriptor FD; stdin, stdout and stderr pass straight through.
"""

import json
import os
import sys
import time

fd = int(sys.argv[1])
argv = sys.argv[2:]
os.set_inheritable(fd, False)
started = time.monotonic()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
ended = time.monotonic()
report = {
    "started": started,
    "ended": ended,
    "rc": os.waitstatus_to_exitcode(status),
    "cpu": usage.ru_utime + usage.ru_stime,
    "maxrss_kb": usage.ru_maxrss,
}
os.write(fd, json.dumps(report).encode())
sys.exit(0)
