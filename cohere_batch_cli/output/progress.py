"""Progress bars for uploads and downloads, or nothing at all when nobody is watching.

``Output.progress`` returns a rich bar on stderr when stderr is a terminal,
and a do-nothing object otherwise, so commands never ask ``if tty:``. Both
follow :class:`ProgressSink`: ``start``, ``advance``, ``finish``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.console import Console


class ProgressSink(Protocol):
    """Where upload and download progress goes: a rich bar on a terminal, else nowhere."""

    def start(self, total_bytes: int | None = None, total_records: int | None = None) -> None: ...

    def advance(self, bytes: int = 0, records: int = 0) -> None: ...

    def finish(self) -> None: ...


class NullProgress:
    """Progress for nobody: logs, pipes, JSON output and tests."""

    def start(self, total_bytes: int | None = None, total_records: int | None = None) -> None:
        pass

    def advance(self, bytes: int = 0, records: int = 0) -> None:
        pass

    def finish(self) -> None:
        pass


class RichProgress:
    """A transient bar on stderr: records when their number is known, else bytes.

    A results download is told both: bytes as parts arrive and records as they
    are decoded and written. The records finish last, so they drive the bar:
    driven by bytes, it sat at 100 % while decoding went on. The bytes are
    shown beside it (``4.2 MB received``): on a slow link a part takes a while
    before its first record can be decoded, and a bar that does not move then
    looks like a hang.
    """

    def __init__(self, console: Console, description: str) -> None:
        self._console = console
        self._description = description
        self._progress: Any = None
        self._task: Any = None
        self._by_bytes = True

    def start(self, total_bytes: int | None = None, total_records: int | None = None) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._by_bytes = total_records is None
        self._received = 0
        amount = (
            (DownloadColumn(), TransferSpeedColumn())
            if self._by_bytes
            else (MofNCompleteColumn(), TextColumn("{task.fields[received]}"))
        )
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            *amount,
            TimeRemainingColumn(),
            console=self._console,
            transient=True,
        )
        self._progress.start()
        total = total_bytes if self._by_bytes else total_records
        self._task = self._progress.add_task(self._description, total=total, received="")

    def advance(self, bytes: int = 0, records: int = 0) -> None:
        if self._progress is None:
            return
        if self._by_bytes:
            self._progress.advance(self._task, bytes)
            return
        if bytes:
            from ..units import human_bytes

            self._received += bytes
            self._progress.update(self._task, received=f"{human_bytes(self._received)} received")
        if records:
            self._progress.advance(self._task, records)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
