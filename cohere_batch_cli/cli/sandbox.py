"""``cbatch sandbox serve``: run the local stand-in for Cohere's batch API in the foreground.

Only typer is imported at module level; the server (starlette, uvicorn, behind the
``[sandbox]`` extra) and platformdirs are imported when the command runs.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import LocalWriteError, UsageError
from ._context import get_state
from ._errors import command_errors

app = typer.Typer(
    help="""A local Cohere batch and dataset API for tests, demos and CI: no account, no network.

It speaks the same batch and dataset endpoints, with the same error bodies
and Avro output, so a client cannot tell the difference on the calls it
makes. See docs/sandbox.md.

Example:

  cbatch sandbox serve --port 8787
""",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.callback()
def sandbox() -> None:
    """A local Cohere batch and dataset API for tests, demos and CI: no account, no network."""


def default_data_dir() -> Path:
    """Where a sandbox keeps its state unless told otherwise (survives restarts)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("cbatch")) / "sandbox"


def check_data_dir(path: Path) -> None:
    """Refuse a --data-dir that cannot hold the sandbox's state, naming the folder and why."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".cbatch-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except FileExistsError:
        raise LocalWriteError(f"cannot use --data-dir {path}: it is a file, not a folder") from None
    except OSError as exc:
        raise LocalWriteError(f"cannot use --data-dir {path}: {exc.strerror or exc}") from None


def listen_error(host: str, port: int, exc: OSError) -> UsageError:
    """Why the sandbox could not listen, as a usage error that says what to change."""
    where = f"cannot listen on {host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return UsageError(f"{where}: the port is in use; choose another --port (0 picks a free one)")
    if exc.errno == errno.EACCES:
        return UsageError(f"{where}: permission denied (ports below 1024 need privileges); choose another --port")
    if exc.errno == errno.EADDRNOTAVAIL:
        return UsageError(f"{where}: {host} is not an address of this machine; check --host")
    return UsageError(f"{where}: {exc.strerror or exc}")


@app.command()
@command_errors
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: a free one).")] = 8787,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", file_okay=False, help="Where datasets and batches are kept [default: the user data dir]/sandbox.", show_default=False)] = None,
    api_key: Annotated[Optional[list[str]], typer.Option("--api-key", help="Accept only this bearer key (repeatable); without it any non-empty key works.", show_default=False)] = None,
    records_per_second: Annotated[float, typer.Option("--records-per-second", min=0.001, help="Pace of each batch.")] = 1000.0,
    queue_delay: Annotated[float, typer.Option("--queue-delay", min=0, help="Seconds a new batch stays QUEUED.")] = 0.0,
    validation_delay: Annotated[float, typer.Option("--validation-delay", min=0, help="Seconds a new dataset takes to validate.")] = 0.0,
    fail_rate_429: Annotated[float, typer.Option("--fail-rate-429", min=0, max=1, help="Share of API requests answered 429 (Retry-After: 1).")] = 0.0,
    fail_rate_5xx: Annotated[float, typer.Option("--fail-rate-5xx", min=0, max=1, help="Share of API requests answered 500/503.")] = 0.0,
    latency: Annotated[float, typer.Option("--latency", min=0, help="Seconds added to every API request.")] = 0.0,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Makes the injected faults repeat exactly.", show_default=False)] = None,
) -> None:
    """Serve the sandbox until Ctrl-C, then stop cleanly.

    Point cbatch (or any Cohere client) at it with the two exports it prints.
    State lives in --data-dir and survives restarts; --fail-rate-429,
    --fail-rate-5xx and --latency inject faults for testing clients.

    Examples:

      cbatch sandbox serve --port 8787

      cbatch sandbox serve --port 0 --data-dir ./sandbox --records-per-second 50
    """
    from ._extras import require_sandbox_extra

    require_sandbox_extra()
    out = get_state(ctx).out
    from ..sandbox.__main__ import run_foreground
    from ..sandbox.server import SandboxServer, SandboxSettings

    keys = tuple(api_key or ())
    try:
        settings = SandboxSettings(
            data_dir=data_dir or default_data_dir(),
            host=host,
            port=port,
            api_keys=keys,
            records_per_second=records_per_second,
            queue_delay=queue_delay,
            validation_delay=validation_delay,
            fail_rate_429=fail_rate_429,
            fail_rate_5xx=fail_rate_5xx,
            latency=latency,
            seed=seed,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    def ready(server: SandboxServer) -> None:
        key_hint = "<one of your --api-key values>" if keys else "any-key"
        out.raw_line(f"cbatch sandbox listening on {server.base_url}")
        out.info(f"  data in {settings.data_dir}")
        out.info("Point cbatch at it with:")
        out.raw_line(f"  export CO_API_URL={server.base_url}")
        out.raw_line(f"  export CO_API_KEY={key_hint}")
        out.info("Ctrl-C stops it.")

    check_data_dir(settings.data_dir)
    try:
        run_foreground(settings, ready)
    except OSError as exc:
        raise listen_error(host, port, exc) from None
    out.info("cbatch sandbox stopped")
