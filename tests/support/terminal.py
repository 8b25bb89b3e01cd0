"""The installed ``cbatch`` in a real pseudo-terminal, its output read by a terminal emulator.

What a person sees of a live view is not the byte stream but the screen the
stream leaves: cursor moves, erased lines, lines scrolled off the top. So the
pty's output is fed to pyte, and tests assert on the emulated screen (and on its
scrollback: a frame of a live view there is one the view failed to erase).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.support.installed import cbatch_env, cbatch_path

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")

BAR_CELLS = "█▓░"


def frame_lines(lines: Sequence[str]) -> list[str]:
    """Lines that belong to a live view's frame: a progress bar or the footer."""
    return [line for line in lines if any(c in line for c in BAR_CELLS) or "watching for" in line]


class Terminal:
    """One run of ``cbatch ARGS`` in a ``columns`` x ``rows`` pseudo-terminal, read through pyte."""

    def __init__(
        self,
        base_url: str,
        cwd: Path,
        *args: str,
        columns: int,
        rows: int = 24,
        **env: str,
    ) -> None:
        self.columns, self.rows = columns, rows
        self.screen = pyte.HistoryScreen(columns, rows, history=100_000)
        self._stream = pyte.Stream(self.screen)
        full = cbatch_env(base_url, cwd, TERM="xterm-256color", **env)
        full.pop("NO_COLOR", None)
        full.pop("COLUMNS", None)
        full.pop("LINES", None)
        self.child = pexpect.spawn(
            cbatch_path(), list(args), env=full, encoding="utf-8", dimensions=(rows, columns)
        )
        self.raw: list[str] = []
        self.ended = False

    # -- reading ---------------------------------------------------------------------------

    def pump(self, wait: float = 0.1) -> None:
        """Feed what the program wrote so far to the emulator."""
        if self.ended:
            return
        try:
            chunk = self.child.read_nonblocking(1 << 16, timeout=wait)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            self.ended = True
            return
        self.raw.append(chunk)
        self._stream.feed(chunk)

    def wait_for(
        self, check: Callable[[list[str]], bool], timeout: float = 30, what: str = ""
    ) -> list[str]:
        """Read until ``check`` holds for the screen; the screen then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            if check(self.display):
                return self.display
            if self.ended:
                break
        raise AssertionError(f"the screen never showed {what or check}:\n" + self.dump())

    def finish(self, timeout: float = 60) -> int:
        """Read to the end of the program; its exit status."""
        deadline = time.monotonic() + timeout
        while not self.ended:
            if time.monotonic() > deadline:
                self.child.terminate(force=True)
                raise AssertionError("cbatch did not end:\n" + self.dump())
            self.pump(0.2)
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)

    def interrupt(self) -> None:
        """Ctrl-C, typed at the terminal (the line discipline echoes ``^C``, as for a person)."""
        self.child.sendintr()

    # -- what is on it ---------------------------------------------------------------------

    @property
    def display(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    @property
    def history(self) -> list[str]:
        """Lines scrolled off the top of the screen, oldest first."""
        return [
            "".join(line[x].data for x in range(self.columns)).rstrip()
            for line in self.screen.history.top
        ]

    @property
    def everything(self) -> list[str]:
        return self.history + self.display

    def dump(self) -> str:
        return "\n".join(["--- scrollback", *self.history, "--- screen", *self.display])

    def close(self) -> None:
        if not self.ended and self.child.isalive():
            self.child.terminate(force=True)
