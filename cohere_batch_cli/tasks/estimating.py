"""Count a batch input's tokens with its model's tokenizer: before it is sent, and after.

Three callers share one counting pass (:func:`count_file`):

- ``cbatch estimate FILE --model M``: records, input tokens per record (or per text
  for embed), the output bound, the records that cannot fit the model's context, and
  the cost bound when the profile prices the model (:func:`estimate_file`);
- ``cbatch create --file``: the guard between the local check and the upload
  (:func:`guard_upload`). Without a budget it is cheap: a record whose bytes plus its
  output bound fit the context cannot overflow (:func:`~cohere_batch_cli.tokens.rule.line_bound`),
  so only the others are parsed and counted, and when none are left no tokenizer is
  needed. With ``--max-cost`` or ``--max-input-tokens`` every record is counted, and
  the :class:`~.budget.Budget` is charged;
- afterwards, ``estimate --batch ID`` and ``results --join FILE`` set the count beside
  the tokens the batch reports (:func:`compare`), so users learn how far the count is
  from the bill: the API adds template tokens of its own to every chat request.

A pass reads the file once, in binary, a line at a time, and keeps a histogram of
counts rather than the counts (an exact median in memory that does not grow with the
file), the first :data:`~cohere_batch_cli.input_rules.MAX_PROBLEMS` records over the
context, and a count of the rest. Texts are tokenized in chunks, in parallel.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputFileError, InputRejected, MissingExtra, TokenizerError, UsageError
from ..input_rules import MAX_PROBLEMS, infer_type
from ..tokens.rule import (
    EMBED,
    RecordTexts,
    block_fits,
    embed_limit,
    kind_of,
    line_bound,
    record_texts,
    unit_tokens,
)
from ..tokens.source import FetchSettings
from ..units import counted
from .budget import Budget, Charge, money

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Batch, Model
    from ..config import Prices
    from ..output.progress import ProgressSink
    from ..tokens.tokenizer import Batch as TokenBatch
    from ..tokens.tokenizer import Learned, TextTokenizer
    from ..validate import FileReport
    from .reporting import Reporter

CHUNK_TEXTS = 2048
"""Texts tokenized per call: enough to keep both cores busy, little enough to stay small."""
CHUNK_BYTES = 4 * 1024 * 1024
TEMPLATE_NOTE = (
    "the requests' text only: the API adds template tokens of its own, so the bill is higher"
)
SNIFF_LINES = 1000


@dataclass(frozen=True)
class CountOptions:
    """Where the tokenizer comes from and what a record without ``max_tokens`` may write."""

    assumed_output: int = 4096
    tokenizer_file: Path | None = None
    fetch: FetchSettings = field(default_factory=FetchSettings)


# --------------------------------------------------------------------------- the tallies


@dataclass
class TokenStats:
    """Counts as a histogram: total, min, median and max, in memory that does not grow with the file."""

    histogram: Counter[int] = field(default_factory=Counter)
    count: int = 0
    total: int = 0

    def add(self, tokens: int) -> None:
        self.histogram[tokens] += 1
        self.count += 1
        self.total += tokens

    @property
    def min(self) -> int:
        return min(self.histogram) if self.histogram else 0

    @property
    def max(self) -> int:
        return max(self.histogram) if self.histogram else 0

    @property
    def median(self) -> float:
        """The middle count (the mean of the two middle ones for an even number)."""
        if not self.count:
            return 0
        middle = [(self.count - 1) // 2, self.count // 2]
        found: list[int] = []
        seen = 0
        for value in sorted(self.histogram):
            seen += self.histogram[value]
            while middle and middle[0] < seen:
                found.append(value)
                middle.pop(0)
            if not middle:
                break
        return (found[0] + found[1]) / 2

    def to_json(self) -> dict[str, Any]:
        median = self.median
        return {
            "total": self.total,
            "min": self.min,
            "median": int(median) if float(median).is_integer() else median,
            "max": self.max,
        }


@dataclass(frozen=True)
class OverContext:
    """A record that cannot fit: its line, and by how much it is over."""

    line: int
    custom_id: str | None
    input_tokens: int
    output_tokens: int
    limit: int
    assumed: bool = False
    """The output bound is the assumed one (the record sets no ``max_tokens``)."""
    unit: int | None = None
    """Embed: the 0-based unit over its limit (with ``truncate: NONE``)."""

    @property
    def excess(self) -> int:
        return self.input_tokens + self.output_tokens - self.limit

    def message(self, model: str) -> str:
        if self.unit is not None:
            return (
                f"text {self.unit + 1} has {self.input_tokens:,} tokens, over the limit of {self.limit:,} "
                f"of {model} by {self.excess:,}; with truncate NONE the API fails the record"
            )
        bound = "assumed: no max_tokens" if self.assumed else "its max_tokens"
        return (
            f"{self.input_tokens:,} input tokens + {self.output_tokens:,} output tokens ({bound}) "
            f"exceed the context length of {model}, {self.limit:,} tokens, by {self.excess:,}"
        )

    def to_json(self, model: str) -> dict[str, Any]:
        return {
            "line": self.line,
            "custom_id": self.custom_id,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "limit": self.limit,
            "message": self.message(model),
        }


@dataclass
class Estimate:
    """What one pass over a file counted."""

    path: Path
    model: str
    kind: str
    dataset_type: str
    context_length: int | None
    assumed_output: int
    tokenizer: str = ""
    records: int = 0
    counted: int = 0
    """Records tokenized: all of them, or in a guard's cheap pass only those the bytes did not settle."""
    input: TokenStats = field(default_factory=TokenStats)
    """Chat: input tokens per record. Embed: tokens per text (each unit that holds text)."""
    input_tokens: int = 0
    """What the API bills as input for the text: chat the sum, embed each unit cut to its limit."""
    output_bound: int = 0
    without_max_tokens: int = 0
    images: int = 0
    truncated: int = 0
    """Embed: texts over their limit that the API cuts to fit (truncate is not NONE)."""
    over: list[OverContext] = field(default_factory=list)
    over_count: int = 0
    unreadable: list[tuple[int, str]] = field(default_factory=list)
    unreadable_count: int = 0

    def charge(self) -> Charge:
        return Charge(self.path.name, self.input_tokens, self.output_bound)

    def problem_lines(self) -> Iterator[str]:
        """Each record that cannot fit and each line not counted, as ``path:LINE: message``."""
        for line, message in self.unreadable:
            yield f"{self.path}:{line}: not counted: {message}"
        for over in self.over:
            yield f"{self.path}:{over.line}: {over.message(self.model)}"
        hidden = self.over_count - len(self.over) + self.unreadable_count - len(self.unreadable)
        if hidden > 0:
            yield f"... and {hidden:,} more"

    def to_json(self, prices: Prices | None) -> dict[str, Any]:
        """The estimate as ``--json`` prints it; the views read the same dictionary."""
        out: dict[str, Any] = {
            "file": str(self.path),
            "model": self.model,
            "dataset_type": self.dataset_type,
            "context_length": self.context_length,
            "tokenizer": self.tokenizer,
            "records": self.records,
            "input_tokens": {**self.input.to_json(), "total": self.input_tokens},
        }
        if self.kind == EMBED:
            out["texts"] = self.input.count
            out["input_tokens"]["uncut"] = self.input.total
            out["truncated_texts"] = self.truncated
        else:
            out["output_tokens_bound"] = self.output_bound
            out["records_without_max_tokens"] = self.without_max_tokens
            out["assumed_max_tokens"] = self.assumed_output
        out["images"] = self.images
        out["over_context"] = {
            "count": self.over_count,
            "records": [o.to_json(self.model) for o in self.over],
        }
        out["unreadable_lines"] = self.unreadable_count
        out["cost"] = cost_json(prices, self.input_tokens, self.output_bound)
        out["counts"] = TEMPLATE_NOTE
        return out


def cost_json(prices: Prices | None, input_tokens: int, output_bound: int) -> dict[str, Any] | None:
    """The cost bound in exact decimal strings, or None when the model has no prices."""
    if prices is None:
        return None
    into, out = prices.cost(input_tokens, 0), prices.cost(0, output_bound)
    return {
        "input": str(into.normalize()),
        "output_bound": str(out.normalize()),
        "total_bound": str((into + out).normalize()),
        "shown": money(into + out),
        "prices_per_million": {"input": str(prices.input), "output": str(prices.output)},
        "prices_from": prices.source,
    }


# --------------------------------------------------------------------------- the pass


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, raw line)`` of every non-blank line, the first without its byte order mark."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the with below, once the generator ends
    except IsADirectoryError:
        raise InputFileError(f"{path} is a directory, not a JSONL file") from None
    except FileNotFoundError:
        raise InputFileError(f"{path} does not exist") from None
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    with fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if raw.strip():
                yield number, raw


def sniff_type(path: Path) -> str:
    """The dataset type the first records tell (as ``datasets validate`` infers it)."""
    for number, raw in _lines(path):
        try:
            found = infer_type(json.loads(raw))
        except ValueError:
            found = None
        if found is not None:
            return found
        if number >= SNIFF_LINES:
            break
    raise UsageError(
        f"cannot tell the dataset type of {path} from its records; "
        "pass --type batch-chat-v2-input or batch-embed-v2-input"
    )


@dataclass
class _Pending:
    """A record read and waiting for its chunk to be counted: its texts start at ``start``."""

    line: int
    custom_id: str | None
    texts: RecordTexts
    start: int


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not valid UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} at column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    return f"invalid JSON: {exc}"


class _Ahead:
    """The library's work on one chunk, on a daemon thread, while the caller reads the next.

    ``learn`` releases the GIL, so reading and splitting chunk *k+1* overlaps counting
    chunk *k*. A daemon thread, and a wait that wakes often, keep Ctrl-C instant.
    """

    def __init__(
        self, tokenizer: TextTokenizer, batch: TokenBatch, records: list[_Pending], read: int
    ) -> None:
        self.batch, self.records, self.read = batch, records, read
        self._result: Learned | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(tokenizer,), name="cbatch-count", daemon=True
        )
        self._thread.start()

    def _run(self, tokenizer: TextTokenizer) -> None:
        try:
            self._result = tokenizer.learn(self.batch)
        except BaseException as exc:  # handed to the waiting thread
            self._error = exc

    def wait(self) -> Learned:
        while self._thread.is_alive():
            self._thread.join(0.2)
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def count_file(
    path: Path,
    *,
    model: str,
    dataset_type: str,
    tokenizer: TextTokenizer,
    context_length: int | None,
    assumed_output: int,
    only: set[int] | None = None,
    progress: ProgressSink | None = None,
) -> Estimate:
    """Count every record of ``path`` (or only the lines in ``only``) with ``tokenizer``."""
    kind = kind_of(dataset_type)
    estimate = Estimate(
        path, model, kind, dataset_type, context_length, assumed_output, tokenizer=tokenizer.source
    )
    records: list[_Pending] = []
    texts: list[str] = []
    size = read = 0
    ahead: _Ahead | None = None

    def finish() -> None:
        nonlocal ahead
        if ahead is None:
            return
        counts = tokenizer.finish(ahead.batch, ahead.wait())
        for item in ahead.records:
            _finish(estimate, item, counts[item.start : item.start + len(item.texts.texts)])
        if progress is not None:
            progress.advance(bytes=ahead.read)
        ahead = None

    def flush() -> None:
        nonlocal read, size, records, texts, ahead
        if tokenizer.full:
            finish()  # the word memory is emptied next: nothing may be in flight
        batch = tokenizer.prepare(texts, after=ahead.batch if ahead is not None else None)
        started = _Ahead(tokenizer, batch, records, read)
        finish()
        ahead = started
        records, texts, size, read = [], [], 0, 0

    try:
        if progress is not None:
            progress.start(total_bytes=path.stat().st_size)
        for number, raw in _lines(path):
            estimate.records += 1
            read += len(raw)
            if only is not None and number not in only:
                continue
            try:
                record = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                _unreadable(estimate, number, _json_problem(exc))
                continue
            body = record.get("body") if isinstance(record, dict) else None
            if not isinstance(body, dict):
                _unreadable(estimate, number, "no request body")
                continue
            custom_id = record.get("custom_id")
            found = record_texts(body, kind)
            records.append(
                _Pending(
                    number, custom_id if isinstance(custom_id, str) else None, found, len(texts)
                )
            )
            texts.extend(found.texts)
            size += len(raw)
            if len(texts) >= CHUNK_TEXTS or size >= CHUNK_BYTES:
                flush()
        if records:
            flush()
        finish()
    finally:
        if progress is not None:
            progress.finish()
    return estimate


def _unreadable(estimate: Estimate, line: int, message: str) -> None:
    estimate.unreadable_count += 1
    if len(estimate.unreadable) < MAX_PROBLEMS:
        estimate.unreadable.append((line, message))


def _over(estimate: Estimate, over: OverContext) -> None:
    estimate.over_count += 1
    if len(estimate.over) < MAX_PROBLEMS:
        estimate.over.append(over)


def _finish(estimate: Estimate, item: _Pending, counts: list[int]) -> None:
    """Add one record's counts to the estimate: the counting rule of :mod:`..tokens.rule`."""
    found = item.texts
    estimate.counted += 1
    estimate.images += found.images
    context = estimate.context_length
    if estimate.kind == EMBED:
        limit = embed_limit(found, context) if context else None
        for index, (held, tokens) in enumerate(
            zip(found.units, unit_tokens(found, counts), strict=True)
        ):
            if not held:
                continue  # an image: no text to count
            estimate.input.add(tokens)
            if limit is None or tokens <= limit:
                estimate.input_tokens += tokens
                continue
            estimate.input_tokens += limit
            if found.truncate_none:
                _over(
                    estimate, OverContext(item.line, item.custom_id, tokens, 0, limit, unit=index)
                )
            else:
                estimate.truncated += 1
        return
    tokens = sum(counts)
    output = found.max_tokens or estimate.assumed_output
    estimate.input.add(tokens)
    estimate.input_tokens += tokens
    estimate.output_bound += output
    estimate.without_max_tokens += not found.max_tokens
    if context and tokens + output > context:
        _over(
            estimate,
            OverContext(
                item.line, item.custom_id, tokens, output, context, assumed=not found.max_tokens
            ),
        )


# --------------------------------------------------------------------------- the model and its tokenizer


def model_of(client: CohereClient, name: str) -> Model:
    """The model's description, with a hint naming the likely mistake when there is none."""
    from ..api.errors import NotFoundError

    try:
        return client.get_model(name)
    except NotFoundError as exc:
        exc.hint = (
            f"check the model name {name!r}; with --tokenizer FILE estimate counts without it"
        )
        raise


def tokenizer_for(
    model: Model | None, options: CountOptions, reporter: Reporter, what: str
) -> TextTokenizer:
    """The model's tokenizer: ``--tokenizer FILE``, the cache, or a download without the key."""
    from ..tokens.source import obtain

    return obtain(
        model.tokenizer_url if model is not None else None,
        file=options.tokenizer_file,
        settings=options.fetch,
        what=what,
        note=reporter.debug,
    )


def estimate_file(
    client: CohereClient,
    path: Path,
    *,
    model_name: str,
    dataset_type: str | None,
    options: CountOptions,
    reporter: Reporter,
    what: str = "cbatch estimate",
) -> Estimate:
    """``cbatch estimate``: describe the model, get its tokenizer, count the whole file.

    ``what`` names the caller in a message about a missing extra.
    """
    from ..api.errors import NotFoundError

    kind_type = dataset_type or sniff_type(path)
    model: Model | None
    try:
        model = model_of(client, model_name)
    except NotFoundError as exc:
        if options.tokenizer_file is None:
            raise
        reporter.warn(
            f"{exc}: counting with {options.tokenizer_file}, without a context length to check"
        )
        model = None
    tokenizer = tokenizer_for(model, options, reporter, what)
    return count_file(
        path,
        model=model_name,
        dataset_type=kind_type,
        tokenizer=tokenizer,
        context_length=model.context_length if model is not None else None,
        assumed_output=options.assumed_output,
        progress=reporter.progress(f"counting tokens in {path.name}"),
    )


# --------------------------------------------------------------------------- the guard of create --file


@dataclass(frozen=True)
class GuardOptions:
    """``create --file``'s checks: the context check (on unless turned off) and how strict it is."""

    count: CountOptions = field(default_factory=CountOptions)
    check_context: bool = True
    strict: bool = False


def guard_upload(
    client: CohereClient,
    report: FileReport,
    *,
    model_name: str,
    options: GuardOptions,
    budget: Budget | None,
    reporter: Reporter,
) -> None:
    """Refuse, before the upload, a file with a record that cannot fit or a batch over budget.

    Raises :class:`InputRejected` (exit 5) after reporting each record as
    ``path:LINE: message``. When the context check cannot be done (no tokenizer, the
    API lists no such model) it says so once and lets the upload go on, unless
    ``options.strict``; a budget that cannot be judged is always an error.
    """
    from ..api.errors import NotFoundError

    path, shown = report.path, report.shown  # stdin is read from its copy, named as stdin
    dataset_type = report.dataset_type or "batch-chat-v2-input"
    if budget is None:  # the context alone: records bounded by their bytes, the rest counted
        room = context_room(client, model_name, options, reporter)
        if room is not None:
            only = undecided_lines(path, kind_of(dataset_type), room.context, room.assumed_output)
            judge_context(room, path, shown, dataset_type, only, options, reporter)
        return
    model: Model | None = None
    try:
        model = client.get_model(model_name)
    except NotFoundError as exc:
        if options.check_context:
            _skipped(options, reporter, f"the API lists no model {model_name!r}", exc)
    context = model.context_length if model is not None and options.check_context else None
    if options.check_context and model is not None and context is None:
        _skipped(options, reporter, f"the API gives no context length for {model_name}", None)
    if model is None and options.count.tokenizer_file is None:
        raise UsageError(
            f"--max-cost and --max-input-tokens count with the model's tokenizer, and the API lists "
            f"no model {model_name!r}: pass --tokenizer FILE"
        )
    _judge_budget(path, model, model_name, dataset_type, context, options, budget, reporter, shown)


@dataclass(frozen=True)
class Room:
    """The model's context, for a context check that reads each record as another pass reads it.

    ``model`` is the API's model (for its tokenizer). A split checks every
    record against it by its bytes as it reads them
    (:func:`~cohere_batch_cli.tokens.rule.line_bound`), and only the records
    whose bytes cannot prove they fit are counted afterwards
    (:func:`judge_context`): a file whose records all fit by their size is
    not read again, and one that holds others is read again for those alone.
    """

    model: Model | None
    model_name: str
    context: int
    assumed_output: int


def context_room(
    client: CohereClient, model_name: str, options: GuardOptions, reporter: Reporter
) -> Room | None:
    """The room a context check (no budget) works with; None when it is off or cannot be done.

    A check that cannot be done is said once (or refused, when strict), as
    :func:`guard_upload` says it.
    """
    from ..api.errors import NotFoundError

    if not options.check_context:
        return None
    try:
        model = client.get_model(model_name)
    except NotFoundError as exc:
        _skipped(options, reporter, f"the API lists no model {model_name!r}", exc)
        return None
    if model.context_length is None:
        _skipped(options, reporter, f"the API gives no context length for {model_name}", None)
        return None
    return Room(model, model_name, model.context_length, options.count.assumed_output)


def judge_context(
    room: Room,
    path: Path,
    shown: Path,
    dataset_type: str,
    only: set[int],
    options: GuardOptions,
    reporter: Reporter,
) -> None:
    """Count the records in ``only`` (lines whose bytes do not prove they fit) and refuse any over the context.

    Raises :class:`InputRejected` (exit 5) after each record as
    ``path:LINE: message``; says what it cleared otherwise. A model the API
    lists for other endpoints than the records' kind (an embed model given chat
    requests) is refused first (exit 2): every record would fail, or be counted
    against a context that is not the one that applies.
    """
    model_name, context = room.model_name, room.context
    served = room.model.endpoints if room.model is not None else []
    wanted = kind_of(dataset_type)
    if served and wanted not in served:
        raise UsageError(
            f"model {model_name} serves {', '.join(served)}, not {wanted}, and {shown} holds "
            f"{dataset_type} records: give {'an' if wanted == 'embed' else 'a'} {wanted} model"
        )
    if not only:
        reporter.info(
            f"{shown}: every record fits the context of {model_name} ({context:,} tokens), by its size"
        )
        return
    try:
        tokenizer = tokenizer_for(room.model, options.count, reporter, "the context check")
    except (MissingExtra, TokenizerError) as exc:
        records = "record is" if len(only) == 1 else "records are"
        _skipped(
            options, reporter, f"{len(only):,} {records} too long to clear by size, and {exc}", exc
        )
        return
    estimate = count_file(
        path,
        model=model_name,
        dataset_type=dataset_type,
        tokenizer=tokenizer,
        context_length=context,
        assumed_output=room.assumed_output,
        only=only,
        progress=reporter.progress(f"counting tokens in {shown.name}"),
    )
    estimate.path = shown
    _refuse_over(estimate, reporter)
    counted = "record" if estimate.counted == 1 else "records"
    reporter.info(
        f"{shown}: every record fits the context of {model_name} ({context:,} tokens); "
        f"{estimate.counted:,} {counted} counted with its tokenizer"
    )


def undecided_lines(path: Path, kind: str, context: int, assumed_output: int) -> set[int]:
    """The lines whose bytes do not prove they fit: the only ones worth a tokenizer.

    Read in blocks of half the room a record has (the context less the output bound):
    a block of whole lines, with the end of the line before it, is then no longer than
    the room, and is cleared at once (:func:`~cohere_batch_cli.tokens.rule.block_fits`);
    only a block that is not is looked at line by line. Lines are numbered (as
    ``_lines`` numbers them) only when some are found, by counting the line ends before
    each such block: a file that fits costs a few scans of each block and nothing more.
    """
    size = max(64 * 1024, min(CHUNK_BYTES, (context - assumed_output) // 2))
    offset = 0  # bytes of whole lines before the block
    pending = bytearray()
    found: list[tuple[int, list[int]]] = []  # (offset of a block, 1-based lines within it)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    with fh:
        while data := fh.read(size):
            cut = data.rfind(b"\n") + 1
            if not cut:  # one line longer than a block: gather it
                pending += data
                continue
            body = bytes(pending) + data[:cut] if pending else data[:cut]
            pending = bytearray(data[cut:])
            if not block_fits(body, kind, context, assumed_output):
                lines = _undecided(body.split(b"\n")[:-1], kind, context, assumed_output)
                if lines:
                    found.append((offset, lines))
            offset += len(body)
    if pending:
        lines = _undecided([bytes(pending)], kind, context, assumed_output)
        if lines:
            found.append((offset, lines))
    return _numbered(path, found)


def _undecided(lines: list[bytes], kind: str, context: int, assumed_output: int) -> list[int]:
    return [
        number
        for number, raw in enumerate(lines, start=1)
        if raw.strip()
        and (
            not (bound := line_bound(raw, kind, context, assumed_output)).fits or not bound.decided
        )
    ]


def _numbered(path: Path, found: list[tuple[int, list[int]]]) -> set[int]:
    """File line numbers from (block offset, lines within the block), counting line ends once."""
    numbers: set[int] = set()
    if not found:
        return numbers
    with open(path, "rb") as fh:
        seen = 0  # line ends before ``at``
        at = 0
        for offset, lines in found:
            while at < offset:
                chunk = fh.read(min(CHUNK_BYTES, offset - at))
                seen += chunk.count(b"\n")
                at += len(chunk)
            numbers.update(seen + line for line in lines)
    return numbers


def _judge_budget(
    path: Path,
    model: Model | None,
    model_name: str,
    dataset_type: str,
    context: int | None,
    options: GuardOptions,
    budget: Budget,
    reporter: Reporter,
    shown: Path,
) -> None:
    """Count every record (a budget is judged on tokens, not bytes), check the context, charge."""
    tokenizer = tokenizer_for(model, options.count, reporter, "--max-cost and --max-input-tokens")
    estimate = count_file(
        path,
        model=model_name,
        dataset_type=dataset_type,
        tokenizer=tokenizer,
        context_length=context,
        assumed_output=options.count.assumed_output,
        progress=reporter.progress(f"counting tokens in {shown.name}"),
    )
    estimate.path = shown
    _refuse_over(estimate, reporter)
    why = budget.refusal(estimate.charge())
    if why is not None:
        raise InputRejected(f"{why}; nothing was uploaded")
    budget.charge(estimate.charge())
    cost = budget.cost_of(estimate.charge())
    bound = f", at most {money(cost)}" if cost is not None else ""
    reporter.info(
        f"{shown}: {estimate.input_tokens:,} input tokens and at most {estimate.output_bound:,} output tokens"
        f"{bound}: within the budget"
    )


def _refuse_over(estimate: Estimate, reporter: Reporter) -> None:
    if not estimate.over_count:
        return
    for line in estimate.problem_lines():
        reporter.info(line)
    records = "record" if estimate.over_count == 1 else "records"
    raise InputRejected(
        f"{estimate.path} has {estimate.over_count:,} {records} that cannot fit the context of "
        f"{estimate.model} ({estimate.context_length:,} tokens); nothing was uploaded"
    )


def _skipped(
    options: GuardOptions, reporter: Reporter, reason: str, cause: Exception | None
) -> None:
    """Say once that the context check was skipped, or, when strict, stop with its cause."""
    if options.strict:
        if cause is not None:
            if getattr(cause, "hint", None) is None:
                cause.hint = "without --strict-context the check is skipped and the batch created"  # type: ignore[attr-defined]
            raise cause
        raise InputRejected(f"the context check could not be done: {reason}; nothing was uploaded")
    instead = reporter.spell(
        " (--strict-context refuses instead)", ""
    )  # a program has no strict check
    reporter.warn(f"the context check was skipped: {reason}; going on{instead}")


# --------------------------------------------------------------------------- afterwards


@dataclass(frozen=True)
class Comparison:
    """The count beside what the batch reports: how close a local count comes to the bill."""

    batch_id: str
    estimated: int
    reported: int
    reported_output: int | None
    records: int
    succeeded: int
    failed: int

    @property
    def difference(self) -> int:
        return self.reported - self.estimated

    @property
    def like_for_like(self) -> bool:
        """Every record succeeded: failed and missing records bill nothing, yet were counted."""
        return self.succeeded == self.records

    def per_record(self) -> float:
        return self.difference / self.succeeded if self.succeeded else 0.0

    def sentence(self) -> str:
        head = f"batch {self.batch_id} reports {self.reported:,} input tokens for "
        if self.like_for_like:
            return (
                f"{head}{self.succeeded:,} records; their text counts {self.estimated:,}: "
                f"{self.difference:+,} ({self.per_record():+,.1f} a record), the template tokens the API adds"
            )
        left = self.records - self.succeeded
        if self.difference < 0:
            versus = f"{-self.difference:,} more than the batch reports"
        elif self.difference > 0:
            versus = f"{self.difference:,} fewer than the batch reports"
        else:
            versus = "as many as the batch reports"
        return (
            f"{head}{self.succeeded:,} of {self.records:,} records; the text of all {self.records:,} counts "
            f"{self.estimated:,}, {versus}; the {counted(left, 'failed or missing record')} "
            f"{'bills' if left == 1 else 'bill'} nothing, so this is not like for like"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.batch_id,
            "input_tokens": self.reported,
            "output_tokens": self.reported_output,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "difference": self.difference,
            "difference_per_record": round(self.per_record(), 2),
            "like_for_like": self.like_for_like,
        }


def compare(estimate: Estimate, batch: Batch) -> Comparison | None:
    """The comparison with a batch that reports its input tokens (None while it reports none)."""
    if batch.input_tokens is None:
        return None
    return Comparison(
        batch_id=batch.id,
        estimated=estimate.input_tokens,
        reported=batch.input_tokens,
        reported_output=batch.output_tokens,
        records=estimate.counted,
        succeeded=batch.num_successful_records,
        failed=batch.num_failed_records,
    )


def compare_join(
    client: CohereClient,
    batch: Batch,
    path: Path,
    reporter: Reporter,
    *,
    options: CountOptions,
) -> Comparison | None:
    """``results --join``: count the input file and say how it compares with the batch's tokens.

    Never fails the download it follows: a comparison that cannot be made says why in one line.
    """
    from ..api.errors import CohereAPIError
    from ..errors import CbatchError

    if batch.input_tokens is None or not batch.model:
        return None
    try:
        estimate = estimate_file(
            client,
            path,
            model_name=batch.model,
            dataset_type=None,
            options=options,
            reporter=reporter,
            what="comparing the tokens with the batch's",
        )
    except (CbatchError, CohereAPIError) as exc:
        reporter.info(f"no token comparison: {exc}")
        return None
    comparison = compare(estimate, batch)
    if comparison is not None:
        reporter.info(comparison.sentence())
    return comparison
