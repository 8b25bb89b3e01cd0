"""Fetching output parts from their pre-signed links, several at once, each to a file.

Every part is fetched with an *unauthenticated* client (the key must never
reach a storage host) and streamed to a file as it arrives: a part is never
held in memory. A dropped connection, a 408/429/5xx, a truncated body or a
stall (no byte for ``stall_timeout`` seconds) is retried under
:meth:`RetryPolicy.for_parts <cohere_batch_cli.api.retry.RetryPolicy.for_parts>`,
honouring a ``Retry-After`` the storage sends, and resuming with a ``Range``
request when the server allows it.

Links expire (an hour, on the real service), and a large output can take
longer than that to download. When storage refuses a link as a signed-URL
store does (400 or 403 with an XML body, or any 400/401/403 once the link's
own signed expiry has passed), the part asks :class:`Links` for a fresh one:
the dataset is read from the API again (a callback the caller passes in,
since the caller owns the API client), once for every part waiting on it,
and the part resumes with ``Range`` from the byte it had reached. Parts
already fetched are not fetched again. Each refused link is renewed at most
once: a fresh link refused before it delivered a byte is final.

Messages name a part's index and name and the storage host, never a link:
a link is a credential for as long as it lives.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from ..api.retry import RetryPolicy, server_requested_wait
from ..errors import LocalWriteError, ResultsError

if TYPE_CHECKING:
    from .._httpx import httpx
    from ..api.models import DatasetPart
    from ..output.progress import ProgressSink

DEFAULT_STALL_TIMEOUT = 60.0
"""Seconds without a byte after which a part download counts as failed and is retried."""

_JOIN_THREAD_SECONDS = 1.0  # Ctrl-C must feel instant; a thread stuck longer dies with the process
_REFUSAL_BODY_BYTES = 8192  # enough of a refusal's body to see it is the store's XML

RefreshLinks = Callable[[], "Sequence[DatasetPart]"]
"""Reads the dataset from the API again: its parts, with fresh links."""
RenewLink = Callable[[str], "str | None"]
"""Given a refused link, a fresh one for the same part (None: no way to get one)."""


def ordered_parts(parts: Sequence[DatasetPart]) -> list[DatasetPart]:
    """Parts in ``index`` order (stable for equal indexes), each with a link, or an error now."""
    ordered = sorted(parts, key=lambda p: p.index)
    for position, part in enumerate(ordered):
        if not part.url:
            raise ResultsError(
                f"part {part_label(part, position)} has no download link; "
                "the output dataset may not be ready yet, try again in a moment"
            )
    return ordered


def part_label(part: DatasetPart, position: int) -> str:
    """How a message names a part: its index, and its name when it has one (never its link)."""
    index = part.index if part.raw.get("index") is not None else position
    return f"{index} ({part.name})" if part.name else str(index)


def total_bytes(parts: Sequence[DatasetPart]) -> int | None:
    """The size of every part together, or None when one of them does not say."""
    sizes = [p.size_bytes for p in parts]
    return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)


def _storage_host(url: str) -> str:
    """Where a link points, for a message: its host alone, never the link."""
    return urlsplit(url).netloc or "storage"


def link_expired(url: str, now: float | None = None) -> bool | None:
    """Whether a signed link's own expiry has passed; None when the link does not say.

    Reads the two signed-URL shapes stores use: a signing date and a lifetime
    (``X-Goog-Date`` + ``X-Goog-Expires``, ``X-Amz-Date`` + ``X-Amz-Expires``),
    or an absolute ``Expires`` in Unix seconds.
    """
    query = {k.lower(): v[0] for k, v in parse_qs(urlsplit(url).query).items() if v}
    now = time.time() if now is None else now
    for vendor in ("x-goog", "x-amz"):
        date, lifetime = query.get(f"{vendor}-date"), query.get(f"{vendor}-expires")
        if date and lifetime:
            try:
                signed = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
                return now >= signed.timestamp() + int(lifetime)
            except ValueError:
                return None
    expires = query.get("expires")
    if expires and expires.isdigit():
        return now >= int(expires)
    return None


def _part_key(part: DatasetPart, position: int) -> str:
    """What names a part in a fresh read of its dataset: its id, else its name, else its index."""
    return (
        part.id or part.name or f"#{part.index if part.raw.get('index') is not None else position}"
    )


class Links:
    """Each part's current link; all of them renewed at once when storage refuses one.

    One read of the dataset gives every part a fresh link, so a part whose
    link is refused after another part renewed them takes the fresh one
    without asking the API again. Finished parts keep their files: only
    links change. Thread-safe: download threads share one.
    """

    def __init__(self, parts: Sequence[DatasetPart], refresh: RefreshLinks | None = None) -> None:
        self._labels = [part_label(p, i) for i, p in enumerate(parts)]
        self._keys = [_part_key(p, i) for i, p in enumerate(parts)]
        self._urls = [str(p.url) for p in parts]
        self._refresh = refresh
        self._lock = threading.Lock()
        self.refreshes = 0
        """How many times the dataset was read again."""

    @property
    def renewable(self) -> bool:
        """Whether refused links can be renewed (a refresh callback was given)."""
        return self._refresh is not None

    def url(self, position: int) -> str:
        """The part's link as last handed out (no lock: a part starting during a renewal need not wait)."""
        return self._urls[position]

    def renew(self, position: int, refused: str) -> str | None:
        """A fresh link for the part at ``position`` whose link ``refused`` was refused.

        None when there is no way to get one (no refresh callback). The
        callback's own errors (the dataset is gone, the API is down) are the
        caller's to word, and pass through.
        """
        with self._lock:
            if self._urls[position] != refused:
                return self._urls[position]  # another part renewed them already
            if self._refresh is None:
                return None
            fresh = ordered_parts(self._refresh())
            self.refreshes += 1
            by_key = {_part_key(p, i): p for i, p in enumerate(fresh)}
            for i, key in enumerate(self._keys):
                part = by_key.get(key)
                if part is None:
                    raise ResultsError(
                        f"the output dataset changed during the download: part {self._labels[i]} "
                        "is no longer in it; run the command again"
                    )
                self._urls[i] = str(part.url)
            return self._urls[position]


class Fetcher:
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
        refresh: RefreshLinks | None = None,
    ) -> None:
        self.parts = parts
        self.links = Links(parts, refresh)
        self.futures: list[Future[Path]] = [Future() for _ in parts]
        self.workdir = workdir
        """The hidden folder the parts are fetched into (removed by the caller)."""
        self._http = http
        self._stall_timeout = stall_timeout
        self._sink = sink
        self._policy = RetryPolicy.for_parts()
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
            except BaseException as exc:  # handed to the waiting thread
                future.set_exception(exc)

    def _fetch(self, position: int) -> Path:
        part = self.parts[position]
        target = self.workdir / f"part-{position:05d}.avro"
        download_part(
            self._http,
            self.links.url(position),
            target,
            label=part_label(part, position),
            stall_timeout=self._stall_timeout,
            policy=self._policy,
            on_bytes=lambda n: self._sink.advance(bytes=n),
            cancel=self._cancel,
            renew=(lambda refused: self.links.renew(position, refused))
            if self.links.renewable
            else None,
        )
        return target


def download_part(
    http: httpx.Client,
    url: str,
    target: Path,
    *,
    label: str = "",
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    policy: RetryPolicy | None = None,
    on_bytes: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
    renew: RenewLink | None = None,
) -> None:
    """Stream one link to ``target``, retrying drops, 408/429/5xx, truncation and stalls.

    A retry after some bytes arrived asks for the rest with ``Range`` (and
    ``If-Range`` when the server gave an ETag); a server that answers 200
    instead restarts the file from zero. ``policy`` (by default
    :meth:`RetryPolicy.for_parts`) decides how often and how long to wait; its
    ``max_total`` counts only the waiting, since one attempt at a large part
    may rightly take minutes.

    A link the store refuses (see the module docstring) is handed to
    ``renew`` for a fresh one, and the part goes on from where it stopped,
    at once and without counting as a retry. A fresh link refused before it
    delivered a byte is final, as is any refusal without ``renew``.
    """
    from .._httpx import httpx

    policy = policy if policy is not None else RetryPolicy.for_parts()
    state = _PartState()
    waited = 0.0
    attempt = 0
    renewed_at: int | None = None  # bytes delivered when the link in use was handed out fresh
    while True:
        attempt += 1
        if cancel is not None and cancel.is_set():
            raise ResultsError(f"download of part {label} was cancelled")
        requested: float | None = None
        try:
            _attempt(http, url, target, state, stall_timeout, policy, on_bytes, cancel)
            return
        except _LinkRefused as exc:
            proven = renewed_at is None or state.delivered > renewed_at
            fresh = renew(url) if renew is not None and proven else None
            if fresh is None:
                again = "" if proven else ", and so was the fresh link the API gave for it"
                hint = (
                    ""
                    if renew is not None
                    else "; it may have expired: run the command again for fresh links"
                )
                raise ResultsError(
                    f"part {label} could not be downloaded from {_storage_host(url)}: "
                    f"the storage refused its link ({exc}){again}{hint}"
                ) from None
            url, renewed_at = fresh, state.delivered
            attempt -= 1  # a renewed link is not a retry: no wait, nothing counted
            continue
        except _Refused as exc:
            raise ResultsError(
                f"part {label} could not be downloaded from {_storage_host(url)}: {exc}"
            ) from None
        except _Retryable as exc:
            last, requested = str(exc), exc.wait
        except httpx.TimeoutException:
            last = (
                f"no data for {stall_timeout:g} s"
                if state.got_headers
                else "the server did not answer"
            )
        except httpx.RequestError as exc:
            last = _transport_reason(exc)
        wait = policy.next_wait(attempt, waited, requested=requested)
        if wait is None:
            if requested is not None and attempt <= policy.retries:
                last += f", asking to wait {requested:g} s, longer than a download waits"
            break
        _sleep(wait, cancel)
        waited += wait
    tries = "1 attempt" if attempt == 1 else f"{attempt} attempts"
    raise ResultsError(
        f"part {label} could not be downloaded from {_storage_host(url)} after {tries}: {last}"
    )


@dataclass
class _PartState:
    """What a retry needs from the attempts before it."""

    received: int = 0
    etag: str | None = None
    got_headers: bool = False
    resumable: bool = True
    delivered: int = 0
    """Bytes received in all, over every attempt and link (``received`` restarts with a 200)."""


class _Retryable(Exception):
    """This attempt failed in a way another may not; ``wait`` is what the server asked for."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class _Refused(Exception):
    pass


class _LinkRefused(Exception):
    """The store refused the link itself (expired, or its signature no longer holds)."""


def _attempt(
    http: httpx.Client,
    url: str,
    target: Path,
    state: _PartState,
    stall_timeout: float,
    policy: RetryPolicy,
    on_bytes: Callable[[int], None] | None,
    cancel: threading.Event | None,
) -> None:
    """One GET; appends to ``target`` on a 206, rewrites it on a 200."""
    from .._httpx import httpx

    headers = {}
    if state.received and state.resumable:
        headers["Range"] = f"bytes={state.received}-"
        if state.etag:
            headers["If-Range"] = state.etag
    base = http.timeout
    timeout = httpx.Timeout(
        connect=base.connect, read=stall_timeout, write=base.write, pool=base.pool
    )
    state.got_headers = False
    with http.stream("GET", url, headers=headers, timeout=timeout) as response:
        state.got_headers = True
        status = response.status_code
        resume = status == 206 and state.received > 0 and _range_start(response) == state.received
        if policy.retryable(status):
            raise _Retryable(
                f"the server answered {status}", server_requested_wait(response.headers)
            )
        if status == 416 and state.received:
            state.received = 0
            raise _Retryable("the server refused to resume")
        if status in (400, 401, 403):
            head = _body_head(response)
            if _refuses_the_link(status, response.headers.get("content-type", ""), head, url):
                raise _LinkRefused(_store_code(status, head))
        if status not in (200, 206) or (status == 206 and not resume):
            raise _Refused(_refusal(status))
        if not resume:
            state.received = 0
            state.etag = response.headers.get("etag")
            # Offsets count decoded bytes; a compressed transfer cannot be resumed by them.
            state.resumable = response.headers.get("content-encoding", "identity") == "identity"
        try:
            fh = open(target, "ab" if resume else "wb")  # noqa: SIM115 - closed below, its errors translated
        except OSError as exc:
            raise _local_write_error(target, exc) from None
        try:
            for chunk in response.iter_bytes():  # as received: a drop loses nothing written
                if cancel is not None and cancel.is_set():
                    raise ResultsError("download cancelled")
                try:
                    fh.write(chunk)
                except OSError as exc:
                    raise _local_write_error(target, exc) from None
                state.received += len(chunk)
                state.delivered += len(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
        finally:
            try:
                fh.close()
            except OSError as exc:
                raise _local_write_error(target, exc) from None


def _local_write_error(target: Path, exc: OSError) -> LocalWriteError:
    """A part that cannot be stored is the local disk's failure (exit 11), never retried."""
    return LocalWriteError(
        f"cannot store a downloaded part in {target.parent}: {exc.strerror or exc}"
    )


def _range_start(response: httpx.Response) -> int | None:
    value = response.headers.get("content-range", "")
    try:
        return int(value.split(" ", 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return None


def _body_head(response: httpx.Response) -> bytes:
    """The first few KB of a refusal's body: enough to tell the store's XML, never a whole download."""
    head = b""
    for chunk in response.iter_bytes():
        head += chunk
        if len(head) >= _REFUSAL_BODY_BYTES:
            break
    return head[:_REFUSAL_BODY_BYTES]


def _refuses_the_link(status: int, content_type: str, head: bytes, url: str) -> bool:
    """A signed-URL store's refusal of the link: its XML error, or a link whose own expiry has passed."""
    xml = "xml" in content_type.lower() or head.lstrip().startswith(b"<")
    return (status in (400, 403) and xml) or bool(link_expired(url))


_CODE = re.compile(rb"<Code>\s*([A-Za-z0-9_.-]{1,60})\s*</Code>")


def _store_code(status: int, head: bytes) -> str:
    """``400 ExpiredToken``: the status and the store's own code, when its XML gives one."""
    match = _CODE.search(head)
    return f"{status} {match.group(1).decode('ascii')}" if match else str(status)


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


def _sleep(seconds: float, cancel: threading.Event | None) -> None:
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        raise ResultsError("download cancelled")
