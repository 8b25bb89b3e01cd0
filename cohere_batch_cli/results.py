"""A finished batch's output dataset, downloaded, decoded from Avro and written as JSONL or CSV.

The pipeline, and why each step is shaped so:

1. **Fetch** every part from its pre-signed link with an *unauthenticated*
   client (the key must never reach a storage host), several at once, each
   streamed to a temporary file in a hidden directory beside the destination:
   a part is never held in memory. A dropped connection, a 5xx, a truncated
   body or a stall (no byte for ``stall_timeout`` seconds) is retried with
   backoff, resuming with a ``Range`` request when the server allows it.
2. **Decode** the parts in ``index`` order with ``fastavro.reader``, which
   streams block by block, so the output order is stable whatever order the
   downloads finished in.
3. **Write** to ``.<name>.part-<random>`` in the destination's directory,
   fsync, and ``os.replace`` onto the final name only when complete. Any
   exception (Ctrl-C included) removes the temporary file and the part files,
   so an interrupted run leaves nothing under the final name and a second run
   writes the same bytes.

Output shapes (chosen here, documented in ``cbatch results --help``):

- JSONL, one record a line, ``custom_id`` first::

      {"custom_id": "r1", "body": {...}}           a success (body decoded to JSON)
      {"custom_id": "r2", "error": "message"}      a failure

  Fields the Avro schema adds beyond ``custom_id``/``body``/``error`` follow, unchanged.
- JSONL with ``join``: always the same four keys, ``request`` being the input
  line's ``body``::

      {"custom_id": "r1", "request": {...}|null, "response": {...}|null, "error": str|null}

- CSV: :data:`CSV_COLUMNS`, plus a ``request`` column with ``join``.

Errors: :class:`ResultsError` (a part could not be fetched or decoded; the CLI
exits 6) and :class:`~cohere_batch_cli.validate.InputFileError` (a destination
or join file that cannot be used; exit 2). Messages never carry a part's
pre-signed query string.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager, ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from .output.progress import NullProgress, ProgressSink
from .validate import MAX_LINE_BYTES, InputFileError

if TYPE_CHECKING:
    from ._httpx import httpx

    from .api.models import DatasetPart

OutputFormat = Literal["jsonl", "csv"]

CSV_COLUMNS = (
    "custom_id",
    "status",
    "error",
    "text",
    "finish_reason",
    "input_tokens",
    "output_tokens",
    "body",
)
"""The CSV header, in this order always; ``request`` is appended when joining."""

DEFAULT_STALL_TIMEOUT = 60.0
"""Seconds without a byte after which a part download counts as failed and is retried."""

PART_ATTEMPTS = 5
"""Tries per part (the first and four retries)."""

RETRY_BASE = 0.5
"""First backoff in seconds, doubling; ``CBATCH_RETRY_BASE`` overrides it (tests shrink it)."""

_RETRYABLE_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
_JOIN_THREAD_SECONDS = 1.0  # Ctrl-C must feel instant; a thread stuck longer dies with the process
_PROGRESS_EVERY = 1000


from .errors import ResultsError  # noqa: E402 - raised here, defined with the others


@dataclass(frozen=True)
class ResultsSummary:
    """What a download wrote; ``count_mismatch`` is a sentence to warn with, or None."""

    records_written: int
    records_total: int
    failed: int
    succeeded: int
    count_mismatch: str | None = None


# --------------------------------------------------------------------------- entry point


def download_results(
    parts: Sequence[DatasetPart],
    destination: Path | None,
    *,
    fmt: OutputFormat = "jsonl",
    failed_only: bool = False,
    join: Path | None = None,
    expected_records: int | None = None,
    http: httpx.Client,
    concurrency: int = 4,
    progress: ProgressSink | None = None,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    stdout: Callable[[], AbstractContextManager[IO[bytes]]] | None = None,
) -> ResultsSummary:
    """Download ``parts`` and write their records to ``destination`` (None: ``stdout()``).

    ``stdout`` opens the binary stream for a None destination: the output
    object's (``Output.binary``), so nothing here writes to a stream of its own.

    ``http`` must be an unauthenticated client (see ``api.client.storage_client``).
    A file destination is all or nothing; stdout is streamed as records are
    decoded, so a failure there leaves the lines already written (a pipe cannot
    be taken back). Raises :class:`ResultsError` or ``InputFileError``.
    """
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"unknown results format {fmt!r}")
    ordered = _ordered_parts(parts)
    if destination is not None:
        _check_destination(destination)
    elif stdout is None:
        raise ValueError("results to stdout need the output object's binary stream")
    sink: ProgressSink = progress or NullProgress()
    with ExitStack() as cleanup:
        joiner = cleanup.enter_context(_Joiner.open(join)) if join is not None else None
        workdir = Path(tempfile.mkdtemp(prefix=_workdir_prefix(destination), dir=_workdir_parent(destination)))
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        fetcher = _Fetcher(ordered, workdir, http, concurrency, stall_timeout, sink)
        cleanup.callback(fetcher.stop)  # runs before the rmtree: callbacks unwind last-in first
        sink.start(total_bytes=_total_bytes(ordered), total_records=expected_records)
        cleanup.callback(sink.finish)
        fetcher.start()
        records = cleanup.enter_context(closing(_decoded_records(ordered, fetcher)))
        with _output_stream(destination, stdout) as out:
            counts = _write_records(records, out, fmt=fmt, failed_only=failed_only, joiner=joiner, sink=sink)
    return ResultsSummary(
        records_written=counts.written,
        records_total=counts.total,
        failed=counts.failed,
        succeeded=counts.total - counts.failed,
        count_mismatch=count_mismatch(expected_records, counts.total),
    )


def count_mismatch(expected: int | None, found: int) -> str | None:
    """A sentence when the output holds a different number of records than the batch reports."""
    if expected is None or expected == found:
        return None
    if found < expected:
        return (
            f"the batch reports {expected:,} records but its output holds {found:,}: "
            f"{_n_records(expected - found)} missing"
        )
    return (
        f"the batch reports {expected:,} records but its output holds {found:,}: "
        f"{found - expected:,} more than expected"
    )


def _n_records(n: int) -> str:
    return f"{n:,} record is" if n == 1 else f"{n:,} records are"


# --------------------------------------------------------------------------- parts


def _ordered_parts(parts: Sequence[DatasetPart]) -> list[DatasetPart]:
    """Parts in ``index`` order (stable for equal indexes), each with a link, or an error now."""
    ordered = sorted(parts, key=lambda p: p.index)
    for position, part in enumerate(ordered):
        if not part.url:
            raise ResultsError(
                f"part {_part_label(part, position)} has no download link; "
                "the output dataset may not be ready yet, try again in a moment"
            )
    return ordered


def _part_label(part: DatasetPart, position: int) -> str:
    """How a message names a part: its index, and its name when it has one (never its link)."""
    index = part.index if part.raw.get("index") is not None else position
    return f"{index} ({part.name})" if part.name else str(index)


def _total_bytes(parts: Sequence[DatasetPart]) -> int | None:
    sizes = [p.size_bytes for p in parts]
    return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)


def _safe_url(url: str) -> str:
    """The link without its query string: the signature is a credential of sorts."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class _Fetcher:
    """Downloads parts on daemon threads; the caller waits for each in order.

    Daemon threads rather than a ``ThreadPoolExecutor``: after Ctrl-C a thread
    stuck in a read must not keep the process alive until its timeout.
    """

    def __init__(
        self,
        parts: list[DatasetPart],
        workdir: Path,
        http: httpx.Client,
        concurrency: int,
        stall_timeout: float,
        sink: ProgressSink,
    ) -> None:
        self.parts = parts
        self.futures: list[Future[Path]] = [Future() for _ in parts]
        self._workdir = workdir
        self._http = http
        self._stall_timeout = stall_timeout
        self._sink = sink
        self._cancel = threading.Event()
        self._jobs: queue.Queue[int] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._work, name=f"cbatch-part-{i}", daemon=True)
            for i in range(max(1, min(concurrency, len(parts))))
        ]

    def start(self) -> None:
        for i in range(len(self.parts)):
            self._jobs.put(i)
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop every download soon; give running threads a moment to notice."""
        self._cancel.set()
        deadline = time.monotonic() + _JOIN_THREAD_SECONDS
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    def wait(self, position: int) -> Path:
        """The part's file once downloaded, waking often so Ctrl-C is acted on at once.

        A SIGINT can be handed by the kernel to a download thread; Python then
        sets its flag for the main thread, which only acts on it when it runs
        bytecode, never while blocked in an untimed ``Future.result()``.
        """
        future = self.futures[position]
        while True:
            try:
                return future.result(timeout=0.2)
            except FutureTimeout:
                continue

    def _work(self) -> None:
        while not self._cancel.is_set():
            try:
                position = self._jobs.get_nowait()
            except queue.Empty:
                return
            future = self.futures[position]
            try:
                future.set_result(self._fetch(position))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                future.set_exception(exc)

    def _fetch(self, position: int) -> Path:
        part = self.parts[position]
        target = self._workdir / f"part-{position:05d}.avro"
        download_part(
            self._http,
            str(part.url),
            target,
            label=_part_label(part, position),
            stall_timeout=self._stall_timeout,
            on_bytes=lambda n: self._sink.advance(bytes=n),
            cancel=self._cancel,
        )
        return target


def download_part(
    http: httpx.Client,
    url: str,
    target: Path,
    *,
    label: str = "",
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    attempts: int = PART_ATTEMPTS,
    on_bytes: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Stream one link to ``target``, retrying drops, 5xx, truncation and stalls.

    A retry after some bytes arrived asks for the rest with ``Range`` (and
    ``If-Range`` when the server gave an ETag); a server that answers 200
    instead restarts the file from zero.
    """
    from ._httpx import httpx

    state = _PartState()
    last = "no attempt made"
    for attempt in range(1, attempts + 1):
        if cancel is not None and cancel.is_set():
            raise ResultsError(f"download of part {label} was cancelled")
        try:
            _attempt(http, url, target, state, stall_timeout, on_bytes, cancel)
            return
        except _Refused as exc:
            raise ResultsError(f"part {label} could not be downloaded from {_safe_url(url)}: {exc}") from None
        except _Retryable as exc:
            last = str(exc)
        except httpx.TimeoutException:
            last = f"no data for {stall_timeout:g} s" if state.got_headers else "the server did not answer"
        except httpx.RequestError as exc:
            last = _transport_reason(exc)
        if attempt < attempts:
            _sleep(_backoff(attempt), cancel)
    raise ResultsError(
        f"part {label} could not be downloaded from {_safe_url(url)} after {attempts} attempts: {last}"
    )


@dataclass
class _PartState:
    """What a retry needs from the attempts before it."""

    received: int = 0
    etag: str | None = None
    got_headers: bool = False
    resumable: bool = True


class _Retryable(Exception):
    pass


class _Refused(Exception):
    pass


def _attempt(
    http: httpx.Client,
    url: str,
    target: Path,
    state: _PartState,
    stall_timeout: float,
    on_bytes: Callable[[int], None] | None,
    cancel: threading.Event | None,
) -> None:
    """One GET; appends to ``target`` on a 206, rewrites it on a 200."""
    from ._httpx import httpx

    headers = {}
    if state.received and state.resumable:
        headers["Range"] = f"bytes={state.received}-"
        if state.etag:
            headers["If-Range"] = state.etag
    base = http.timeout
    timeout = httpx.Timeout(connect=base.connect, read=stall_timeout, write=base.write, pool=base.pool)
    state.got_headers = False
    with http.stream("GET", url, headers=headers, timeout=timeout) as response:
        state.got_headers = True
        resume = response.status_code == 206 and state.received > 0 and _range_start(response) == state.received
        if response.status_code in _RETRYABLE_STATUSES:
            raise _Retryable(f"the server answered {response.status_code}")
        if response.status_code == 416 and state.received:
            state.received = 0
            raise _Retryable("the server refused to resume")
        if response.status_code not in (200, 206) or (response.status_code == 206 and not resume):
            raise _Refused(_refusal(response.status_code))
        if not resume:
            state.received = 0
            state.etag = response.headers.get("etag")
            # Offsets count decoded bytes; a compressed transfer cannot be resumed by them.
            state.resumable = response.headers.get("content-encoding", "identity") == "identity"
        with open(target, "ab" if resume else "wb") as fh:
            for chunk in response.iter_bytes():  # as received: a drop loses nothing written
                if cancel is not None and cancel.is_set():
                    raise ResultsError("download cancelled")
                fh.write(chunk)
                state.received += len(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))


def _range_start(response: httpx.Response) -> int | None:
    value = response.headers.get("content-range", "")
    try:
        return int(value.split(" ", 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return None


def _refusal(status: int) -> str:
    if status in (401, 403):
        return f"the storage server refused the link ({status}); it may have expired: run the command again for fresh links"
    if status == 404:
        return "the storage server has no such file (404); the dataset may have been deleted"
    return f"the storage server answered {status}"


def _transport_reason(exc: Exception) -> str:
    text = str(exc).strip()
    if "peer closed connection" in text or "incomplete" in text.lower():
        return "the connection was closed before the whole part arrived"
    return text or type(exc).__name__


def _backoff(attempt: int) -> float:
    try:
        base = float(os.environ.get("CBATCH_RETRY_BASE") or RETRY_BASE)
    except ValueError:
        base = RETRY_BASE
    return min(30.0, base * 2 ** (attempt - 1))


def _sleep(seconds: float, cancel: threading.Event | None) -> None:
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        raise ResultsError("download cancelled")


# --------------------------------------------------------------------------- decoding


def _decoded_records(parts: list[DatasetPart], fetcher: _Fetcher) -> Iterator[dict[str, Any]]:
    """Every record of every part, parts in ``index`` order, each file deleted once read."""
    import fastavro

    for position, part in enumerate(parts):
        path = fetcher.wait(position)
        try:
            with open(path, "rb") as fh:
                try:
                    reader = fastavro.reader(fh)
                    for record in reader:
                        yield record if isinstance(record, dict) else {"value": record}
                except (ValueError, EOFError, StopIteration, TypeError, KeyError, IndexError) as exc:
                    raise ResultsError(
                        f"part {_part_label(part, position)} is not a readable Avro file: {exc or type(exc).__name__}"
                    ) from exc
        finally:
            path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- record shapes


def is_failed(record: dict[str, Any]) -> bool:
    """A record failed when it carries a non-empty ``error``."""
    error = record.get("error")
    return error is not None and error != "" and error != {}


def decode_body(value: Any) -> Any:
    """``body`` as JSON: a nested record as is, a JSON-encoded string (or bytes) decoded."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except ValueError:
                return value
    return value


def jsonl_record(record: dict[str, Any]) -> dict[str, Any]:
    """The JSONL shape of one output record: ``custom_id``, then ``body`` or ``error``, then the rest."""
    out: dict[str, Any] = {"custom_id": record.get("custom_id")}
    body = record.get("body")
    error = record.get("error")
    if body is not None:
        out["body"] = decode_body(body)
    if is_failed(record):
        out["error"] = error
    if "body" not in out and "error" not in out:
        out["body"] = None
    for key, value in record.items():
        if key not in ("custom_id", "body", "error"):
            out[key] = value
    return out


_PLAIN_SUCCESS_KEYS = frozenset({"custom_id", "body", "error"})


def _spliced_jsonl_line(record: dict[str, Any]) -> str | None:
    """The JSONL line of a plain success record with its body text kept as received.

    Most records are a custom_id and a body that is one JSON object as text.
    Decoding that body only to encode it again was over half of a results
    run (docs/performance.md, P4), so such a body is spliced into the line
    as it came. Anything else (an error, extra fields, a body that is not a
    one-line object) returns None and takes the general path.
    """
    body = record.get("body")
    if not isinstance(body, str) or not record.keys() <= _PLAIN_SUCCESS_KEYS or is_failed(record):
        return None
    custom_id = record.get("custom_id")
    if not isinstance(custom_id, str):
        return None
    text = body.strip()
    if not (text.startswith("{") and text.endswith("}")) or "\n" in text or "\r" in text:
        return None
    return '{"custom_id":' + _dumps(custom_id) + ',"body":' + text + "}"


def joined_record(record: dict[str, Any], request: Any) -> dict[str, Any]:
    """The joined JSONL shape: always ``custom_id``, ``request``, ``response``, ``error``."""
    body = record.get("body")
    return {
        "custom_id": record.get("custom_id"),
        "request": request,
        "response": None if body is None else decode_body(body),
        "error": record.get("error") if is_failed(record) else None,
    }


def csv_row(record: dict[str, Any]) -> list[str]:
    """One CSV row in :data:`CSV_COLUMNS` order."""
    body = decode_body(record.get("body"))
    failed = is_failed(record)
    error = record.get("error") if failed else None
    usage_in, usage_out = _usage(body)
    return [
        _cell(record.get("custom_id")),
        "failed" if failed else "succeeded",
        "" if error is None else (error if isinstance(error, str) else _dumps(error)),
        reply_text(body),
        _cell(body.get("finish_reason")) if isinstance(body, dict) else "",
        _cell(usage_in),
        _cell(usage_out),
        "" if body is None else (body if isinstance(body, str) else _dumps(body)),
    ]


def reply_text(body: Any) -> str:
    """The chat reply's text: text content parts joined; empty for embeddings and failures.

    Reads the v2 shape (``message.content`` parts), the v1 shape (``text``) and
    the OpenAI shape (``choices[0].message.content``). Thinking parts are left out.
    """
    if not isinstance(body, dict):
        return ""
    message = body.get("message")
    if isinstance(message, dict):
        return _content_text(message.get("content"))
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        first = choices[0].get("message")
        if isinstance(first, dict):
            return _content_text(first.get("content"))
    text = body.get("text")
    return text if isinstance(text, str) else ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "".join(
        part["text"]
        for part in content
        if isinstance(part, dict) and part.get("type", "text") == "text" and isinstance(part.get("text"), str)
    )


def _usage(body: Any) -> tuple[Any, Any]:
    """(input tokens, output tokens): billed units first, then counted tokens, then OpenAI's names."""
    if not isinstance(body, dict):
        return None, None
    holder = body.get("usage") if isinstance(body.get("usage"), dict) else body.get("meta")
    if not isinstance(holder, dict):
        return None, None
    for key in ("billed_units", "tokens"):
        units = holder.get(key)
        if isinstance(units, dict) and ("input_tokens" in units or "output_tokens" in units):
            return units.get("input_tokens"), units.get("output_tokens")
    if "prompt_tokens" in holder or "completion_tokens" in holder:
        return holder.get("prompt_tokens"), holder.get("completion_tokens")
    return holder.get("input_tokens"), holder.get("output_tokens")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return _dumps(value)


def _default(value: Any) -> Any:
    """JSON for what Avro can hold and JSON cannot: bytes, decimals, dates, UUIDs."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default)


def _dumps(value: Any) -> str:
    """Compact UTF-8 JSON; one shared encoder, since building one per record costs a tenth of the run."""
    return _ENCODER.encode(value)


# --------------------------------------------------------------------------- join


class _Joiner:
    """The input file's requests by ``custom_id``, read from disk on demand.

    Only ``custom_id -> byte offset`` is held (for a million requests, some
    tens of MB), never the requests themselves. The first line with an id wins;
    lines that are not JSON objects with a string ``custom_id`` are ignored.
    """

    def __init__(self, path: Path, fh: IO[bytes], offsets: dict[str, int]) -> None:
        self.path = path
        self._fh = fh
        self._offsets = offsets

    @classmethod
    def open(cls, path: Path) -> _Joiner:
        if Path(path).is_dir():
            raise InputFileError(f"--join {path} is a directory, not a JSONL file")
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise InputFileError(f"cannot read the --join file {path}: {exc.strerror or exc}") from exc
        try:
            return cls(path, fh, _index_custom_ids(fh))
        except BaseException:
            fh.close()
            raise

    def request(self, custom_id: Any) -> Any:
        """The ``body`` of the input line with this ``custom_id``, or None when there is none."""
        offset = self._offsets.get(custom_id) if isinstance(custom_id, str) else None
        if offset is None:
            return None
        self._fh.seek(offset)
        record = _parse_line(self._fh.readline(MAX_LINE_BYTES + 1))
        return record.get("body") if record is not None else None

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> _Joiner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _index_custom_ids(fh: IO[bytes]) -> dict[str, int]:
    offsets: dict[str, int] = {}
    offset = 0
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return offsets
        record = _parse_line(raw)
        custom_id = record.get("custom_id") if record is not None else None
        if isinstance(custom_id, str) and custom_id not in offsets:
            offsets[custom_id] = offset
        offset += len(raw)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            offset = _skip_long_line(fh, offset)


def _skip_long_line(fh: IO[bytes], offset: int) -> int:
    while True:
        chunk = fh.readline(1024 * 1024)
        offset += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return offset


def _parse_line(raw: bytes) -> dict[str, Any] | None:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


# --------------------------------------------------------------------------- writing


@dataclass
class _Counts:
    total: int = 0
    written: int = 0
    failed: int = 0


def _write_records(
    records: Iterable[dict[str, Any]],
    out: IO[bytes],
    *,
    fmt: OutputFormat,
    failed_only: bool,
    joiner: _Joiner | None,
    sink: ProgressSink,
) -> _Counts:
    """Write records as they are decoded; count every record, written or filtered out."""
    counts = _Counts()
    text = _Utf8(out)
    writer = csv.writer(text) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS + (("request",) if joiner is not None else ()))
    pending = 0
    for record in records:
        counts.total += 1
        failed = is_failed(record)
        counts.failed += failed
        pending += 1
        if pending >= _PROGRESS_EVERY:
            sink.advance(records=pending)
            pending = 0
        if failed_only and not failed:
            continue
        request = joiner.request(record.get("custom_id")) if joiner is not None else None
        if writer is not None:
            row = csv_row(record)
            if joiner is not None:
                row.append("" if request is None else _dumps(request))
            writer.writerow(row)
        else:
            line = _spliced_jsonl_line(record) if joiner is None else None
            if line is None:
                shaped = joined_record(record, request) if joiner is not None else jsonl_record(record)
                line = _dumps(shaped)
            text.write(line + "\n")
        counts.written += 1
    if pending:
        sink.advance(records=pending)
    return counts


class _Utf8:
    """A ``write(str)`` target over a binary stream, for ``csv.writer`` and JSON lines alike."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def write(self, text: str) -> int:
        self._out.write(text.encode("utf-8"))
        return len(text)


def _check_destination(destination: Path) -> None:
    """Refuse a destination that cannot be written before a byte is downloaded."""
    if destination.is_dir():
        raise InputFileError(f"cannot write results to {destination}: it is a directory")
    parent = destination.parent
    if not parent.is_dir():
        raise InputFileError(f"cannot write results to {destination}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputFileError(f"cannot write results to {destination}: {parent} is not writable")


def _workdir_parent(destination: Path | None) -> str | None:
    """Part files go beside the destination (same disk, cleaned with it), else in the temp dir."""
    return None if destination is None else str(destination.parent)


def _workdir_prefix(destination: Path | None) -> str:
    return ".cbatch-parts-" if destination is None else f".{destination.name}.parts-"


@contextmanager
def _output_stream(
    destination: Path | None, stdout: Callable[[], AbstractContextManager[IO[bytes]]] | None
) -> Iterator[IO[bytes]]:
    """A binary stream to write into: stdout, or an atomic temporary file renamed when complete."""
    if destination is None:
        assert stdout is not None
        with stdout() as out:
            yield out
        return
    temp = destination.parent / f".{destination.name}.part-{secrets.token_hex(4)}"
    fh = open(temp, "xb")  # noqa: SIM115 - closed on both paths below
    try:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        os.replace(temp, destination)
        _fsync_directory(destination.parent)
    except BaseException:
        fh.close()
        temp.unlink(missing_ok=True)
        raise


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; best effort (not every platform allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
