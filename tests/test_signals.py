"""Ctrl-C, SIGTERM and SIGHUP, for real: signals to the installed ``cbatch`` in the middle of its work.

Each test starts ``.venv/bin/cbatch`` as a subprocess against a loopback server
that keeps it busy (a server that reads an upload slowly, a part server that
trickles a download, an API whose batch never ends or whose answer never
comes), waits until the work is visibly under way, sends SIGINT, and asserts:
exit code 130 within :data:`PROMPT` seconds of the signal, the one
``interrupted``/``stopped watching`` message, no file under a final name and
no temporary file left, and no ``:cancel`` ever sent (the batch is as it was).
SIGTERM (what CI cancellation and ``timeout`` send) and SIGHUP (a closed
terminal) must do exactly what Ctrl-C does, with exit 143 and 129.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY
from tests.support.fake_api import OUTPUT_RECORDS, FakeApi
from tests.support.part_server import SLOW, PartServer

PROMPT = 3.0
"""Seconds from SIGINT to exit that count as prompt."""

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGINT") or os.name != "posix", reason="needs POSIX signals"
)


def _cbatch() -> str:
    found = shutil.which("cbatch", path=os.path.dirname(sys.executable))
    if found is None:
        pytest.skip("cbatch is not installed in this environment")
    return found


def _default_sigint() -> None:
    # A shell without job control starts background jobs with SIGINT ignored, and Python
    # keeps an ignored SIGINT ignored: give the child the default so it sees Ctrl-C.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


STOPS = [
    pytest.param(signal.SIGTERM, ExitCode.TERMINATED, "terminated (SIGTERM)", id="SIGTERM"),
    pytest.param(signal.SIGHUP, ExitCode.HANGUP, "hung up (SIGHUP)", id="SIGHUP"),
]
"""The signals that must do what Ctrl-C does: the signal, its exit code, the word for it."""


class Run:
    """One ``cbatch`` subprocess; ``interrupt()`` sends SIGINT and waits for the exit."""

    def __init__(self, base_url: str, args: list[str], cwd: Path) -> None:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("CO_", "COHERE_", "CBATCH_"))
        }
        env.update(
            CO_API_KEY=TEST_KEY,
            CO_API_URL=base_url,
            CBATCH_CONFIG=str(cwd / "config.toml"),
            CBATCH_STATE_DIR=str(cwd / "state"),
            CBATCH_RETRY_BASE="0.01",
            XDG_CACHE_HOME=str(cwd / "cache"),
            NO_COLOR="1",
            PYTHONFAULTHANDLER="1",
        )
        self.args = args
        self.proc = subprocess.Popen(
            [_cbatch(), *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint,
        )  # fmt: skip
        self.took: float | None = None
        self.stdout = self.stderr = ""

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                pytest.fail(
                    f"cbatch {' '.join(self.args)} ended ({self.proc.returncode}) before {what}:\n{out}\n{err}"
                )
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(
                    f"cbatch {' '.join(self.args)}: {what} did not happen within {timeout}s"
                )
            time.sleep(0.02)

    def interrupt(self, thread: int | None = None, sig: int = signal.SIGINT) -> int:
        """``sig`` to the process (the kernel picks a thread, as with Ctrl-C), or to one thread."""
        if thread is None:
            self.proc.send_signal(sig)
        else:
            _tgkill(self.proc.pid, thread, sig)
        started = time.monotonic()
        try:
            self.stdout, self.stderr = self.proc.communicate(timeout=PROMPT + 1)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            _, err = self.proc.communicate()
            pytest.fail(
                f"cbatch {' '.join(self.args)} was still running {PROMPT + 1}s after SIGINT:\n{err[-4000:]}"
            )
        self.took = time.monotonic() - started
        assert TEST_KEY not in self.stdout + self.stderr
        return self.proc.returncode

    def threads(self) -> list[int]:
        """The ids of the process's threads (Linux), the main thread (its pid) first."""
        tids = sorted(int(t) for t in os.listdir(f"/proc/{self.proc.pid}/task"))
        return sorted(tids, key=lambda t: t != self.proc.pid)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


_SYS_TGKILL = {"x86_64": 234, "aarch64": 131}.get(platform.machine())
needs_tgkill = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and _SYS_TGKILL),
    reason="signals one thread with Linux's tgkill",
)


def _tgkill(pid: int, tid: int, sig: int) -> None:
    """Send ``sig`` to one thread of another process, as the kernel may do with a Ctrl-C."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(_SYS_TGKILL, pid, tid, int(sig)) != 0:
        raise OSError(ctypes.get_errno(), "tgkill failed")


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = FakeApi().start()
    yield server
    server.stop()


def _files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def _assert_interrupted(run: Run, code: int, expected: int = ExitCode.INTERRUPTED) -> None:
    assert code == expected, f"exit {code}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"
    assert run.took is not None and run.took < PROMPT, f"took {run.took:.1f}s after SIGINT"
    assert "Traceback" not in run.stderr, run.stderr


# -- upload ----------------------------------------------------------------------------------


class SlowReader:
    """Accepts one HTTP request at a time and reads its body slowly; never answers."""

    def __init__(self, rate: int = 256 * 1024) -> None:
        self.rate = rate
        self.received = 0
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            conn.settimeout(0.1)
            head = b""
            with conn:
                while not self._stop.is_set():
                    try:
                        chunk = conn.recv(self.rate // 20)
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not chunk:
                        break
                    if not self.requests or b"\r\n\r\n" not in head:
                        head += chunk
                        if b"\r\n\r\n" in head:
                            self.requests.append(head.split(b"\r\n\r\n", 1)[0])
                    self.received += len(chunk)
                    self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


def test_ctrl_c_during_an_upload_exits_130_at_once(tmp_path: Path) -> None:
    line = (
        '{"custom_id": "c-%d", "body": {"messages": [{"role": "user", "content": "'
        + "x" * 8000
        + '"}]}}\n'
    )
    source = tmp_path / "big.jsonl"
    source.write_text("".join(line % i for i in range(1000)))  # 8 MB: minutes at 256 KB/s
    server = SlowReader()
    try:
        before = _files(tmp_path)
        run = Run(server.base_url, ["datasets", "upload", str(source)], tmp_path)
        run.wait_until(
            lambda: server.received > 512 * 1024, "half a megabyte of the upload arrived"
        )
        code = run.interrupt()
    finally:
        server.stop()
    _assert_interrupted(run, code)
    assert server.requests and server.requests[0].startswith(b"POST /v1/datasets")
    assert server.received < source.stat().st_size, "the upload was not interrupted"
    assert run.stderr.rstrip().endswith("interrupted") and run.stdout == ""
    assert _files(tmp_path) == before | {"cache"} or _files(tmp_path) == before


# -- results download ------------------------------------------------------------------------


def _slow_download(api: FakeApi, parts: PartServer, tmp_path: Path) -> Run:
    """``cbatch results`` under way: its part trickling in, its temporary output file open."""
    url = parts.add("out-1-0", api.parts["out-1-0"], [SLOW])
    api.datasets["out-1"]["dataset_parts"][0]["url"] = url
    run = Run(api.base_url, ["results", "b-done", "-o", "results.jsonl"], tmp_path)
    run.wait_until(
        lambda: (
            any(name.startswith(".results.jsonl.part") for name in _files(tmp_path))
            and len(run.threads()) > 1
        ),
        "the temporary output file was opened and the download began",
    )
    return run


@needs_tgkill
def test_ctrl_c_during_a_results_download_leaves_no_file(api: FakeApi, tmp_path: Path) -> None:
    before = _files(tmp_path)
    with PartServer(slow_delay=0.2, slow_pieces=200) as parts:  # the part trickles for ~40 s
        run = _slow_download(api, parts, tmp_path)
        code = run.interrupt(thread=run.proc.pid)  # the main thread, as the kernel usually picks
    _assert_interrupted(run, code)
    left = _files(tmp_path) - before - {"cache"}
    assert left == set(), f"left behind: {left}"
    assert api.cancels() == 0 and api.batches["b-done"]["status"] == "BATCH_STATUS_COMPLETED"

    # Run again, at full speed: the whole file, every record in order.
    api.datasets["out-1"]["dataset_parts"][0]["url"] = f"{api.base_url}/_parts/out-1-0"
    again = Run(api.base_url, ["results", "b-done", "-o", "results.jsonl"], tmp_path)
    _, err = again.proc.communicate(timeout=15)
    assert again.proc.returncode == 0, err
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["custom_id"] for line in lines] == [
        r["custom_id"] for r in OUTPUT_RECORDS
    ]


@needs_tgkill
def test_ctrl_c_delivered_to_a_download_thread_still_stops_at_once(
    api: FakeApi, tmp_path: Path
) -> None:
    before = _files(tmp_path)
    with PartServer(slow_delay=0.2, slow_pieces=200) as parts:
        run = _slow_download(api, parts, tmp_path)
        time.sleep(0.5)  # the main thread is now waiting for the part, not running Python code
        code = run.interrupt(thread=run.threads()[-1])
    _assert_interrupted(run, code)
    assert _files(tmp_path) - before - {"cache"} == set()


def test_ctrl_c_during_results_wait_exits_130_and_cancels_nothing(
    api: FakeApi, tmp_path: Path
) -> None:
    run = Run(api.base_url, ["results", "b-run", "--wait", "-o", "results.jsonl"], tmp_path)
    run.wait_until(lambda: api.count("GET /v2/batches/b-run") >= 2, "the wait polled the batch")
    code = run.interrupt()
    assert api.cancels() == 0 and api.batches["b-run"]["status"] == "BATCH_STATUS_IN_PROGRESS"
    assert not (tmp_path / "results.jsonl").exists()
    _assert_interrupted(run, code)


# -- watch -----------------------------------------------------------------------------------


def test_ctrl_c_during_watch_exits_130_and_never_cancels(api: FakeApi, tmp_path: Path) -> None:
    run = Run(
        api.base_url,
        ["watch", "b-run", "--plain", "--interval", "0.1", "--max-interval", "0.2"],
        tmp_path,
    )
    run.wait_until(lambda: api.count("GET /v2/batches/b-run") >= 3, "three polls")
    code = run.interrupt()
    _assert_interrupted(run, code)
    assert "nothing was cancelled" in run.stderr and "resume with: cbatch" in run.stderr
    assert api.cancels() == 0
    assert api.batches["b-run"]["status"] == "BATCH_STATUS_IN_PROGRESS"


def test_ctrl_c_while_a_watch_poll_hangs_exits_at_once(api: FakeApi, tmp_path: Path) -> None:
    api.slow_seconds = 30.0
    api.fail("slow", float("inf"))  # every answer takes 30 s, far inside the default 60 s timeout
    run = Run(api.base_url, ["watch", "b-run", "--plain"], tmp_path)
    run.wait_until(lambda: api.count("GET /v2/batches/b-run") >= 1, "the first poll was sent")
    time.sleep(0.3)
    code = run.interrupt()
    _assert_interrupted(run, code)
    assert api.cancels() == 0 and api.batches["b-run"]["status"] == "BATCH_STATUS_IN_PROGRESS"


def test_ctrl_c_during_create_watch_keeps_the_new_batch(api: FakeApi, tmp_path: Path) -> None:
    args = ["create", "--name", "kept", "--dataset", "ds-in", "--model", "command-r", "--watch"]
    run = Run(api.base_url, args, tmp_path)
    run.wait_until(
        lambda: len(api.created("kept")) == 1 and api.count("GET /v2/batches/b-new-1") >= 1,
        "the watch began",
    )
    code = run.interrupt()
    _assert_interrupted(run, code)
    [batch] = api.created("kept")
    assert api.cancels() == 0 and batch["status"] == "BATCH_STATUS_QUEUED"
    assert f"resume with: cbatch watch {batch['id']}" in run.stderr


# -- SIGTERM and SIGHUP: what Ctrl-C does, with 128 + the signal -------------------------------


@needs_tgkill
@pytest.mark.parametrize(("sig", "expected", "word"), STOPS)
def test_a_signal_during_a_results_download_leaves_no_file_and_no_part_folder(
    api: FakeApi, tmp_path: Path, sig: int, expected: int, word: str
) -> None:
    before = _files(tmp_path)
    with PartServer(slow_delay=0.2, slow_pieces=200) as parts:
        run = _slow_download(api, parts, tmp_path)
        code = run.interrupt(sig=sig)
    _assert_interrupted(run, code, expected)
    left = _files(tmp_path) - before - {"cache"}
    assert left == set(), (
        f"left behind: {left}"
    )  # neither .results.jsonl.part-* nor .results.jsonl.parts-*
    assert f"{word}: nothing was written to results.jsonl" in run.stderr
    assert "run the same command again" in run.stderr
    assert api.cancels() == 0


@pytest.mark.parametrize(("sig", "expected", "word"), STOPS)
def test_a_signal_during_watch_says_how_to_resume_and_never_cancels(
    api: FakeApi, tmp_path: Path, sig: int, expected: int, word: str
) -> None:
    run = Run(
        api.base_url,
        ["watch", "b-run", "--plain", "--interval", "0.1", "--max-interval", "0.2"],
        tmp_path,
    )
    run.wait_until(lambda: api.count("GET /v2/batches/b-run") >= 3, "three polls")
    code = run.interrupt(sig=sig)
    _assert_interrupted(run, code, expected)
    assert f"{word}: stopped watching; nothing was cancelled" in run.stderr
    assert "resume with: cbatch watch b-run" in run.stderr
    assert api.cancels() == 0 and api.batches["b-run"]["status"] == "BATCH_STATUS_IN_PROGRESS"


@pytest.mark.parametrize(("sig", "expected", "word"), STOPS)
def test_a_signal_during_an_upload_exits_at_once(
    tmp_path: Path, sig: int, expected: int, word: str
) -> None:
    line = (
        '{"custom_id": "c-%d", "body": {"messages": [{"role": "user", "content": "'
        + "x" * 8000
        + '"}]}}\n'
    )
    source = tmp_path / "big.jsonl"
    source.write_text("".join(line % i for i in range(1000)))
    server = SlowReader()
    try:
        before = _files(tmp_path)
        run = Run(server.base_url, ["datasets", "upload", str(source)], tmp_path)
        run.wait_until(
            lambda: server.received > 512 * 1024, "half a megabyte of the upload arrived"
        )
        code = run.interrupt(sig=sig)
    finally:
        server.stop()
    _assert_interrupted(run, code, expected)
    assert run.stderr.rstrip().endswith(word) and run.stdout == ""
    assert _files(tmp_path) - before - {"cache"} == set()


@pytest.mark.parametrize(("sig", "expected", "word"), STOPS)
def test_a_signal_during_create_watch_keeps_the_batch_and_names_it(
    api: FakeApi, tmp_path: Path, sig: int, expected: int, word: str
) -> None:
    args = ["create", "--name", "kept", "--dataset", "ds-in", "--model", "command-r", "--watch"]
    run = Run(api.base_url, args, tmp_path)
    run.wait_until(
        lambda: len(api.created("kept")) == 1 and api.count("GET /v2/batches/b-new-1") >= 1,
        "the watch began",
    )
    code = run.interrupt(sig=sig)
    _assert_interrupted(run, code, expected)
    [batch] = api.created("kept")
    assert api.cancels() == 0 and batch["status"] == "BATCH_STATUS_QUEUED"
    assert f"resume with: cbatch watch {batch['id']}" in run.stderr


@pytest.mark.parametrize(("sig", "expected", "word"), STOPS)
def test_a_signal_while_a_request_hangs_exits_at_once(
    api: FakeApi, tmp_path: Path, sig: int, expected: int, word: str
) -> None:
    api.slow_seconds = 30.0
    api.fail("slow", float("inf"))
    run = Run(api.base_url, ["get", "b-run"], tmp_path)
    run.wait_until(lambda: api.count("GET /v2/batches/b-run") >= 1, "the request was sent")
    time.sleep(0.3)
    code = run.interrupt(sig=sig)
    _assert_interrupted(run, code, expected)
    assert run.stderr.strip() == word


# -- Parquet: a signal while a row group is being written ---------------------------------------


def _embed_part(records: int) -> bytes:
    """One output part of ``records`` embed results, 8 vectors of 1,024 floats each (~4 MB as Arrow)."""
    import random

    from tests.support.fake_api import avro_part

    rng = random.Random(20)
    bodies = [
        json.dumps(
            {
                "id": "x",
                "embeddings": {
                    "float": [[rng.random() - 0.5 for _ in range(1024)] for _ in range(8)]
                },
            }
        )
        for _ in range(8)
    ]
    return avro_part(
        [
            {"custom_id": f"e{i}", "body": bodies[i % len(bodies)], "error": ""}
            for i in range(records)
        ]
    )


def _python_threads(pid: int) -> int:
    """The process's threads, pyarrow's allocator thread left out: the main one and cbatch's own."""
    count = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/comm") as comm:
            count += comm.read().strip() != "jemalloc_bg_thd"
    return count


def _signal_while_the_row_group_is_written(run: Run, cwd: Path, sig: int) -> bool:
    """``sig`` the moment the row group's writing thread starts, once every part was read.

    The main thread then waits for that thread to finish: the wait the signal
    interrupts. Returns False when the command ended first (a fast machine).
    """

    def parts_waiting() -> int:
        folders = [p for p in cwd.iterdir() if ".parts-" in p.name]
        with contextlib.suppress(OSError):
            return sum(1 for _ in folders[0].glob("*.avro")) if folders else 0
        return 0

    phase, before = "downloading", 0
    deadline = time.monotonic() + 30
    while run.proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if phase == "downloading" and parts_waiting():
                phase = "reading"
            elif phase == "reading" and not parts_waiting():
                phase, before = "read", _python_threads(run.proc.pid)
            elif phase == "read" and _python_threads(run.proc.pid) > before:
                run.proc.send_signal(sig)
                return True
        time.sleep(0.001)
    return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="watches threads in /proc")
def test_a_signal_while_a_parquet_row_group_is_written_exits_cleanly_and_leaves_nothing(
    api: FakeApi, tmp_path: Path
) -> None:
    # Issue 23, case 20: the writer was closed under the thread still writing the last row
    # group (a join cut short by the signal reads as ended before Python 3.13): a
    # segmentation fault in some runs, the temporary file and part folder left behind.
    part = _embed_part(128)
    stops = [(signal.SIGINT, ExitCode.INTERRUPTED), (signal.SIGTERM, ExitCode.TERMINATED)] * 2
    signalled = 0
    with PartServer() as parts:
        api.datasets["out-1"]["dataset_parts"] = [
            {"id": "p0", "name": "p0", "index": 0, "size_bytes": len(part), "num_rows": 128,
             "url": parts.add("p0", part)},
        ]  # fmt: skip
        for trial, (sig, expected) in enumerate(stops):
            cwd = tmp_path / f"trial-{trial}"
            cwd.mkdir()
            run = Run(api.base_url, ["results", "b-done", "-o", "res.parquet"], cwd)
            if not _signal_while_the_row_group_is_written(run, cwd, sig):
                run.proc.communicate(timeout=30)
                assert run.proc.returncode == 0 and "res.parquet" in _files(cwd)
                continue
            signalled += 1
            run.stdout, run.stderr = run.proc.communicate(timeout=PROMPT + 5)
            shown = f"trial {trial}, signal {sig}: exit {run.proc.returncode}\n{run.stderr[-3000:]}"
            assert run.proc.returncode == expected, shown
            assert "Fatal Python error" not in run.stderr and "Traceback" not in run.stderr, shown
            left = {n for n in _files(cwd) if n.startswith((".res.parquet", "res.parquet"))}
            assert left == set(), f"trial {trial} left {left}"
    assert signalled, "every run ended before its row group was written: nothing was tested"
