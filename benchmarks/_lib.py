"""Measuring tools for the benchmark cases: child processes, sandboxes, data, the SDK venv.

Every measurement is of a whole child process, the way a user or a script runs cbatch:
wall time from spawn to exit, the time its first byte of stdout arrived, and its own
CPU time and peak RSS from ``os.wait4`` (per child, unlike ``RUSAGE_CHILDREN``, which
is the maximum over every child the harness ever waited for), taken by the small
launcher ``_spawn.py`` (see there why the harness cannot spawn them itself).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"
VENV_BIN = Path(sys.executable).parent
PYTHON = sys.executable
CBATCH = str(VENV_BIN / "cbatch")
SDK_VENV = WORK / "sdk-venv"
SDK_PACKAGES = ("cohere", "pyinstrument", "py-spy")
API_KEY = "bench-key"


# -- results ----------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table."""

    case: str
    measure: str
    result: str
    target: str = ""
    ok: bool | None = None  # None: reported, no target
    note: str = ""

    @property
    def mark(self) -> str:
        return {True: "pass", False: "MISS", None: "-"}[self.ok]


@dataclass
class Proc:
    """What one child process did."""

    argv: list[str]
    rc: int
    wall: float
    started: float  # time.monotonic() at spawn
    first_byte: float | None  # seconds after spawn, None if it printed nothing
    cpu: float  # user + system seconds of the child itself
    maxrss_mb: float
    out_bytes: int
    stdout: bytes = b""
    stderr: bytes = b""

    @property
    def ended(self) -> float:
        return self.started + self.wall

    def check(self, ok_codes: Sequence[int] = (0,)) -> Proc:
        if self.rc not in ok_codes:
            raise RuntimeError(
                f"{' '.join(self.argv)} exited {self.rc}\nstdout: {self.stdout[-2000:]!r}\n"
                f"stderr: {self.stderr[-4000:].decode(errors='replace')}"
            )
        return self


def run_proc(
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    *,
    keep_stdout: bool = False,
    timeout: float = 600,
    cwd: Path | None = None,
) -> Proc:
    """Run a child to its end (through ``_spawn.py``); stdout is read and counted as it arrives."""
    err = tempfile.TemporaryFile()  # noqa: SIM115 - read and closed once the child has exited
    report_r, report_w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_spawn.py"), str(report_w), *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=err,
        env=env,
        cwd=cwd,
        pass_fds=(report_w,),
        start_new_session=True,
    )
    os.close(report_w)
    killer = threading.Timer(timeout, lambda: _kill(proc.pid))
    killer.start()
    first_at: float | None = None
    size = 0
    chunks: list[bytes] = []
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    try:
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            if first_at is None:
                first_at = time.monotonic()
            size += len(chunk)
            if keep_stdout:
                chunks.append(chunk)
        proc.wait()
        with os.fdopen(report_r, "rb") as fh:
            raw = fh.read()
    finally:
        killer.cancel()
        proc.stdout.close()
    err.seek(0)
    stderr = err.read()
    err.close()
    if not raw:
        raise RuntimeError(
            f"{' '.join(argv)}: no report (killed after {timeout} s?) {stderr[-2000:]!r}"
        )
    rep = json.loads(raw)
    started = rep["started"]
    return Proc(
        argv=list(argv),
        rc=rep["rc"],
        wall=rep["ended"] - started,
        started=started,
        first_byte=None if first_at is None else first_at - started,
        cpu=rep["cpu"],
        maxrss_mb=rep["maxrss_kb"] / 1024,
        out_bytes=size,
        stdout=b"".join(chunks),
        stderr=stderr,
    )


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def interleaved(
    commands: dict[str, Callable[[], Proc]], runs: int, warmup: int = 1
) -> dict[str, list[Proc]]:
    """Run each command ``warmup`` times, then ``runs`` rounds of all of them side by side.

    Interleaving (a, b, c, a, b, c, ...) puts every compared command under the same
    machine conditions, so the ratios hold even when absolute times drift.
    """
    for _ in range(warmup):
        for run in commands.values():
            run()
    out: dict[str, list[Proc]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, run in commands.items():
            out[name].append(run())
    return out


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def med(procs: Sequence[Proc], attr: str = "wall") -> float:
    return statistics.median(getattr(p, attr) for p in procs)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def ratio(value: float) -> str:
    return f"{value:.2f}x"


# -- environments -------------------------------------------------------------------------


def cli_env(base_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a measured child: the sandbox's URL and a key, nothing of the user's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CO_", "COHERE_", "CBATCH_"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    home = WORK / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        CBATCH_CONFIG=str(home / "config.toml"),
        CBATCH_STATE_DIR=str(home / "state"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_CONFIG_HOME=str(home / "config"),
        NO_COLOR="1",
        COLUMNS="100",
        NO_PROXY="*",
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with cached bytecode, as users run it
    candidate = os.environ.get("CBATCH_BENCH_PYTHONPATH")
    if candidate:  # run.py --pythonpath: measure a candidate copy of the package instead
        env["PYTHONPATH"] = candidate
    else:
        env.pop("PYTHONPATH", None)
    if base_url:
        env.update(CO_API_KEY=API_KEY, CO_API_URL=base_url)
    env.update(extra)
    return env


def sdk_python(install: bool = True) -> str | None:
    """The bench-only venv with the official SDK and the profilers; made on first use."""
    python = SDK_VENV / "bin" / "python"
    marker = SDK_VENV / ".ready"
    if marker.exists() and python.exists():
        return str(python)
    if not install:
        return None
    print(
        f"  creating {SDK_VENV} with pip install {' '.join(SDK_PACKAGES)} (once)", file=sys.stderr
    )
    subprocess.run([sys.executable, "-m", "venv", str(SDK_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *SDK_PACKAGES],
        check=True,
    )
    marker.write_text("ok\n")
    return str(python)


def sdk_version(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import cohere; print(cohere.__version__)"], capture_output=True, text=True
    )
    return out.stdout.strip() or "?"


# -- sandboxes ------------------------------------------------------------------------------


class TimedLog(list):  # type: ignore[type-arg]
    """The sandbox's request log, with the monotonic time each request arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: Any) -> None:
        self.times.append(time.monotonic())
        super().append(item)

    def since(self, start: float, end: float | None = None) -> list[tuple[float, str, str]]:
        """(time, method, path) of the requests that arrived in [start, end]."""
        return [
            (t, m, p)
            # a request may be mid-append (its time logged, not yet itself): zip drops it
            for t, (m, p, _h) in zip(list(self.times), list(self), strict=False)
            if t >= start and (end is None or t <= end)
        ]


@contextmanager
def sandbox(name: str, **settings: Any) -> Iterator[Any]:
    """A fresh in-process sandbox under .work/sandbox-NAME with a timed request log."""
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    data_dir = WORK / f"sandbox-{name}"
    shutil.rmtree(data_dir, ignore_errors=True)
    server = SandboxServer(SandboxSettings(data_dir=data_dir, **settings))
    server.request_log = TimedLog()
    with server:
        yield server
    shutil.rmtree(data_dir, ignore_errors=True)


def api_client(server: Any) -> Any:
    from cohere_batch_cli.api.client import CohereClient

    return CohereClient(API_KEY, server.base_url)


# -- data ---------------------------------------------------------------------------------


def write_chat_jsonl(path: Path, count: int, *, pad: int = 0, prefix: str = "r") -> Path:
    """``count`` chat requests, each about ``pad`` characters longer than the shortest."""
    filler = " ".join(["lorem"] * (pad // 6)) if pad else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        block: list[str] = []
        for i in range(count):
            content = f"question {i} {filler}".rstrip()
            line = {
                "custom_id": f"{prefix}-{i}",
                "body": {"messages": [{"role": "user", "content": content}]},
            }
            block.append(json.dumps(line) + "\n")
            if len(block) >= 2000:
                fh.write("".join(block))
                block.clear()
        fh.write("".join(block))
    return path


def write_chat_jsonl_bytes(path: Path, size: int, *, line_bytes: int = 4096) -> int:
    """A chat input file of about ``size`` bytes; returns its record count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = '{"custom_id": "big-%09d", "body": {"messages": [{"role": "user", "content": "'
    tail = '"}]}}\n'
    filler = ("lorem ipsum dolor sit amet " * (line_bytes // 20))[
        : line_bytes - len(head % 0) - len(tail)
    ]
    count = 0
    written = 0
    with open(path, "w", encoding="ascii") as fh:
        while written < size:
            block = "".join(head % (count + i) + filler + tail for i in range(256))
            fh.write(block)
            written += len(block)
            count += 256
    return count


def write_embed_jsonl(path: Path, count: int, *, prefix: str = "e") -> Path:
    """``count`` embed requests of one text each, float vectors asked for."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        block: list[str] = []
        for i in range(count):
            body = {
                "texts": [f"passage {i} of the benchmark"],
                "input_type": "search_document",
                "embedding_types": ["float"],
            }
            block.append(json.dumps({"custom_id": f"{prefix}-{i}", "body": body}) + "\n")
            if len(block) >= 2000:
                fh.write("".join(block))
                block.clear()
        fh.write("".join(block))
    return path


def make_dataset(
    client: Any, path: Path, timeout: float = 600, dataset_type: str = "batch-chat-v2-input"
) -> str:
    from cohere_batch_cli.tasks.datasets import wait_for_dataset

    dataset_id = client.upload_dataset(path, name=path.stem, dataset_type=dataset_type)
    dataset = wait_for_dataset(client, dataset_id, timeout=timeout)
    if dataset.validation_status != "validated":
        raise RuntimeError(f"dataset {dataset_id} did not validate: {dataset.raw}")
    return str(dataset_id)


def wait_batch(client: Any, batch_id: str, timeout: float = 600) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.get_batch(batch_id)
        if batch.status.is_terminal:
            return batch
        if time.monotonic() > deadline:
            raise RuntimeError(f"batch {batch_id} still {batch.status.label} after {timeout} s")
        time.sleep(0.1)


def module_available(name: str) -> bool:
    """Whether a cohere_batch_cli module or package has landed (checked without importing it here)."""
    base = REPO / "cohere_batch_cli" / name.replace(".", "/")
    return base.with_name(base.name + ".py").exists() or (base / "__init__.py").exists()


@dataclass
class Context:
    """What every case gets: options and a place to keep notes for the docs."""

    quick: bool
    no_sdk: bool
    notes: dict[str, list[str]] = field(default_factory=dict)

    def note(self, case: str, text: str) -> None:
        self.notes.setdefault(case, []).append(text)
        print(f"  [{case}] {text}", file=sys.stderr)

    def runs(self, full: int, quick: int) -> int:
        return quick if self.quick else full
