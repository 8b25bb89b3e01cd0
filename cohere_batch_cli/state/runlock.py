"""The run lock: one cbatch at a time sends for one run on this machine, and the folders it owns.

A *run* is what one command sends for: a job (its id), a retried batch (its
root's id, or its job's id when it is a job's part), a batch made from a file
(its name). Every command that uploads or creates for a run holds the run's
lock for as long as it works on it, so two processes on one machine never
both look for a part, find nothing, and both make it.

The lock is an OS file lock (``flock``) on a file under the store's folder:
the kernel drops it when its holder dies, however it dies (``kill -9``
included), so a lock is never left behind and never needs breaking by age.
The holder writes its pid and the moment it took the lock into the file,
which is how a second process names it ("pid 4242, since ...") when it
stops at once, or waits (``--wait-lock``).

The work folders a run makes (a job's part files, a retry's downloads) are
owned the same way: each holds a lock file of its own for as long as its
maker lives, and a folder is swept only once that lock is free. A slow upload
is alive however old its folder is; a folder left by ``kill -9`` goes the
next time any run makes one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ..errors import RunBusy

if TYPE_CHECKING:
    from .store import StateStore

POLL = 0.1
"""Seconds between two tries while ``--wait-lock`` waits."""
OWNER = ".owner"
"""The lock file inside a work folder: held by the process that made the folder, for its life."""
WORK_PREFIXES = ("job-", "retry-", ".new-")


@dataclass(frozen=True)
class Holder:
    """Who holds a run's lock, as its lock file says."""

    pid: int | None
    since: float | None

    def describe(self) -> str:
        if self.pid is None:
            return "pid unknown"
        if self.since is None:
            return f"pid {self.pid}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since))
        return f"pid {self.pid}, since {stamp}"


@dataclass
class _Held:
    """A run lock this process holds: the thread that holds it, its lock file, how deep it is taken."""

    thread: threading.Thread
    handle: IO[str] | None = None
    depth: int = 0


_HELD: dict[str, _Held] = {}
"""The runs this process holds, by run: a second thread finds its run here before any file lock."""
_CHANGED = threading.Condition()
"""Guards :data:`_HELD`; notified when a run is let go, for a thread waiting for it (``wait``)."""


def lock_file(store: StateStore | Path, run: str) -> Path:
    """The lock file of ``run`` (``job ID``, ``batch ROOT``): under the store's folder, named by a hash."""
    folder = store if isinstance(store, Path) else store.path.parent
    return folder / "locks" / f"{hashlib.sha256(run.encode()).hexdigest()[:24]}.lock"


@contextmanager
def run_lock(store: StateStore | Path | None, run: str, *, wait: float = 0.0) -> Iterator[None]:
    """Hold ``run``'s lock while the block runs; :class:`RunBusy` naming the holder if another process has it.

    ``run`` names the run in words (``job k3v9x0q2ma``, ``batch ROOT_ID``),
    which are also its key; ``store`` is the state store, or the folder it
    lives in (a command may lock before it opens the store). ``wait`` is how
    long to wait for a holder to end first (``--wait-lock``; 0: not at all).
    Re-entrant within a thread: a command holds the lock of its run and the
    tasks it calls take it again. Another thread of the process is kept out
    as another process is (:func:`_claim`): a program's threads never both
    send for one run. Without a store (none could be opened)
    or without file locks (Windows), nothing is held: the names on the API
    still keep one machine's steps from doubling.
    """
    me = threading.current_thread()
    held = _claim(run, me, wait)
    if held.depth == 0:  # claimed here: the file lock keeps other processes out
        try:
            held.handle = _acquire(lock_file(store, run), run, wait) if store is not None else None
        except BaseException:
            _let_go(run)
            raise
    held.depth += 1
    try:
        yield
    finally:
        held.depth -= 1
        if held.depth == 0:
            if held.handle is not None:
                held.handle.close()  # the kernel drops the lock with the last descriptor
            _let_go(run)


def _claim(run: str, me: threading.Thread, wait: float) -> _Held:
    """``run``'s entry for this thread: its own (taken again), or a new one once no other thread holds it.

    The file lock cannot tell the threads of one process apart for the
    re-entrance a command relies on, so threads are kept apart here: a thread
    that finds another thread of this program on the run stops as a second
    process stops (:class:`RunBusy`, after ``wait`` seconds), rather than both
    sending. Re-entrant for the thread that holds it, as commands need.
    """
    deadline = time.monotonic() + wait
    with _CHANGED:
        while True:
            held = _HELD.get(run)
            if held is None:
                held = _HELD[run] = _Held(me)
                return held
            if held.thread is me:
                return held
            left = deadline - time.monotonic()
            if left <= 0:
                waited = f" (waited {wait:g} s)" if wait > 0 else ""
                raise RunBusy(
                    f"{run} is being sent by another thread of this program "
                    f"({held.thread.name}){waited}",
                    hint="let that call end first: the same call made then gives back what it made",
                )
            _CHANGED.wait(left)


def _let_go(run: str) -> None:
    with _CHANGED:
        _HELD.pop(run, None)
        _CHANGED.notify_all()


@contextmanager
def step_lock(store: StateStore | Path | None, run: str) -> Iterator[None]:
    """Held around one step a cancel must not overtake: the sender's look at the run's state and its create.

    The sender takes it to read the run's state and create (and record) a
    batch; a cancel takes it once, after it has marked the run canceled, and
    so waits for a create in flight to be recorded before it cancels what
    exists. After that, every sender reads "canceled" first. Blocking: it is
    held for one call at most.
    """
    handle = _step_handle(lock_file(store, run).with_suffix(".step")) if store is not None else None
    try:
        yield
    finally:
        if handle is not None:
            handle.close()


def _step_handle(path: Path) -> IO[str] | None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the state alone is read
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")  # noqa: SIM115 - held for the step: the lock lives as long as the file
    except OSError:
        return None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    except BaseException:
        handle.close()
        raise
    return handle


def _acquire(path: Path, what: str, wait: float) -> IO[str] | None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: one run at a time is the user's to keep
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - held open for the run: the lock lives as long as the file
    except OSError:
        return None  # a store folder that takes no lock file: the API's names still prevent doubles
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            if time.monotonic() < deadline:
                time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
                continue
            holder = _holder_noted(path)
            handle.close()
            waited = f" (waited {wait:g} s)" if wait > 0 else ""
            raise RunBusy(
                f"{what} is being sent by another cbatch on this machine ({holder.describe()}){waited}",
                hint="wait for it to end and try again (on the command line, --wait-lock DURATION waits for it)",
            ) from None
        break
    try:
        handle.seek(0)
        handle.truncate()
        # Past the file object's buffer: a note that finds no room (a full disk) must not fail its close later.
        os.write(handle.fileno(), json.dumps({"pid": os.getpid(), "since": time.time()}).encode())
    except OSError:
        pass  # the lock is held; only the holder's name is lost
    return handle


NOTE_GRACE = 0.5
"""Seconds a busy lock's note is read again while it is empty: its holder writes it just after taking the lock."""


def _holder_noted(path: Path) -> Holder:
    """The holder as its note names it, read again for a moment while the note is not written yet.

    A holder takes the lock, then writes its pid and time: a process that
    finds the lock busy in between would read an empty note and say "pid
    unknown" of a holder that names itself a few milliseconds later.
    """
    deadline = time.monotonic() + NOTE_GRACE
    while True:
        holder = _holder(path)
        if holder.pid is not None or time.monotonic() >= deadline:
            return holder
        time.sleep(0.02)


def _holder(path: Path) -> Holder:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return Holder(None, None)
    if not isinstance(data, dict):
        return Holder(None, None)
    pid, since = data.get("pid"), data.get("since")
    return Holder(
        pid if isinstance(pid, int) else None,
        float(since) if isinstance(since, (int, float)) else None,
    )


# -- work folders -------------------------------------------------------------------------------


def work_base(store: StateStore | None) -> Path:
    """Where work folders go: ``work`` beside the store, else the system's temporary folder."""
    return store.path.parent / "work" if store is not None else Path(tempfile.gettempdir())


@contextmanager
def work_folder(store: StateStore | None, prefix: str) -> Iterator[Path]:
    """A private folder owned by this process, removed whatever happens; dead runs' folders swept first.

    The folder is made under a hidden name, its owner lock taken, and only
    then renamed to ``prefix...``: a sweeper never sees a named folder whose
    owner lock is not held by a live process.
    """
    base = work_base(store)
    base.mkdir(parents=True, exist_ok=True)
    sweep(base)
    fresh = Path(tempfile.mkdtemp(prefix=".new-", dir=base))
    owner = _own(fresh / OWNER)
    work = fresh.with_name(prefix + fresh.name[len(".new-") :])
    try:
        fresh.rename(work)
        yield work
    finally:
        shutil.rmtree(work if work.exists() else fresh, ignore_errors=True)
        if owner is not None:
            owner.close()


def sweep(base: Path) -> list[Path]:
    """Remove the work folders whose owner is gone (its lock free); those of live processes are kept.

    A folder with no owner file (one made by an earlier version of cbatch, or
    a process killed between making its folder and locking it) is left alone:
    nothing says its maker is gone.
    """
    removed: list[Path] = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(WORK_PREFIXES) or not entry.is_dir():
            continue
        if _free(entry / OWNER):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _own(path: Path) -> IO[str] | None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: folders are removed by their maker only
        return None
    handle = open(path, "w")  # noqa: SIM115 - held open for the folder's life
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    return handle


def _free(owner: Path) -> bool:
    """Whether ``owner`` exists and no process holds it (probing takes the lock a moment: no one else ever waits for it)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        return False
    try:
        handle = open(owner)  # noqa: SIM115 - closed by the with below
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True
