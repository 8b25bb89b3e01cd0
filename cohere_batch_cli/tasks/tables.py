"""A table's rows, read in batches and never whole: CSV, Parquet, JSONL of objects, or a folder of them.

``cbatch create --from TABLE`` reads its table here. Every format yields the
same thing: one ``dict`` a row, column name to value, in the table's order,
with memory that does not grow with the table:

- **CSV**: the header names the columns and every value is a string, as
  written ("001" stays "001", no type is guessed); an empty field is an empty
  string, never a null.
- **Parquet**: read a record batch at a time through pyarrow (imported only
  here, from the ``parquet`` extra), with ``pre_buffer=False``, a bounded
  ``buffer_size`` and ``use_threads=False``: pyarrow's defaults buffer whole
  column chunks on several threads and took three times the memory.
- **JSONL of objects**: one object a line, its keys the columns (those of the
  first line). A JSONL of ``{custom_id, body}`` lines is requests, not a
  table: it is refused with a pointer to ``--file``.
- **A folder**: its table files (``.csv``, ``.parquet``, ``.jsonl``, ...,
  hidden and ``_``-prefixed files such as Spark's ``_SUCCESS`` left out), read
  as one table in lexicographic path order, as Spark writes ``part-00000...``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputFileError, InputRejected, MissingExtra, UsageError
from ..units import counted

BATCH_ROWS = 1024
"""Rows read from a Parquet file at a time."""
READ_ROWS = 8192
"""Rows pyarrow decodes from a Parquet file at a time, handed out ``size`` at a time: a batch of
1,024 rows cost twice as much a row to decode (docs/performance.md, T2)."""
PARQUET_BUFFER = 1 << 20
"""Bytes pyarrow buffers while it reads a column chunk (``buffer_size``)."""

_SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


@dataclass(frozen=True)
class TableFile:
    """One file of a table, and the format its name says it is in."""

    path: Path
    kind: str


def table_files(table: Path) -> list[TableFile]:
    """The files of ``table``: itself, or a folder's table files in lexicographic path order."""
    if not table.exists():
        raise InputFileError(f"cannot read {table}: no such file or folder")
    if table.is_dir():
        found = []
        for root, dirs, names in os.walk(table):
            dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
            for name in names:
                suffix = Path(name).suffix.lower()
                if not name.startswith((".", "_")) and suffix in _SUFFIXES:
                    found.append(Path(root) / name)
        if not found:
            raise UsageError(
                f"{table} holds no table file (.csv, .parquet, .jsonl)",
                hint="give --from a table file, or a folder of them",
            )
        found.sort(key=lambda p: p.relative_to(table).as_posix())
        return [TableFile(p, _SUFFIXES[p.suffix.lower()]) for p in found]
    kind = _SUFFIXES.get(table.suffix.lower())
    if kind is None:
        raise UsageError(
            f"cannot tell the format of {table} from its name",
            hint="cbatch reads .csv, .parquet and .jsonl tables: save or export it as one of them",
        )
    return [TableFile(table, kind)]


class RowChunk:
    """Some rows of a table in its order: as ``dict``s, and for Parquet as the Arrow record batch read.

    ``results`` writes a Parquet table's own columns from ``arrow`` as they are
    (types and values untouched); the ``dict``s are made only when asked for.
    """

    __slots__ = ("_rows", "arrow", "size")

    def __init__(self, size: int, rows: list[dict[str, Any]] | None = None, arrow: Any = None):
        self.size = size
        self._rows = rows
        self.arrow = arrow

    @property
    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = self.arrow.to_pylist()
        return self._rows


class TableReader:
    """One file of a table: its columns, known before any row, and its rows."""

    def __init__(self, file: TableFile) -> None:
        self.file = file
        self.columns: list[str] = []

    arrow_schema: Any = None
    """A Parquet file's Arrow schema (its columns' types); None for CSV and JSONL."""

    def rows(self) -> Iterator[dict[str, Any]]:  # pragma: no cover - each format has its own
        raise NotImplementedError

    def chunks(self, size: int = BATCH_ROWS) -> Iterator[RowChunk]:
        """The rows ``size`` at a time (Parquet: a record batch at a time, its Arrow columns kept)."""
        rows: list[dict[str, Any]] = []
        for row in self.rows():
            rows.append(row)
            if len(rows) >= size:
                yield RowChunk(len(rows), rows)
                rows = []
        if rows:
            yield RowChunk(len(rows), rows)

    def close(self) -> None:
        """Let go of the file, whether its rows were read to the end or not."""
        self._handle().close()

    def _handle(self) -> Any:  # pragma: no cover - each format has its own
        raise NotImplementedError

    def __enter__(self) -> TableReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _CsvReader(TableReader):
    def _handle(self) -> Any:
        return self._fh

    def __init__(self, file: TableFile) -> None:
        super().__init__(file)
        csv.field_size_limit(2**31 - 1)  # a long review is one field, not an error
        try:
            self._fh = open(file.path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed by rows()
        except OSError as exc:
            raise InputFileError(f"cannot read {file.path}: {exc.strerror or exc}") from exc
        self._reader = csv.reader(self._fh)
        try:
            header = next(self._reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            self._fh.close()
            raise InputRejected(f"{file.path}:1: not a CSV header: {exc}") from None
        if header is None:
            self._fh.close()
            raise InputRejected(f"{file.path}: empty: a CSV table needs a header line")
        _refuse_repeated(file.path, header)
        self.columns = header

    def rows(self) -> Iterator[dict[str, Any]]:
        width = len(self.columns)
        with self._fh:
            try:
                for fields in self._reader:
                    if not fields:
                        continue  # a blank line holds no row
                    if len(fields) != width:
                        raise InputRejected(
                            f"{self.file.path}:{self._reader.line_num}: {counted(len(fields), 'field')}, "
                            f"the header names {width}"
                        )
                    yield dict(zip(self.columns, fields, strict=True))
            except (csv.Error, UnicodeDecodeError) as exc:
                raise InputRejected(
                    f"{self.file.path}:{self._reader.line_num}: not CSV: {exc}"
                ) from None


class _JsonlReader(TableReader):
    def _handle(self) -> Any:
        return self._fh

    def __init__(self, file: TableFile) -> None:
        super().__init__(file)
        try:
            self._fh = open(file.path, encoding="utf-8")  # noqa: SIM115 - closed by rows()
        except OSError as exc:
            raise InputFileError(f"cannot read {file.path}: {exc.strerror or exc}") from exc
        self._first: tuple[int, dict[str, Any]] | None = None
        self._line = 0
        for line, record in self._records():
            self._first = (line, record)
            break
        if self._first is None:
            self._fh.close()
            raise InputRejected(f"{file.path}: empty: a JSONL table needs one object a line")
        first = self._first[1]
        if "custom_id" in first and isinstance(first.get("body"), dict):
            self._fh.close()
            raise UsageError(
                f"{file.path} holds requests ({{custom_id, body}} lines), not a table",
                hint=f"send it as it is: cbatch create --file {file.path}",
            )
        self.columns = list(first)

    def _records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        try:
            for text in self._fh:
                self._line += 1
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except ValueError as exc:
                    raise InputRejected(
                        f"{self.file.path}:{self._line}: not JSON: {exc.args[0] if exc.args else exc}"
                    ) from None
                if not isinstance(record, dict):
                    raise InputRejected(f"{self.file.path}:{self._line}: not a JSON object")
                yield self._line, record
        except UnicodeDecodeError as exc:
            raise InputRejected(f"{self.file.path}:{self._line + 1}: not UTF-8: {exc}") from None

    def rows(self) -> Iterator[dict[str, Any]]:
        with self._fh:
            if self._first is not None:
                yield self._first[1]
            for _line, record in self._records():
                yield record


class _ParquetReader(TableReader):
    def _handle(self) -> Any:
        return self._file

    def __init__(self, file: TableFile) -> None:
        super().__init__(file)
        try:
            import pyarrow.parquet as pq
        except ImportError:
            from ..extras import install_hint

            raise MissingExtra(
                f"reading a Parquet table needs pyarrow: {install_hint('parquet')}"
            ) from None
        try:
            self._file = pq.ParquetFile(file.path, pre_buffer=False, buffer_size=PARQUET_BUFFER)
        except OSError as exc:
            raise InputFileError(f"cannot read {file.path}: {exc}") from exc
        except Exception as exc:  # pyarrow's own errors: a file that is not Parquet
            raise InputRejected(f"{file.path}: not a Parquet file: {exc}") from None
        self.arrow_schema = self._file.schema_arrow
        self.columns = list(self.arrow_schema.names)
        _refuse_repeated(file.path, self.columns)

    @property
    def num_rows(self) -> int:
        """The rows the file's footer counts (nothing is read but the footer)."""
        return int(self._file.metadata.num_rows)

    def rows(self) -> Iterator[dict[str, Any]]:
        for chunk in self.chunks():
            yield from chunk.rows

    def chunks(
        self, size: int = BATCH_ROWS, columns: list[str] | None = None
    ) -> Iterator[RowChunk]:
        try:
            for batch in self._file.iter_batches(
                batch_size=max(size, READ_ROWS), columns=columns, use_threads=False
            ):
                for start in range(0, batch.num_rows, size):
                    piece = batch.slice(start, size)
                    yield RowChunk(piece.num_rows, arrow=piece)
        finally:
            self._file.close()


def _refuse_repeated(path: Path, columns: list[str]) -> None:
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise InputRejected(f"{path}: column '{column}' is named twice")
        seen.add(column)


_READERS: dict[str, type[TableReader]] = {
    "csv": _CsvReader,
    "jsonl": _JsonlReader,
    "parquet": _ParquetReader,
}


def open_table_file(file: TableFile) -> TableReader:
    """A reader of ``file``, its columns read (a header, a schema, a first object), no row yet."""
    return _READERS[file.kind](file)


@dataclass(frozen=True)
class TableShape:
    """A table's files and the one set of columns they agree on, known before any row is read."""

    files: list[TableFile]
    columns: list[str]
    arrow_schema: Any
    """For a table of Parquet files, the types every file's columns widen to without loss; else None."""


def table_shape(table: Path) -> TableShape:
    """The files of ``table`` and their columns, refused (exit 5) unless every file agrees with the first.

    One table has one set of columns: each file's (a CSV's header, a JSONL's
    first object, a Parquet file's footer: no row is read) must be the first
    file's, in the same order. Parquet files must agree on types too, up to a
    widening that loses nothing (``int32`` and ``int64`` are written as
    ``int64``, ``float`` as ``double``, a column of nulls as the other files'
    type), so that ``results`` can write the table back as one Parquet schema.
    ``create --from``, ``estimate`` and ``--dry-run`` refuse a table here,
    before a request is sent or paid for, rather than ``results`` after.
    """
    files = table_files(table)
    columns: list[str] = []
    schemas: list[tuple[TableFile, Any]] = []
    for file in files:
        with open_table_file(file) as reader:
            if file is files[0]:
                columns = list(reader.columns)
            elif reader.columns != columns:
                raise InputRejected(
                    f"{file.path}: its columns ({', '.join(reader.columns)}) are not those of "
                    f"{files[0].path} ({', '.join(columns)}): one table has one set of columns"
                )
            schemas.append((file, reader.arrow_schema))
    if any(file.kind != "parquet" for file in files):
        return TableShape(files, columns, None)
    return TableShape(files, columns, _widest(schemas))


def _widest(schemas: list[tuple[TableFile, Any]]) -> Any:
    """The Arrow schema every file's widens to without loss; refused naming two files and a column."""
    import pyarrow as pa

    first_file, widest = schemas[0]
    for file, schema in schemas[1:]:
        fields = []
        for mine, theirs in zip(widest, schema, strict=True):
            kind = _wider(mine.type, theirs.type)
            if kind is None:
                raise InputRejected(
                    f"{file.path}: its column '{theirs.name}' is {theirs.type}, and "
                    f"{first_file.path}'s is {mine.type}: one table has one type a column"
                )
            fields.append(pa.field(mine.name, kind, mine.nullable or theirs.nullable))
        widest = pa.schema(fields, metadata=widest.metadata)
    return widest


def _wider(a: Any, b: Any) -> Any:
    """The type both ``a`` and ``b`` convert to without loss, or None when there is none."""
    import pyarrow as pa
    import pyarrow.types as t

    if a.equals(b):
        return a
    if t.is_null(a):
        return b
    if t.is_null(b):
        return a
    for x, y in ((a, b), (b, a)):
        if _widens(x, y):
            return y
    if t.is_struct(a) and t.is_struct(b):
        names = [a.field(i).name for i in range(a.num_fields)]
        if names != [b.field(i).name for i in range(b.num_fields)]:
            return None
        fields = []
        for i in range(a.num_fields):
            kind = _wider(a.field(i).type, b.field(i).type)
            if kind is None:
                return None
            fields.append(pa.field(names[i], kind))
        return pa.struct(fields)
    if t.is_list(a) and t.is_list(b):
        kind = _wider(a.value_type, b.value_type)
        return None if kind is None else pa.list_(kind)
    if t.is_large_list(a) and t.is_large_list(b):
        kind = _wider(a.value_type, b.value_type)
        return None if kind is None else pa.large_list(kind)
    return None


def _widens(x: Any, y: Any) -> bool:
    """Whether every value of type ``x`` is a value of type ``y`` (a narrower integer, float, text)."""
    import pyarrow.types as t

    if t.is_integer(x) and t.is_integer(y):
        if t.is_signed_integer(x) == t.is_signed_integer(y):
            return bool(x.bit_width <= y.bit_width)
        return bool(t.is_unsigned_integer(x) and x.bit_width < y.bit_width)
    if t.is_floating(x) and t.is_floating(y):
        return bool(x.bit_width <= y.bit_width)
    return bool(
        (t.is_string(x) and t.is_large_string(y)) or (t.is_binary(x) and t.is_large_binary(y))
    )


# -- the table read again, for results ------------------------------------------------------------


def holds_requests(path: Path) -> bool:
    """Whether ``path`` is a JSONL of requests (``{custom_id, body}`` lines) rather than a table.

    A name that is no table's (``requests.txt``, ``input.json``) is taken as
    requests, as ``--join`` always took it: their own check then says what the
    file lacks, where the table reader could only refuse its name.
    """
    if path.is_dir():
        return False
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        return True
    if kind != "jsonl":
        return False
    try:
        with open(path, "rb") as fh:
            for line in fh:
                if line.strip():
                    first = json.loads(line)
                    return (
                        isinstance(first, dict)
                        and "custom_id" in first
                        and isinstance(first.get("body"), dict)
                    )
    except (OSError, ValueError):
        return False
    return False


class TableRows:
    """A whole table read again, every file in order: its columns (and their types) first, then its rows.

    ``cbatch results`` writes the table of a ``create --from`` run with the
    answers as new columns: it needs the columns before any row (a file's
    schema is declared first), the rows a chunk at a time in the table's order,
    and each row's ``custom_id`` as ``create --from`` gave it.
    """

    def __init__(self, table: Path) -> None:
        self.table = table
        shape = table_shape(table)
        self.files = shape.files
        self.columns = shape.columns
        self.arrow_schema = shape.arrow_schema
        """The Arrow schema of a table of Parquet files (the types its files widen to); None for any other."""
        self.kind = self.files[0].kind if len({f.kind for f in self.files}) == 1 else "mixed"

    def chunks(self, size: int = BATCH_ROWS) -> Generator[RowChunk, None, None]:
        """Every row, a chunk at a time; a file whose columns are not the first file's is refused."""
        for file in self.files:
            with open_table_file(file) as reader:
                self._same_columns(file, reader)
                for chunk in reader.chunks(size):
                    if chunk.arrow is not None and self.arrow_schema is not None:
                        chunk.arrow = self._as_first(file, chunk.arrow)
                    yield chunk

    def count(self) -> int:
        """How many rows the table has: a Parquet file's from its footer, any other's by reading it."""
        total = 0
        for file in self.files:
            with open_table_file(file) as reader:
                if isinstance(reader, _ParquetReader):
                    total += reader.num_rows
                else:
                    total += sum(1 for _ in reader.rows())
        return total

    def ids(self, id_column: str | None) -> Iterator[str | None]:
        """Each row's ``custom_id`` as ``create --from`` made it: the column's value as text, else the row number."""
        number = 0
        for file in self.files:
            with open_table_file(file) as reader:
                self._same_columns(file, reader)
                if id_column is not None and id_column not in reader.columns:
                    raise InputRejected(f"{file.path} has no column '{id_column}' (--id-column)")
                if id_column is None:
                    for chunk in reader.chunks():
                        for _ in range(chunk.size):
                            number += 1
                            yield str(number)
                    continue
                chunks = (
                    reader.chunks(columns=[id_column])
                    if isinstance(reader, _ParquetReader)
                    else reader.chunks()
                )
                for chunk in chunks:
                    for row in chunk.rows:
                        value = row.get(id_column)
                        yield None if value is None else str(value)

    def _same_columns(self, file: TableFile, reader: TableReader) -> None:
        if reader.columns != self.columns:
            raise InputRejected(
                f"{file.path}: its columns ({', '.join(reader.columns)}) are not those of "
                f"{self.files[0].path} ({', '.join(self.columns)}): one table has one set of columns"
            )

    def _as_first(self, file: TableFile, batch: Any) -> Any:
        if batch.schema.equals(self.arrow_schema):
            return batch
        try:
            return batch.cast(self.arrow_schema)
        except Exception as exc:  # pyarrow's own errors: types that do not convert
            raise InputRejected(
                f"{file.path}: its column types are not those of {self.files[0].path}: {exc}"
            ) from None


# -- what a table was, and what changed -----------------------------------------------------------


@dataclass(frozen=True)
class FilePrint:
    """One file of a table as it is now: its name within the table, size and fingerprint."""

    name: str
    size: int
    fingerprint: str


def _name(table: Path, path: Path) -> str:
    return "" if path == table else path.relative_to(table).as_posix()


def table_prints(table: Path) -> list[FilePrint]:
    """Each file of ``table`` with its size and fingerprint (:mod:`cohere_batch_cli.fingerprint`)."""
    from ..fingerprint import file_fingerprint

    prints = []
    for file in table_files(table):
        try:
            prints.append(
                FilePrint(
                    _name(table, file.path), file.path.stat().st_size, file_fingerprint(file.path)
                )
            )
        except OSError as exc:
            raise InputFileError(f"cannot read {file.path}: {exc.strerror or exc}") from exc
    return prints


def table_fingerprint(prints: list[FilePrint]) -> str:
    """One fingerprint of the whole table: its files' names, sizes and fingerprints, in order."""
    import hashlib

    digest = hashlib.sha256()
    for p in prints:
        digest.update(f"{p.name}\0{p.size}\0{p.fingerprint}\n".encode())
    return "sha256-files:" + digest.hexdigest()


def table_changes(table: Path, recorded: list[FilePrint]) -> str | None:
    """What changed in ``table`` since ``recorded`` (files gone, new, resized, rewritten); None if nothing.

    Sizes are compared first, so a table that grew is told without reading it.
    """
    from ..fingerprint import file_fingerprint

    try:
        files = {_name(table, f.path): f.path for f in table_files(table)}
    except (InputFileError, UsageError) as exc:
        return str(exc)
    then = {p.name: p for p in recorded}
    changes: list[str] = []

    def shown(name: str) -> str:
        return name or "it"  # a table of one file: "it was 87 bytes and is 81 now"

    changes.extend(f"{shown(name)} is gone" for name in sorted(then.keys() - files.keys()))
    changes.extend(f"{shown(name)} is new" for name in sorted(files.keys() - then.keys()))
    for name in sorted(then.keys() & files.keys()):
        before, path = then[name], files[name]
        try:
            size = path.stat().st_size
            if size != before.size:
                changes.append(f"{shown(name)} was {before.size:,} bytes and is {size:,} now")
            elif file_fingerprint(path) != before.fingerprint:
                whose = f"{name}'s" if name else "its"
                changes.append(f"{whose} content changed (another fingerprint)")
        except OSError as exc:
            changes.append(f"{shown(name)} cannot be read ({exc.strerror or exc})")
    return "; ".join(changes) or None
