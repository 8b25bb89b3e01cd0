"""``python -m cohere_batch_cli.sandbox``: run a sandbox in the foreground.

Prints ``cbatch sandbox listening on http://HOST:PORT`` (flushed) once it accepts
connections, so a parent process can read the URL, and stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from .server import SandboxServer, SandboxSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cohere_batch_cli.sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--api-key", action="append", default=[])
    parser.add_argument("--records-per-second", type=float, default=1000.0)
    parser.add_argument("--queue-delay", type=float, default=0.0)
    parser.add_argument("--validation-delay", type=float, default=0.0)
    parser.add_argument("--fail-rate-429", type=float, default=0.0)
    parser.add_argument("--fail-rate-5xx", type=float, default=0.0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--part-max-records", type=int, default=10000)
    args = parser.parse_args(argv)
    settings = SandboxSettings(
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        api_keys=tuple(args.api_key),
        records_per_second=args.records_per_second,
        queue_delay=args.queue_delay,
        validation_delay=args.validation_delay,
        fail_rate_429=args.fail_rate_429,
        fail_rate_5xx=args.fail_rate_5xx,
        latency=args.latency,
        seed=args.seed,
        part_max_records=args.part_max_records,
    )
    run_foreground(settings, _announce)
    return 0


def _announce(server: SandboxServer) -> None:
    print(f"cbatch sandbox listening on {server.base_url}", flush=True)


def run_foreground(
    settings: SandboxSettings, on_ready: Callable[[SandboxServer], None] = _announce
) -> SandboxServer:
    """Serve until SIGINT or SIGTERM (then stop cleanly); returns the stopped server."""
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with SandboxServer(settings, record_requests=False) as server:
            on_ready(server)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return server


if __name__ == "__main__":
    sys.exit(main())
