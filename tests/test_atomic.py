"""The one atomic write: old file or complete new file, never half, never a temporary left behind.

Real files in ``tmp_path``, real exceptions raised from inside the writer, a
real Ctrl-C (SIGINT delivered to this process) for the interrupted case.
"""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cohere_batch_cli import config
from cohere_batch_cli.atomic import atomic_write, write_text_atomic
from cohere_batch_cli.errors import LocalWriteError


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_success_replaces_the_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old\n")
    with atomic_write(target) as fh:
        fh.write(b"new ")
        assert target.read_bytes() == b"old\n"  # nothing shows under the final name until the end
        fh.write(b"content\n")
    assert target.read_bytes() == b"new content\n"
    assert names(tmp_path) == ["out.jsonl"]


def test_a_writer_that_raises_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old\n")
    with pytest.raises(ValueError, match="broken record"), atomic_write(target) as fh:
        fh.write(b"half a ")
        raise ValueError("broken record")
    assert target.read_bytes() == b"old\n"
    assert names(tmp_path) == ["out.jsonl"]


def test_a_writer_that_raises_creates_no_file_where_there_was_none(tmp_path: Path) -> None:
    with pytest.raises(OSError), atomic_write(tmp_path / "new.txt") as fh:
        fh.write(b"x")
        raise OSError(28, "No space left on device")
    assert names(tmp_path) == []


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_ctrl_c_while_writing_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    target.write_text("old = true\n")
    started = threading.Event()

    def interrupt() -> None:
        started.wait(5)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    killer = threading.Thread(target=interrupt)
    killer.start()
    try:
        with pytest.raises(KeyboardInterrupt), atomic_write(target) as fh:
            fh.write(b"new = ")
            started.set()
            deadline = time.monotonic() + 10
            while (
                time.monotonic() < deadline
            ):  # a long write, as a big results file is: Ctrl-C lands in it
                fh.write(b"x" * 1024)
                fh.seek(6)
            pytest.fail("SIGINT never arrived")
    finally:
        killer.join(5)
    assert target.read_text() == "old = true\n"
    assert names(tmp_path) == ["config.toml"]


def test_mode_is_exact_from_the_start_whatever_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "secret.toml"
    with umask(0o000):
        with atomic_write(target, mode=0o600) as fh:
            (temp,) = [p for p in tmp_path.iterdir() if p.name.startswith(".secret.toml.")]
            assert (
                stat.S_IMODE(temp.stat().st_mode) == 0o600
            )  # never readable by others, not for a moment
            fh.write(b"api_key = 'k'\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with umask(0o277):  # a umask that would take the owner's write bit away
        write_text_atomic(target, "again\n", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_text() == "again\n"


def test_without_a_mode_the_umask_decides_as_for_open(tmp_path: Path) -> None:
    with umask(0o027):
        write_text_atomic(tmp_path / "results.csv", "a,b\n")
    assert stat.S_IMODE((tmp_path / "results.csv").stat().st_mode) == 0o640


def test_a_missing_folder_is_an_error_not_created(tmp_path: Path) -> None:
    with pytest.raises(LocalWriteError, match="No such file or directory"):
        write_text_atomic(tmp_path / "no" / "such" / "file", "x")
    assert names(tmp_path) == []


def test_a_symlinked_file_stays_a_link_and_its_target_is_replaced(tmp_path: Path) -> None:
    """A config file kept in a dotfiles repository and linked into place stays linked."""
    (tmp_path / "dotfiles").mkdir()
    target = tmp_path / "dotfiles" / "config.toml"
    target.write_text("old = 1\n")
    link = tmp_path / "config.toml"
    link.symlink_to(Path("dotfiles") / "config.toml")
    write_text_atomic(link, "new = 2\n", mode=0o600)
    assert link.is_symlink() and target.read_text() == "new = 2\n"
    assert names(tmp_path / "dotfiles") == ["config.toml"]


def test_a_folder_is_an_error_and_stays_a_folder(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(LocalWriteError, match="it is a folder"):
        write_text_atomic(tmp_path / "out", "x")
    assert (tmp_path / "out").is_dir()


def test_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_text_atomic(fifo, "through the pipe\n")
    reader.join(5)
    assert got == [b"through the pipe\n"] and stat.S_ISFIFO(fifo.stat().st_mode)
    assert names(tmp_path) == ["pipe"]


def test_a_write_that_fails_is_a_local_write_error_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old\n")
    with pytest.raises(LocalWriteError, match=r"cannot write .*out\.jsonl: File too large"):
        with atomic_write(target) as fh:
            import resource

            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
            try:
                fh.write(b"x" * 10_000)
                fh.flush()
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
                signal.signal(signal.SIGXFSZ, previous)
    assert target.read_bytes() == b"old\n"
    assert names(tmp_path) == ["out.jsonl"]


# -- the config file, written through it --------------------------------------------


def test_the_config_file_is_written_0600_whatever_was_there(isolated_env: Path) -> None:
    isolated_env.parent.mkdir(parents=True)
    isolated_env.write_text('[profiles.old]\nmodel = "m"\n')
    isolated_env.chmod(0o644)
    with umask(0o000):
        config.save_profile("default", {"api_key": "k-123456789"})
    assert stat.S_IMODE(isolated_env.stat().st_mode) == 0o600
    assert config.load_file(isolated_env)["profiles"] == {
        "old": {"model": "m"},
        "default": {"api_key": "k-123456789"},
    }
    assert names(isolated_env.parent) == ["config.toml"]


def test_the_config_write_never_follows_a_planted_temporary_name(
    isolated_env: Path, tmp_path: Path
) -> None:
    """A symlink waiting at the temporary name must not receive the key (nor its mode change)."""
    isolated_env.parent.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not yours\n")
    elsewhere.chmod(0o644)
    planted = isolated_env.parent / f".{isolated_env.name}.{os.getpid()}.tmp"  # the old fixed name
    planted.symlink_to(elsewhere)
    config.save_profile("default", {"api_key": "k-123456789"})
    assert (
        elsewhere.read_text() == "not yours\n" and stat.S_IMODE(elsewhere.stat().st_mode) == 0o644
    )
    assert not isolated_env.is_symlink() and stat.S_IMODE(isolated_env.stat().st_mode) == 0o600
    assert config.load_file(isolated_env)["profiles"]["default"]["api_key"] == "k-123456789"
