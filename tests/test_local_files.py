"""Where output goes, for real: devices, FIFOs, sockets, symlinks, folders, full and read-only disks.

Every test runs the installed ``cbatch`` against the fake API on loopback and
writes to a real special file: a character device made with ``mknod`` (a
private ``/dev/null`` and ``/dev/full``, so a regression cannot damage the
machine's own; the real ones when not root, who could not replace them
anyway), a FIFO with a reader, a Unix socket with a listener, a link to
``/proc/self/fd/1`` (what ``/dev/stdout`` is), and small tmpfs file systems
that fill up or are read-only (mounting needs root; those tests say so and
skip without it).
"""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import fastavro
import pytest

from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.sandbox.avro_output import OUTPUT_SCHEMA
from tests.conftest import Cli
from tests.support.fake_api import OUTPUT_RECORDS, FakeApi
from tests.support.flows import chat_records, write_jsonl
from tests.support.installed import cbatch_env, cbatch_path, run_cbatch

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX special files")

IDS = [r["custom_id"] for r in OUTPUT_RECORDS]


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = FakeApi().start()
    yield server
    server.stop()


def serve_big_output(api: FakeApi, records: int, body_bytes: int) -> None:
    """Make ``b-done``'s output a deflate part that is small on the wire and large as JSONL."""
    recs = [
        {
            "custom_id": f"r-{i}",
            "body": json.dumps({"text": "x" * body_bytes, "n": i}),
            "error": None,
        }
        for i in range(records)
    ]
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(OUTPUT_SCHEMA), recs, codec="deflate")
    data = buffer.getvalue()
    api.parts["out-1-0"] = data
    part = api.datasets["out-1"]["dataset_parts"][0]
    part.update(size_bytes=len(data), num_rows=records)
    api.batches["b-done"].update(
        num_records=records, num_successful_records=records, num_failed_records=0
    )


def device(tmp_path: Path, name: str, minor: int) -> Path:
    """A private copy of /dev/null (minor 3) or /dev/full (minor 7); the real one without root."""
    path = tmp_path / name
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except (PermissionError, AttributeError):
        return Path(f"/dev/{name}")
    return path


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} - {"cache", "config.toml"}


def one_error_line(stderr: str) -> str:
    """The one error line, last on stderr (progress lines such as "dataset ...: validated" may precede it)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    assert errors == [lines[-1]] and lines[-1].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[-1]


# -- special files: written in place, never replaced --------------------------------------------


def test_results_to_a_null_device_leave_it_a_device(api: FakeApi, tmp_path: Path) -> None:
    null = device(tmp_path, "null", 3)
    before = names(tmp_path)
    result = run_cbatch(api.base_url, ["results", "b-done", "-o", str(null)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(null.stat().st_mode), "the device was replaced by a regular file"
    assert names(tmp_path) == before, "no temporary file or part folder beside the device"
    assert f"wrote 3 records to {null}" in result.stderr


def test_results_to_a_full_device_exit_11_and_leave_it_a_device(
    api: FakeApi, tmp_path: Path
) -> None:
    full = device(tmp_path, "full", 7)
    result = run_cbatch(api.base_url, ["results", "b-done", "-o", str(full)], tmp_path)
    assert result.returncode == ExitCode.LOCAL_WRITE
    assert one_error_line(result.stderr) == f"error: cannot write {full}: No space left on device"
    assert stat.S_ISCHR(full.stat().st_mode)


def test_results_to_a_link_to_stdout_reach_stdout(api: FakeApi, tmp_path: Path) -> None:
    """``-o /dev/stdout`` is a link to /proc/self/fd/1; a private link of the same kind stands in."""
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    result = run_cbatch(api.base_url, ["results", "b-done", "-o", str(link)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["custom_id"] for line in result.stdout.splitlines()] == IDS
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"


def test_results_to_stdout_appended_to_a_file_keep_what_was_there(
    api: FakeApi, tmp_path: Path
) -> None:
    """``cbatch results ID -o /dev/stdout >> log``: the log keeps its lines, the results follow."""
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    log = tmp_path / "log.jsonl"
    log.write_text('{"kept": true}\n')
    with log.open("a") as append:
        result = run_cbatch(
            api.base_url, ["results", "b-done", "-o", str(link)], tmp_path, stdout=append
        )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0] == {"kept": True} and [r["custom_id"] for r in lines[1:]] == IDS


def test_results_to_a_fifo_reach_its_reader_and_keep_the_fifo(api: FakeApi, tmp_path: Path) -> None:
    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = run_cbatch(api.base_url, ["results", "b-done", "-o", str(fifo)], tmp_path)
    reader.join(10)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["custom_id"] for line in received[0].splitlines()] == IDS
    assert stat.S_ISFIFO(fifo.stat().st_mode), "the FIFO was removed or replaced"
    assert names(tmp_path) == {"results.fifo"}


def test_results_to_a_unix_socket_are_sent_to_its_listener(api: FakeApi, tmp_path: Path) -> None:
    path = tmp_path / "results.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    received = bytearray()

    def accept() -> None:
        conn, _ = listener.accept()
        with conn:
            while chunk := conn.recv(65536):
                received.extend(chunk)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        result = run_cbatch(api.base_url, ["results", "b-done", "-o", str(path)], tmp_path)
        thread.join(10)
    finally:
        listener.close()
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["custom_id"] for line in received.decode().splitlines()] == IDS
    assert stat.S_ISSOCK(path.stat().st_mode)


def test_a_symlink_is_followed_and_its_target_written_atomically(
    api: FakeApi, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "real.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    result = run_cbatch(api.base_url, ["results", "b-done", "-o", "link.jsonl"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.resolve() == target
    assert [json.loads(line)["custom_id"] for line in target.read_text().splitlines()] == IDS
    assert names(elsewhere) == {"real.jsonl"} and names(tmp_path) == {"link.jsonl", "elsewhere"}


def test_a_dangling_symlink_gets_its_target_created(api: FakeApi, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    link = tmp_path / "link.jsonl"
    link.symlink_to(tmp_path / "out" / "new.jsonl")
    result = run_cbatch(api.base_url, ["results", "b-done", "-o", str(link)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and len((tmp_path / "out" / "new.jsonl").read_text().splitlines()) == 3


def test_a_folder_is_refused_before_anything_is_fetched(api: FakeApi, tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    result = run_cbatch(api.base_url, ["results", "b-done", "-o", "results"], tmp_path)
    assert result.returncode == ExitCode.USAGE
    assert "is a directory" in one_error_line(result.stderr)
    assert not [r for r in api.requests if r.path.startswith("/_parts/")]


def test_dash_is_stdout(api: FakeApi, tmp_path: Path) -> None:
    result = run_cbatch(api.base_url, ["results", "b-done", "-o", "-"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["custom_id"] for line in result.stdout.splitlines()] == IDS
    assert not (tmp_path / "-").exists()


# -- local write failures: exit 11, one line, nothing left, nothing touched -------------------------


def mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("no mount command: a small file system cannot be made here")
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here (needs root): {done.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: room for a compressed part, not for the JSONL it decodes to."""
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "size=256k")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "ro"
    mount_tmpfs(disk, "size=64k,ro")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_exits_11_leaves_no_temporary_and_the_old_file(
    api: FakeApi, small_disk: Path
) -> None:
    serve_big_output(api, records=400, body_bytes=2000)  # ~25 KB compressed, ~800 KB of JSONL
    old = small_disk / "results.jsonl"
    old.write_text("the old results\n")
    result = run_cbatch(api.base_url, ["results", "b-done", "-o", str(old)], small_disk.parent)
    assert result.returncode == ExitCode.LOCAL_WRITE, result.stderr
    assert one_error_line(result.stderr) == f"error: cannot write {old}: No space left on device"
    assert old.read_text() == "the old results\n", "the existing destination was touched"
    assert names(small_disk) == {"results.jsonl"}, "a temporary file or a part folder was left"


def test_a_part_that_does_not_fit_exits_11(api: FakeApi, small_disk: Path) -> None:
    serve_big_output(api, records=20, body_bytes=1)
    api.parts["out-1-0"] += os.urandom(400 * 1024)  # the part itself no longer fits
    result = run_cbatch(
        api.base_url, ["results", "b-done", "-o", str(small_disk / "r.jsonl")], small_disk.parent
    )
    assert result.returncode == ExitCode.LOCAL_WRITE, result.stderr
    line = one_error_line(result.stderr)
    assert "cannot store a downloaded part in" in line and line.endswith("No space left on device")
    assert names(small_disk) == set()


def test_a_read_only_file_system_exits_11_before_downloading(
    api: FakeApi, read_only_disk: Path
) -> None:
    result = run_cbatch(
        api.base_url,
        ["results", "b-done", "-o", str(read_only_disk / "r.jsonl")],
        read_only_disk.parent,
    )
    assert result.returncode == ExitCode.LOCAL_WRITE, result.stderr
    assert "Read-only file system" in one_error_line(result.stderr)
    assert not [r for r in api.requests if r.path.startswith("/_parts/")]


def test_a_listing_to_a_full_stdout_exits_11(api: FakeApi, tmp_path: Path) -> None:
    full = device(tmp_path, "full", 7)
    with full.open("w") as stdout:
        result = run_cbatch(api.base_url, ["list"], tmp_path, stdout=stdout)
    assert result.returncode == ExitCode.LOCAL_WRITE
    assert one_error_line(result.stderr) == "error: cannot write to stdout: No space left on device"


def test_help_to_a_full_stdout_exits_11(tmp_path: Path) -> None:
    full = device(tmp_path, "full", 7)
    with full.open("w") as stdout:
        result = run_cbatch(None, ["--help"], tmp_path, stdout=stdout)
    assert result.returncode == ExitCode.LOCAL_WRITE
    assert one_error_line(result.stderr) == "error: cannot write to stdout: No space left on device"


def test_a_listing_to_a_closed_stdout_exits_11(api: FakeApi, tmp_path: Path) -> None:
    """``cbatch list >&-``: Python starts with no sys.stdout at all."""
    result = subprocess.run(
        [cbatch_path(), "list"], cwd=tmp_path, env=cbatch_env(api.base_url, tmp_path), stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, timeout=30, check=False, preexec_fn=lambda: os.close(1),
    )  # fmt: skip
    assert result.returncode == ExitCode.LOCAL_WRITE
    assert one_error_line(result.stderr) == "error: cannot write to stdout: it is closed"


def test_a_reader_that_went_away_ends_the_listing_quietly(api: FakeApi, tmp_path: Path) -> None:
    """``cbatch list | head -1`` where head has already gone: no error, no noise at exit."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = run_cbatch(api.base_url, ["list"], tmp_path, stdout=write_end)
    finally:
        os.close(write_end)
    assert result.returncode == 0
    assert result.stderr == ""


def test_the_results_to_a_full_stdout_exit_11(api: FakeApi, tmp_path: Path) -> None:
    full = device(tmp_path, "full", 7)
    with full.open("w") as stdout:
        result = run_cbatch(api.base_url, ["results", "b-done", "-o", "-"], tmp_path, stdout=stdout)
    assert result.returncode == ExitCode.LOCAL_WRITE
    assert one_error_line(result.stderr) == "error: cannot write to stdout: No space left on device"


def test_every_test_the_reliability_table_names_exists() -> None:
    """docs/reliability.md lists these faults with the test that proves each: they must exist."""
    import re

    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "reliability.md").read_text(encoding="utf-8")
    table = text.split("<!-- local-faults:begin -->", 1)[1].split("<!-- local-faults:end -->", 1)[0]
    named = re.findall(r"`(test_\w+\.py)::(test_\w+)`", table)
    assert len(named) >= 25
    for filename, test in named:
        source = (root / "tests" / filename).read_text(encoding="utf-8")
        assert re.search(rf"^def {test}\(", source, re.M), (
            f"{filename}::{test} is named in docs/reliability.md"
        )


def test_input_order_results_on_a_full_disk_exit_11_and_leave_nothing(
    cli: Cli, small_disk: Path, tmp_path: Path
) -> None:
    """The scratch table of ``--input-order`` fills the disk (the part fits): exit 11, not a bug's exit 1."""
    source = write_jsonl(
        tmp_path / "in.jsonl", chat_records(600)
    )  # a ~180 KB part, ~300 KB ordered
    job = cli(
        "jobs", "create", str(source), "--model", "command-r", "--watch", "-q"
    ).stdout.split()[0]
    result = cli(
        "jobs", "results", job, "-o", str(small_disk / "r.jsonl"), "--input-order",
        exit_code=ExitCode.LOCAL_WRITE,
    )  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    # Whichever fills the disk first (the scratch table or the file it feeds) is named, in one line.
    assert len(lines) == 1 and lines[0].startswith("error: cannot write "), result.stderr
    assert str(small_disk) in lines[0] and lines[0].endswith(": No space left on device"), lines
    assert names(small_disk) == set(), "a temporary file or a part folder was left"
