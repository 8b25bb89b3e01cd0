"""The one object per run that writes anything: data on stdout, everything else on stderr.

A command asks :class:`Output` for what it needs and never touches a stream:

- **data** on stdout, in the mode chosen once per command (:meth:`Output.set_mode`):
  ``table`` (aligned columns for a person at a terminal, :mod:`.table`), ``plain``
  (tab-separated raw values, no colour, no boxes), ``json`` (one JSON document),
  ``jsonl`` (one object a line), ``text`` (JSON values raw, one a line, like
  ``jq -r``), ``csv`` and ``ids`` (one id a line, for ``xargs``). Tables, TSV and
  JSON are all made from the same items (:class:`~.printer.Column`);
- **messages** on stderr: :meth:`info`, :meth:`warn`, :meth:`error`, :meth:`debug`;
- **progress bars and live views**, or do-nothing objects when nobody is watching
  (stderr is not a terminal, or the data is for a machine).

Every human-readable line passes through :func:`.sanitize.clean`; JSON written to
a terminal has the same characters as ``\\uXXXX`` escapes; machine-readable data
written elsewhere is exact. Rich is imported only when a field view, bar or live
view is drawn; listings are laid out without it.

Tests can set :data:`TRANSCRIPT` to a list: every write is recorded there too, so
a test can prove that nothing reached stdout or stderr except through here.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from ..errors import LocalWriteError
from . import times
from .printer import CSV, FLUSH, IDS, JSON, JSONL, PLAIN, TABLE, TEXT, Column, compile_query
from .progress import NullProgress, ProgressSink
from .sanitize import bytes_for_terminal, clean, clean_lines, json_for_terminal

if TYPE_CHECKING:
    from rich.console import Console

    from .watch_views import LiveRenderer, WatchView

TRANSCRIPT: list[tuple[str, str]] | None = None
"""When a list, every write is appended as ("stdout" | "stderr", text): for tests only."""

_END = object()
MACHINE_MODES = frozenset({JSON, JSONL, CSV, IDS, TEXT})


_BOLD_RED = "1;31"
_YELLOW = "33"
"""SGR codes of the error and warning labels: the message itself stays the terminal's colour."""


class _Stream:
    """One standard stream as the output object writes it: recorded, and never None.

    ``cbatch list >&-`` starts Python with ``sys.stdout`` set to None; writing to
    it must be a clear error (exit 11), not an AttributeError. A stdout that
    fails (``> /dev/full``) is a :class:`LocalWriteError`; a reader that went
    away (``| head -1``) stays a ``BrokenPipeError``, which ends a command
    quietly. Either way the stream is then pointed at the null device, so
    Python's own flush at exit has nothing left to complain about (it would
    print "Exception ignored" and exit 120). A stderr that fails is let go
    quietly: there is nowhere left to say so.
    """

    def __init__(self, name: str, stream: IO[str] | None) -> None:
        self.name = name
        self._stream = stream
        self.failed = False

    def write(self, text: str) -> int:
        if self._stream is None:
            if self.name == "stderr":
                return len(text)
            raise LocalWriteError(f"cannot write to {self.name}: it is closed")
        if TRANSCRIPT is not None:
            TRANSCRIPT.append((self.name, text))
        if self.failed:
            return len(text)
        try:
            return self._stream.write(text)
        except OSError as exc:
            self.fail(exc)
            return len(text)

    def flush(self) -> None:
        if self._stream is None or self.failed:
            return
        try:
            self._stream.flush()
        except OSError as exc:
            self.fail(exc)

    def fail(self, exc: OSError) -> None:
        """A write of this stream failed: silence it, and raise what it means (stdout only)."""
        self.silence()
        if self.name != "stdout":
            return  # stderr: nowhere left to say so
        if isinstance(exc, BrokenPipeError):
            raise exc
        raise LocalWriteError(f"cannot write to {self.name}: {exc.strerror or exc}") from None

    def silence(self) -> None:
        """Point the stream's descriptor at the null device: later writes and the exit flush succeed."""
        self.failed = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def isatty(self) -> bool:
        try:
            return self._stream is not None and self._stream.isatty()
        except ValueError:  # a closed file
            return False

    def fileno(self) -> int:
        if self._stream is None:
            raise OSError(f"{self.name} is closed")
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

    @property
    def buffer(self) -> IO[bytes] | None:
        return getattr(self._stream, "buffer", None)


class _BinaryStdout:
    """A binary face for stdout (results streamed with ``-o -``), recorded and made safe.

    Writes arrive a whole line (or CSV row) at a time, so a multi-byte character
    is never split between two writes.
    """

    def __init__(self, stream: _Stream, terminal: bool) -> None:
        self._stream = stream
        self._buffer = stream.buffer
        self._terminal = terminal

    def write(self, data: bytes) -> int:
        if self._terminal:
            data = bytes_for_terminal(data)
        if (
            self._buffer is None or self._stream.failed
        ):  # a text-only stdout (some runners and IDEs)
            self._stream.write(data.decode("utf-8"))
            return len(data)
        if TRANSCRIPT is not None:
            TRANSCRIPT.append((self._stream.name, data.decode("utf-8", errors="replace")))
        try:
            self._buffer.write(data)
        except OSError as exc:
            self._stream.fail(exc)
        return len(data)

    def flush(self) -> None:
        if self._buffer is not None and not self._stream.failed:
            try:
                self._buffer.flush()
            except OSError as exc:
                self._stream.fail(exc)
        self._stream.flush()


class Output:
    """Writes everything a command shows: data to stdout in one mode, the rest to stderr."""

    def __init__(
        self,
        *,
        no_color: bool = False,
        debug: bool = False,
        local_time: bool = False,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ) -> None:
        self._out = _Stream("stdout", stdout if stdout is not None else sys.stdout)
        self._err = _Stream("stderr", stderr if stderr is not None else sys.stderr)
        self.no_color = (
            no_color or bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"
        )
        self.debug_enabled = debug
        times.use_local_time(local_time or times.local_time_from_env())
        self.mode = TABLE if self._out.isatty() else PLAIN
        self._query: Any = None
        self._console: Console | None = None
        self._err_console: Console | None = None
        self._watch_plain: bool | None = None
        self._watch_json = False
        self._watch_to_stderr = False
        self._progress_every = 30.0
        self._watch_results: str | None = None
        self._watch_final = True
        self._live_view: LiveRenderer | None = None

    # -- what the streams are -------------------------------------------------------

    @property
    def stdout_is_tty(self) -> bool:
        return self._out.isatty()

    @property
    def stderr_is_tty(self) -> bool:
        return self._err.isatty()

    @property
    def plain(self) -> bool:
        """Data as tab-separated raw values for a script (stdout is not a terminal)."""
        return self.mode == PLAIN

    @property
    def for_machines(self) -> bool:
        """The data on stdout is for a program: no bars, no live views."""
        return self.mode in MACHINE_MODES or self._query is not None

    def set_mode(
        self,
        *,
        json_out: bool = False,
        jsonl: bool = False,
        quiet: bool = False,
        fmt: str | None = None,
        query: str | None = None,
        raw: bool = False,
    ) -> Output:
        """Choose the data mode once, from the shorthands or --format; refuse contradictions."""
        from .printer import choose_mode

        self.mode = choose_mode(
            json_out=json_out,
            jsonl=jsonl,
            quiet=quiet,
            fmt=fmt,
            query=query,
            raw=raw,
            stdout_is_tty=self.stdout_is_tty,
        )
        self._query = compile_query(query) if query else None
        return self

    def set_watch_style(
        self,
        *,
        plain: bool | None = None,
        json_lines: bool = False,
        to_stderr: bool = False,
        progress_every: float = 30.0,
        results: str | None = None,
        final: bool = True,
    ) -> Output:
        """How a watch shows: JSON lines, plain lines, or a live view (stdout a terminal).

        ``to_stderr`` sends the watch to stderr as plain lines, for a command whose
        stdout already holds its data (``create -q --watch``, ``results --wait -o -``).
        ``progress_every`` throttles plain progress lines (status changes always show).
        ``results`` is the command that writes the watched batches' results together
        (a job's), named at their ends instead of each batch's own. ``final``
        is False for one round of several (``retry --watch``): its summary then
        names no exit code, since the command goes on and ends with its own.
        """
        self._watch_plain = plain
        self._watch_json = json_lines
        self._watch_to_stderr = to_stderr
        self._progress_every = progress_every
        self._watch_results = results
        self._watch_final = final
        return self

    # -- messages (stderr) ----------------------------------------------------------

    def info(self, message: str) -> None:
        """A line for the person running cbatch; never data.

        While a live view is on the same terminal, the line is printed above it:
        written straight to stderr it would land inside the view, which then
        redraws from the wrong line and leaves stale frames behind.
        """
        live = self._live_view
        if live is not None and live.active and self.stderr_is_tty:
            live.log(clean_lines(message))
            return
        self._err.write(clean_lines(message) + "\n")
        self._err.flush()

    def warn(self, message: str) -> None:
        live = self._live_view
        if live is not None and live.active and self.stderr_is_tty:
            self.info(f"warning: {message}")
            return
        self._err.write(f"{self._label('warning:', _YELLOW)} {clean_lines(message)}\n")
        self._err.flush()

    def _label(self, word: str, colour: str) -> str:
        """``error:`` or ``warning:``, coloured for a person at a terminal, plain for a log."""
        if self.no_color or not self.stderr_is_tty:
            return word
        return f"\x1b[{colour}m{word}\x1b[0m"

    @property
    def interactive(self) -> bool:
        """A person can answer a question: stdin and stderr are terminals."""
        try:
            return sys.stdin is not None and sys.stdin.isatty() and self.stderr_is_tty
        except ValueError:
            return False

    def spell(self, command: str, program: str) -> str:
        """The command line's words: this is a command's output (:meth:`.Reporter.spell`)."""
        return command

    def ask(self, question: str) -> str | None:
        """Ask on stderr and read one line from the terminal; None when nobody can answer."""
        if not self.interactive:
            return None
        self._err.write(clean_lines(question))
        self._err.flush()
        line = sys.stdin.readline()
        return line.strip() if line else None

    def error(self, message: str, *, unexpected: bool = False) -> None:
        """The one error line of a failed command: always one line, whatever the message held."""
        prefix = "unexpected error:" if unexpected else "error:"
        self._err.write(f"{self._label(prefix, _BOLD_RED)} {clean(message)}\n")
        self._err.flush()

    def debug(self, message: str) -> None:
        if self.debug_enabled:
            self.info(f"debug: {clean(message)}")

    def traceback(self, exc: BaseException) -> None:
        """The traceback of ``exc`` (``--debug`` only), each line made safe."""
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self._err.write(clean_lines(text.rstrip("\n")) + "\n")
        self._err.flush()

    # -- data (stdout) --------------------------------------------------------------

    def line(self, text: str) -> None:
        """One line of human-readable data (a setting, a usage figure), made safe."""
        self._out.write(clean_lines(text) + "\n")
        self._out.flush()

    def raw_line(self, text: str) -> None:
        """One line of data exactly as given: text cbatch made itself (a command, a URL)."""
        self._out.write(text + "\n")
        self._out.flush()

    def dumps(self, obj: Any, *, indent: int | None = None, compact: bool = False) -> str:
        """JSON text for stdout: exact, with terminal-unsafe characters escaped on a terminal."""
        separators = (",", ":") if compact else ((",", ": ") if indent else (", ", ": "))
        text = json.dumps(obj, ensure_ascii=False, indent=indent, separators=separators)
        return json_for_terminal(text) if self.stdout_is_tty else text

    def document(self, obj: Any) -> None:
        """One JSON document (``--json``), one line of it (``--jsonl``), or its values raw; a query applies."""
        if self._query is not None:
            obj = self._query.search(obj)
        if self.mode == TEXT:
            self._text(obj)
        else:
            self._out.write(self.dumps(obj, indent=None if self.mode == JSONL else 2) + "\n")
        self._out.flush()

    def _text(self, value: Any) -> None:
        """``--raw``: a string as it is, anything else as compact JSON; a list one value a line.

        Like ``jq -r``: ``status=$(cbatch get ID --query status --raw)`` needs no
        quotes stripped. On a terminal, text from outside is still made safe.
        """
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                self._out.write((clean(item) if self.stdout_is_tty else item) + "\n")
            else:
                self._out.write(self.dumps(item, compact=True) + "\n")

    def json_line(self, obj: Any) -> None:
        """One JSON object on one line (an event, a streamed outcome), flushed at once."""
        self._out.write(self.dumps(obj) + "\n")
        self._out.flush()

    def item(
        self,
        raw: Any,
        item_id: str,
        fields: Sequence[tuple[str, str]],
        styles: dict[str, str] | None = None,
    ) -> None:
        """One object: its JSON as the API sent it, its id, or a field view for people."""
        if self._query is not None or self.mode in (JSON, JSONL, TEXT):
            self.document(raw)
        elif self.mode == IDS:
            self._out.write(self._id(item_id) + "\n")
        elif self.mode == TABLE:
            self._print_fields(fields, styles or {})
        else:
            width = max((len(label) for label, _ in fields), default=0)
            for label, value in fields:
                self._out.write(f"{label + ':':<{width + 1}} {clean(value)}\n")
        self._out.flush()

    def items(
        self,
        items: Iterable[Any],
        *,
        columns: Sequence[Column],
        raw: Callable[[Any], Any],
        item_id: Callable[[Any], str],
        empty: str = "nothing to show",
        csv_fields: Sequence[str] = (),
        plain_columns: Sequence[Column] | None = None,
    ) -> int:
        """Write a listing in the chosen mode, streaming where the mode allows; returns the count.

        With a query, the listing is gathered into one JSON array first (a
        JMESPath expression sees the whole array). A listing that fails part way
        still leaves valid JSON: the array is closed before the error goes up.
        ``plain_columns`` are the raw-valued columns of tab-separated output
        (default: ``columns``).
        """
        if self._query is not None:
            everything = [raw(item) for item in items]
            picked = self._query.search(everything)
            if self.mode == TEXT:
                self._text(picked)
            else:
                self._out.write(self.dumps(picked, indent=2) + "\n")
            self._out.flush()
            return len(everything)
        if self.mode == TABLE:
            return self._table(items, columns, empty, item_id)
        plain = plain_columns or columns
        # Fetch the first item before writing anything: a request that fails at once
        # must leave stdout empty, not holding a lone "[" or a CSV header.
        iterator = iter(items)
        first = next(iterator, _END)
        items = iterator if first is _END else itertools.chain([first], iterator)
        if self.mode == CSV:
            return self._csv(items, raw, csv_fields)
        count = 0
        if self.mode == JSON and first is not _END:
            self._out.write("[")
        try:
            for item in items:
                if item is FLUSH:  # a listing that goes on: what came so far is out at once
                    self._out.flush()
                    continue
                if self.mode == JSON:
                    self._out.write(("\n  " if count == 0 else ",\n  ") + self.dumps(raw(item)))
                elif self.mode in (JSONL, TEXT):
                    self._out.write(self.dumps(raw(item), compact=self.mode == TEXT) + "\n")
                elif self.mode == IDS:
                    self._out.write(self._id(item_id(item)) + "\n")
                else:
                    self._out.write(_tsv(plain, item) + "\n")
                count += 1
                if count % 100 == 1:
                    self._out.flush()
        finally:
            if self.mode == JSON and first is not _END:
                self._out.write("\n]\n" if count else "]\n")
            self._out.flush()
        if self.mode == JSON and first is _END:
            self._out.write("[]\n")
            self._out.flush()
        if count == 0 and self.mode in (PLAIN, IDS):
            self.info(empty)
        return count

    def rows(
        self, items: Sequence[Any], *, columns: Sequence[Column], plain: Callable[[Any], str]
    ) -> None:
        """Rows that follow a field view: a table fitted to the terminal, or a line each off one.

        A line each at a terminal wraps at 80 columns; a table drops what does
        not fit and keeps ids whole.
        """
        if not items:
            return
        if self.mode == TABLE:
            self._table(items, columns, "")
            return
        for item in items:
            self._out.write(clean_lines(plain(item)) + "\n")
        self._out.flush()

    @contextmanager
    def binary(self) -> Iterator[IO[bytes]]:
        """stdout as a binary stream, for data streamed as it is decoded (``results -o -``)."""
        self._out.flush()
        stream = _BinaryStdout(self._out, terminal=self.stdout_is_tty)
        try:
            yield stream  # type: ignore[misc]  # write() and flush() are all a writer uses
        finally:
            stream.flush()

    def silence_stdout(self) -> None:
        """The reader of stdout went away (``cbatch list | head``): drop what is left, quietly.

        Python would otherwise complain at exit while flushing the dead pipe.
        """
        self._out.silence()

    def _id(self, item_id: str) -> str:
        return clean(item_id) if self.stdout_is_tty else item_id

    # -- tables and field views (rich, for a person) -------------------------------

    def console(self) -> Console:
        """A rich console on stdout; built only when a view needs one."""
        if self._console is None:
            self._console = _make_console(self._out, self.no_color)
        return self._console

    def err_console(self) -> Console:
        """A rich console on stderr, for progress bars and live views."""
        if self._err_console is None:
            self._err_console = _make_console(self._err, self.no_color)
        return self._err_console

    def _print_fields(self, fields: Sequence[tuple[str, str]], styles: dict[str, str]) -> None:
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="dim")
        table.add_column()
        for label, value in fields:
            table.add_row(label, Text(clean(value), style=styles.get(label, "")))
        self.console().print(table)

    def _table(
        self,
        items: Iterable[Any],
        columns: Sequence[Column],
        empty: str,
        item_id: Callable[[Any], str] | None = None,
    ) -> int:
        """Aligned columns that fit the terminal, one row a line, however many rows (:mod:`.table`)."""
        from .table import TableWriter, terminal_width

        color = not self.no_color and (self.stdout_is_tty or bool(os.environ.get("FORCE_COLOR")))
        width = terminal_width(self._out, self._err, sys.stdin)
        writer = TableWriter(self._out, columns, width=width, color=color, key=item_id)
        count = writer.write(items)
        if count == 0:
            self.info(empty)
        return count

    def _csv(self, items: Iterable[Any], raw: Callable[[Any], Any], fields: Sequence[str]) -> int:
        """CSV with a header of the API's own field names: stable for scripts and spreadsheets."""
        import csv

        safe = self.stdout_is_tty
        writer = csv.writer(self._out, lineterminator="\n")
        writer.writerow(fields)
        count = 0
        for item in items:
            obj = raw(item)
            row = ["" if obj.get(f) is None else _csv_cell(obj.get(f)) for f in fields]
            writer.writerow([clean(cell) for cell in row] if safe else row)
            count += 1
        self._out.flush()
        return count

    # -- progress and live views ----------------------------------------------------

    def progress(self, description: str) -> ProgressSink:
        """A bar on stderr for a person at a terminal; otherwise a sink that does nothing."""
        if not self.stderr_is_tty or self.for_machines:
            return NullProgress()
        from .progress import RichProgress

        return RichProgress(self.err_console(), clean(description))

    def watch_view(self, batch_ids: Sequence[str]) -> WatchView:
        """The renderer of a watch, as :meth:`set_watch_style` chose."""
        from . import watch_views as views

        many = len(batch_ids) > 1
        if self._watch_to_stderr:
            return views.PlainRenderer(
                self._err,
                many=many,
                progress_every=self._progress_every,
                results=self._watch_results,
                final=self._watch_final,
            )
        if self._watch_json:
            return views.JsonRenderer(self._out, dumps=self.dumps)
        plain = self._watch_plain or not self.stdout_is_tty or os.environ.get("TERM") == "dumb"
        if plain:
            return views.PlainRenderer(
                self._out,
                many=many,
                progress_every=self._progress_every,
                results=self._watch_results,
                final=self._watch_final,
            )
        self._live_view = views.LiveRenderer(
            self.console(), batch_ids, results=self._watch_results, final=self._watch_final
        )
        return self._live_view


def _make_console(stream: _Stream, no_color: bool) -> Console:
    from rich.console import Console

    return Console(file=stream, no_color=no_color or None, highlight=False, soft_wrap=False)  # type: ignore[arg-type]


def _tsv(columns: Sequence[Column], item: Any) -> str:
    return "\t".join(clean(col.cell(item)) for col in columns)


def _csv_cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
