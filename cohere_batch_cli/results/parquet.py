"""Results as Parquet: typed columns written in row groups as records stream in.

pyarrow is the optional extra ``[parquet]`` and is imported only here, only
when Parquet is asked for (:func:`require_pyarrow` says how to get it).

Records come in chunks (:mod:`.table`); each chunk becomes an Arrow record
batch at once, so Python objects never outlive their chunk, and batches are
gathered into a row group of about :data:`ROW_GROUP_BYTES` before it is
written (in a thread, while the next chunk is decoded): memory is bounded by
two row groups, whatever the number of records.

A default column has a fixed type (``custom_id`` a string, a float embedding
a list of float32 vectors...). A chosen ``--column`` takes the JSON type of
its values (:func:`json_type`, :func:`join`), which the first rows cannot
always tell: a column of integers may meet a float or a string a million
records later. Such a table is written to a spool file in the download's own
folder, one *segment* per schema; when a chunk widens a type (an integer
column meets a float: double; a string: JSON text), a new segment starts, and
the segments are rewritten once into the final schema at the end. In the
common case (one segment) the spool is copied as it is.

A value that does not fit its fixed column (an int8 embedding of 300) is
written as null and counted; the warning names the column.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from ..errors import LocalWriteError, MissingExtra
from .columns import Column, ColumnType
from .records import dumps

ROW_GROUP_BYTES = 16 * 1024 * 1024
"""Arrow bytes gathered before a row group is written: 4,000 records of 1,024 float32."""
ROW_GROUP_ROWS = 100_000
STUCK_WRITE_SECONDS = 2.0
"""How long an abandoned row group may wait on the stream itself before it is left behind."""
COMPRESSION = "zstd"
"""Read by pyarrow, DuckDB, polars, pandas and Spark alike; smaller than snappy at about its speed."""

_FIXED: dict[ColumnType, str] = {
    "string": "string",
    "int64": "int",
    "json_text": "string",
    "vectors_float32": "list:list:float32",
    "vectors_int8": "list:list:int8",
    "vectors_uint8": "list:list:uint8",
    "vectors_text": "list:string",
}
"""The Arrow type of each fixed column type, in the notation of :func:`arrow_type`."""


def require_pyarrow(what: str = "--format parquet") -> None:
    """Raise :class:`MissingExtra` (exit 2) with the install command when pyarrow is missing."""
    try:
        import pyarrow.parquet  # noqa: F401  (pyarrow itself, and its Parquet writer)
    except ImportError:
        from ..extras import install_hint

        raise MissingExtra(f"{what} needs pyarrow: {install_hint('parquet')}") from None


# -- the JSON type of a chosen column -------------------------------------------------------------

_INT64 = (-(2**63), 2**63)


def json_type(value: Any) -> str:
    """The type a value asks for: null, bool, int, float, string, list:<item>, or json (text).

    An object is JSON text (its keys vary from record to record: choose a
    field with the expression to get it typed); so is an integer past 64 bits.
    """
    kind = type(value)
    if value is None:
        return "null"
    if kind is bool:
        return "bool"
    if kind is int:
        return "int" if _INT64[0] <= value < _INT64[1] else "json"
    if kind is float:
        return "float"
    if kind is str:
        return "string"
    if kind is list:
        item = "null"
        for entry in value:
            item = join(item, json_type(entry))
            if item == "json":
                return "json"
        return "list:" + item
    return "json"


def join(a: str, b: str) -> str:
    """The type that holds values of both: null gives way, int widens to float, lists join their items."""
    if a == b:
        return a
    if a == "null":
        return b
    if b == "null":
        return a
    if {a, b} == {"int", "float"}:
        return "float"
    if a.startswith("list:") and b.startswith("list:"):
        item = join(a[5:], b[5:])
        return "json" if item == "json" else "list:" + item
    return "json"


def arrow_type(notation: str) -> Any:
    """The Arrow type for ``int``, ``float``, ``list:float32``, ``json``..."""
    import pyarrow as pa

    if notation.startswith("list:"):
        return pa.list_(arrow_type(notation[5:]))
    return {
        "null": pa.null(),
        "bool": pa.bool_(),
        "int": pa.int64(),
        "float": pa.float64(),
        "float32": pa.float32(),
        "int8": pa.int8(),
        "uint8": pa.uint8(),
        "string": pa.string(),
        "json": pa.string(),
    }[notation]


def column_arrow_type(column: Column, notation: str) -> Any:
    """A column's Arrow type: an input table's own, a typed answer's, else its notation's."""
    if column.type == "arrow":
        return column.shape
    if column.type == "typed":
        return answer_arrow_type(column.shape)
    return arrow_type(notation)


def answer_arrow_type(kind: Any) -> Any:
    """The Arrow type of an :class:`~.answers.AnswerType`: string, int64, float64, bool, list, struct."""
    import pyarrow as pa

    if kind.kind == "list":
        return pa.list_(answer_arrow_type(kind.item))
    if kind.kind == "struct":
        return pa.struct([pa.field(name, answer_arrow_type(sub)) for name, sub in kind.fields])
    return {
        "string": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "json": pa.string(),
    }[kind.kind]


def as_json_text(values: Sequence[Any]) -> list[str | None]:
    return [None if v is None else dumps(v) for v in values]


# -- the writer ----------------------------------------------------------------------------------


class ParquetTable:
    """A Parquet file written chunk by chunk into ``out``; :meth:`close` finishes it.

    ``spool_dir`` holds the spool when a chosen column's type may still widen.
    On any failure call :meth:`abandon`: nothing more reaches ``out``.
    """

    def __init__(self, out: IO[bytes], columns: Sequence[Column], spool_dir: Path) -> None:
        require_pyarrow()
        self._out = out
        self._columns = list(columns)
        self._inferred = [i for i, c in enumerate(self._columns) if c.type == "inferred"]
        self._types = [_FIXED.get(c.type, "null") for c in self._columns]
        self._spool_dir = spool_dir
        self._segments: list[tuple[Path, list[str]]] = []
        self._writer: Any = None
        self._sink: _Sink | None = None
        self._pending: list[Any] = []
        self._pending_bytes = 0
        self._pending_rows = 0
        self._inflight: _Background | None = None
        self.bad: Counter[str] = Counter()
        """Values written as null because they did not fit their column, by column name."""

    def write(self, values: list[list[Any]]) -> None:
        """One chunk: ``values[i]`` holds column ``i``'s value for each row of the chunk."""
        import pyarrow as pa

        types = list(self._types)
        for i in self._inferred:
            for value in values[i]:
                types[i] = join(types[i], json_type(value))
        if types != self._types:  # a wider schema: what came before is a segment of its own
            if self._pending or self._writer is not None:
                self._flush()
                self._close_segment()
            self._types = types
        arrays = [self._array(i, column_values) for i, column_values in enumerate(values)]
        batch = pa.RecordBatch.from_arrays(arrays, schema=self._schema())
        self._pending.append(batch)
        self._pending_bytes += batch.nbytes
        self._pending_rows += batch.num_rows
        if self._pending_bytes >= ROW_GROUP_BYTES or self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def close(self) -> None:
        """Write what is pending and the footer; a spooled table is copied (or rewritten) into ``out``."""
        if self._writer is None and not self._pending:
            self._open()  # no record at all: still a valid file, with the header's columns
        self._flush()
        if not self._inferred:
            self._finish_writer()
            return
        self._close_segment()
        if len(self._segments) == 1 and self._segments[0][1] == self._types:
            with open(self._segments[0][0], "rb") as spool:
                shutil.copyfileobj(spool, self._out, 1 << 20)
            return
        self._rewrite()

    def abandon(self) -> None:
        """Stop without a footer: the writer is let go, and nothing more is written to ``out``.

        pyarrow's writer must not be used from two threads: it is closed only
        once the row group being written in the background has ended. That
        write ends soon, as the dead sink drops what it is given; only a write
        stuck in ``out`` itself (a FIFO nobody reads) is left behind, with the
        writer, rather than waited for.
        """
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.dead = (
                True  # a row group still being written now finishes at once, writing nothing
            )
        job, self._inflight = self._inflight, None
        ended = job is None or job.settle(sink)
        if self._writer is not None and ended:
            writer, self._writer = self._writer, None
            with suppress(Exception):  # the sink is dead: this only lets go of pyarrow's writer
                writer.close()
        if sink is not None:
            sink.close()
        self._pending = []

    # -- internals ---------------------------------------------------------------------------

    def _schema(self, types: Sequence[str] | None = None) -> Any:
        import pyarrow as pa

        chosen = self._types if types is None else types
        return pa.schema(
            [
                pa.field(c.name, column_arrow_type(c, t))
                for c, t in zip(self._columns, chosen, strict=True)
            ]
        )

    def _array(self, i: int, values: list[Any]) -> Any:
        import pyarrow as pa

        if isinstance(values, pa.Array | pa.ChunkedArray):
            return values  # an input Parquet table's own column, as it was read
        notation = self._types[i]
        if notation == "json" or self._columns[i].type == "json_text":
            values = as_json_text(values) if notation == "json" else values
            notation = "string"
        arrow = column_arrow_type(self._columns[i], notation)
        packing = _PACKED.get(self._columns[i].type)
        try:
            return (
                pa.array(values, type=arrow)
                if packing is None
                else packed_vectors(values, *packing)
            )
        except (pa.ArrowException, TypeError, ValueError, OverflowError, struct.error):
            pass
        kept: list[Any] = []
        for value in values:  # the slow path, only for a chunk with a value that does not fit
            try:
                pa.array([value], type=arrow)
            except (pa.ArrowException, TypeError, ValueError, OverflowError):
                self.bad[self._columns[i].name] += 1
                value = None
            kept.append(value)
        return pa.array(kept, type=arrow)

    def _open(self) -> None:
        import pyarrow.parquet as pq

        if self._inferred:
            handle, name = tempfile.mkstemp(
                prefix="segment-", suffix=".parquet", dir=self._spool_dir
            )
            target: Any = open(handle, "wb")  # noqa: SIM115 - closed with its segment
            self._segments.append((Path(name), list(self._types)))
            self._sink = _Sink(target, owned=True, where=self._spool_dir)
        else:
            self._sink = _Sink(self._out)
        self._writer = pq.ParquetWriter(self._sink, self._schema(), compression=COMPRESSION)

    def _flush(self) -> None:
        import pyarrow as pa

        if not self._pending:
            return
        if self._writer is None:
            self._open()
        table = pa.Table.from_batches(self._pending)
        self._pending, self._pending_bytes, self._pending_rows = [], 0, 0
        self._wait()
        writer = self._writer
        job = _Background(lambda: writer.write_table(table, row_group_size=max(1, table.num_rows)))
        self._inflight = job  # before the thread exists: from now on abandon() waits for it
        job.start()

    def _wait(self) -> None:
        """The row group being written in the background, finished (its error raised here).

        The job stays in ``_inflight`` until it has ended: a signal that
        interrupts the wait must leave :meth:`abandon` a write to wait for, or
        the writer would be closed under the thread still writing with it.
        """
        job = self._inflight
        if job is not None:
            self._guarded(job.result)
            self._inflight = None

    def _finish_writer(self) -> None:
        self._wait()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            self._guarded(writer.close)

    def _close_segment(self) -> None:
        self._finish_writer()
        if self._sink is not None and self._sink.owned:
            self._sink.close()
        self._sink = None

    def _rewrite(self) -> None:
        """The segments into ``out`` in the final schema: a row group at a time, widened as needed."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._sink = _Sink(self._out)
        schema = self._schema()
        self._writer = pq.ParquetWriter(self._sink, schema, compression=COMPRESSION)
        for path, types in self._segments:
            segment = pq.ParquetFile(path)
            for group in range(segment.num_row_groups):
                table = segment.read_row_group(group)
                arrays = []
                for i, (was, now) in enumerate(zip(types, self._types, strict=True)):
                    column = table.column(i)
                    if was == now:
                        arrays.append(column)
                    elif now == "json":
                        arrays.append(pa.array(as_json_text(column.to_pylist()), type=pa.string()))
                    else:
                        arrays.append(column.cast(arrow_type(now)))
                rewritten = pa.Table.from_arrays(arrays, schema=schema)
                self._guarded(
                    lambda t=rewritten: self._writer.write_table(
                        t, row_group_size=max(1, t.num_rows)
                    )
                )
            segment.close()
            path.unlink(missing_ok=True)
        self._finish_writer()

    def _guarded(self, action: Any) -> None:
        """Run a pyarrow write; a failure of ``out`` itself comes out as the error it was."""
        try:
            action()
        except OSError:
            sink = self._sink
            if sink is not None and sink.error is not None:
                raise sink.error from None
            raise


_PACKED: dict[ColumnType, tuple[str, str]] = {
    "vectors_float32": ("f", "float32"),
    "vectors_int8": ("b", "int8"),
    "vectors_uint8": ("B", "uint8"),
}
"""Vector columns built by packing each vector's numbers with :mod:`struct`: 2.5x pyarrow's own
conversion of nested lists, which was a fifth of an embed run (docs/performance.md, P12)."""


def packed_vectors(values: Sequence[Any], code: str, item: str) -> Any:
    """A list<list<item>> Arrow array from each row's list of vectors (None: a null row).

    Raises ``struct.error``, ``TypeError`` or ``OverflowError`` for a row that is not
    a list of vectors of numbers that fit ``item``: the caller then takes the slow
    path, which finds the row and writes it as null.
    """
    import pyarrow as pa

    chunks: list[bytes] = []
    outer = [0]
    inner = [0]
    nulls = []
    count = 0
    pack = struct.pack
    for row in values:
        if row is None:
            nulls.append(True)
            outer.append(len(inner) - 1)
            continue
        if type(row) is not list:
            raise TypeError("a row of vectors is a list")
        for vector in row:
            if type(vector) is not list:
                raise TypeError("a vector is a list")
            chunks.append(pack(f"={len(vector)}{code}", *vector))
            count += len(vector)
            inner.append(count)
        nulls.append(False)
        outer.append(len(inner) - 1)
    flat = pa.Array.from_buffers(arrow_type(item), count, [None, pa.py_buffer(b"".join(chunks))])
    vectors = pa.ListArray.from_arrays(pa.array(inner, pa.int32()), flat)
    return pa.ListArray.from_arrays(
        pa.array(outer, pa.int32()), vectors, mask=pa.array(nulls, pa.bool_())
    )


class _Background:
    """One row group written in a thread of its own while the next chunk is decoded.

    Encoding and compressing a row group is pyarrow's C++, which lets go of the
    GIL: on a second core it costs the decoding nothing (a seventh of an embed
    run, docs/performance.md, P12). One at a time, so memory holds at most one
    row group being written and one being gathered.

    Its end is an Event of its own, never ``Thread.join``/``is_alive``: before
    Python 3.13, a join interrupted by a signal (Ctrl-C, SIGTERM raising
    :class:`~cohere_batch_cli.errors.Terminated`) marks the thread stopped while
    it still runs, and the writer was then closed under it: a segmentation fault.
    """

    def __init__(self, action: Any) -> None:
        self._action = action
        self._error: BaseException | None = None
        self._begun = threading.Event()
        self._ended = threading.Event()
        self._launched = False
        self._thread = threading.Thread(
            target=self._run, name="cbatch-parquet-row-group", daemon=True
        )

    def start(self) -> None:
        self._launched = True  # first: a signal between the two still finds a write to wait for
        self._thread.start()

    def _run(self) -> None:
        self._begun.set()
        try:
            self._action()
        except BaseException as exc:  # handed to the main thread by result()
            self._error = exc
        finally:
            self._ended.set()

    def result(self) -> None:
        """Wait for the write (a signal may interrupt the wait, and nothing else); raise its error."""
        self._ended.wait()
        if self._error is not None:
            raise self._error

    def settle(self, sink: _Sink | None) -> bool:
        """Wait for an abandoned write to end; whether it has.

        Its sink is dead, so what is left is encoding, however long that takes
        on a busy machine. The one wait given up on is a write blocked in the
        stream itself for :data:`STUCK_WRITE_SECONDS`.
        """
        if not self._launched:
            return True
        if not self._begun.wait(STUCK_WRITE_SECONDS):
            return False  # start() was cut short and its thread never ran: leave the writer be
        while not self._ended.wait(0.05):
            if sink is not None and sink.blocked_for() >= STUCK_WRITE_SECONDS:
                return False
        return True


class _Sink:
    """What pyarrow writes into: ``write`` and ``flush`` only, so it never closes the stream it is given.

    pyarrow turns an exception raised in ``write`` into an ``OSError`` of its
    own; the original (a :class:`LocalWriteError` naming the destination) is
    kept in ``error`` to be raised instead. Once ``dead``, writes are dropped:
    an abandoned writer must not add a footer to a file being removed.
    """

    def __init__(self, out: IO[bytes], *, owned: bool = False, where: Path | None = None) -> None:
        self._out = out
        self._where = where
        self.owned = owned
        self.dead = False
        self.closed = False
        self.error: BaseException | None = None
        self._writing_since: float | None = None

    def blocked_for(self) -> float:
        """Seconds the write now under way has waited on ``out`` (0 when none is)."""
        since = self._writing_since
        return 0.0 if since is None else time.monotonic() - since

    def write(self, data: Any) -> int:
        if self.dead:
            return len(data)
        self._writing_since = time.monotonic()
        try:
            return self._out.write(data)
        except LocalWriteError as exc:
            self.error = exc
            raise
        except OSError as exc:
            self.error = LocalWriteError(
                f"cannot write the Parquet spool in {self._where}: {exc.strerror or exc}"
            )
            raise
        finally:
            self._writing_since = None

    def flush(self) -> None:
        if not self.dead:
            self._out.flush()

    def close(self) -> None:
        if self.owned and not self.closed:
            self.closed = True
            self._out.close()
