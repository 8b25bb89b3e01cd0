"""The watch's default pace, in one place that costs nothing to import.

The engine (:mod:`cohere_batch_cli.watcher`) takes its defaults from here, and so
do the command line's option defaults and the ``resume with:`` commands. The
engine itself is heavy to import (a dozen event classes), so a command that never
watches, such as ``cbatch get``, must not load it just to learn that the
shortest pause is two seconds (docs/performance.md, P2).
"""

from __future__ import annotations

INTERVAL = 2.0
"""Shortest pause between polling rounds, used while progress moves (seconds)."""
MAX_INTERVAL = 30.0
"""Longest pause between rounds, reached while nothing moves (seconds)."""
OUTAGE_LIMIT = 300.0
"""How long polls may fail before the last error is raised (seconds)."""
PAUSE = 30.0
"""The pause before the second round of retries (seconds); it doubles before each round after."""
