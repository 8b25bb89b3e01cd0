"""Cohere's batch, dataset and model endpoints as typed calls.

:class:`CohereClient` holds the resource calls only: each builds its path and
body, sends it through :class:`~.transport.Transport` (retries, errors, the
shape check of every answer) and turns the JSON into :mod:`.models`. The
transport's names are re-exported here, so ``from cohere_batch_cli.api.client
import CohereClient, Timeouts, storage_client`` is all a caller needs.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import quote

from . import clock, errors
from .models import Batch, Dataset, Model, newest_first
from .retry import RetryPolicy
from .transport import (
    CLIENT_NAME,
    DEFAULT_BASE_URL,
    USER_AGENT,
    CountingReader,
    DebugSink,
    Timeouts,
    Transport,
    check_base_url,
    storage_client,
)

if TYPE_CHECKING:
    from ..config import Settings
    from ..fingerprint import Block

__all__ = [
    "CLIENT_NAME",
    "DEFAULT_BASE_URL",
    "MAX_LISTED",
    "MAX_PAGE_SIZE",
    "USER_AGENT",
    "CohereClient",
    "RetryPolicy",
    "Timeouts",
    "check_base_url",
    "path_segment",
    "storage_client",
]

MAX_PAGE_SIZE = 1000
DATASET_PAGE_SIZE = 100
"""Datasets asked for per request when listing them all."""
MAX_LISTED = 1_000_000
"""Batches or datasets one listing goes through at most: past it, the server is looping."""
_STALE_PAGES = 3
"""Dataset pages in a row with nothing new that mean the server ignores ``offset``."""
_LOOKUP_PAGES = 20
"""Pages the duplicate-create look-up reads at most: 50 + 19 x 1,000 batches."""


def path_segment(value: str) -> str:
    """An id made safe for one URL path segment: ``/``, ``..``, ``?``, ``#`` cannot escape it."""
    if value.strip(" .") == "":
        raise errors.InvalidRequestError(f"{value!r} is not a valid id")
    return quote(value, safe="")


class CohereClient:
    """A thin, typed client; one per process, closed with ``close()`` or ``with``."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        client_name: str = CLIENT_NAME,
        ca_bundle: str | None = None,
        debug: DebugSink | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._transport = Transport(
            api_key,
            base_url,
            timeouts=timeouts,
            retry=retry,
            client_name=client_name,
            ca_bundle=ca_bundle,
            debug=debug,
            sleep=sleep,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        ca_bundle: str | None = None,
        debug: DebugSink | None = None,
    ) -> CohereClient:
        """The client the settings describe: the one way the CLI and the Python API build one.

        ``timeout`` is each read's (None: the default), ``retries`` the
        attempts after the first (None: the default, or the environment's
        base). The key is checked (never shown) before anything is sent.
        """
        return cls(
            settings.require_api_key(),
            settings.base_url.value or "",
            timeouts=Timeouts(read=timeout) if timeout else Timeouts(),
            retry=RetryPolicy.from_env(retries),
            client_name=settings.client_name.value or CLIENT_NAME,
            ca_bundle=ca_bundle,
            debug=debug,
        )

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def retry(self) -> RetryPolicy:
        return self._transport.retry

    @property
    def timeouts(self) -> Timeouts:
        return self._transport.timeouts

    def with_retry(self, retry: RetryPolicy) -> CohereClient:
        """The same connection pool and key under another retry policy.

        A poller that handles transient errors itself (watch) wants each call
        to fail fast instead of sleeping inside the client for minutes.
        """
        clone = copy.copy(self)
        clone._transport = self._transport.with_retry(retry)
        return clone

    def __enter__(self) -> CohereClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    # -- batches -------------------------------------------------------------

    def get_batch(self, batch_id: str, *, timeout: float | None = None) -> Batch:
        data = self._transport.request(
            "GET", f"/v2/batches/{path_segment(batch_id)}", timeout=timeout
        )
        return Batch.from_api(_field(data, "batch", dict))

    def list_batches_page(
        self,
        *,
        page_size: int = 50,
        page_token: str | None = None,
        order_by: str | None = None,
        timeout: float | None = None,
    ) -> tuple[list[Batch], str | None]:
        """One page of batches and the token of the next (None on the last page)."""
        params: dict[str, Any] = {"page_size": max(1, min(MAX_PAGE_SIZE, page_size))}
        if page_token:
            params["page_token"] = page_token
        if order_by:
            params["order_by"] = order_by
        data = self._transport.request("GET", "/v2/batches", params=params, timeout=timeout)
        items = data.get("batches") or []
        if not isinstance(items, list) or not all(isinstance(b, dict) for b in items):
            raise errors.UnexpectedResponseError("the batch list is not a list of objects")
        token = data.get("next_page_token")
        return [Batch.from_api(b) for b in items], (
            token if isinstance(token, str) and token else None
        )

    def iter_batches(
        self,
        *,
        page_size: int = 100,
        order_by: str | None = None,
        limit: int | None = None,
        on_page: Callable[[list[Batch], str | None], None] | None = None,
        most: int = MAX_LISTED,
    ) -> Iterator[Batch]:
        """Every batch, newest first, fetching the next page only when it is needed.

        ``on_page`` sees each page as it arrives, with the token of the next:
        a listing that stops early can tell whether more exist without asking.

        A server that loops never makes an endless listing: a page token seen
        before, or a page of batches all listed already (the same page under a
        fresh token), is an error; a batch listed twice is shown once; past
        ``most`` batches the listing stops with an error.
        """
        token: str | None = None
        shown = 0
        tokens: set[str] = set()
        listed: set[str] = set()
        if limit is not None:
            page_size = min(page_size, max(1, limit))
        while True:
            batches, token = self.list_batches_page(
                page_size=page_size, page_token=token, order_by=order_by
            )
            if on_page is not None:
                on_page(batches, token)
            if token is not None:
                if token in tokens:  # a server that loops would otherwise list forever
                    raise errors.UnexpectedResponseError("the batch list repeated a page token")
                tokens.add(token)
            fresh = [b for b in batches if b.id not in listed]
            if batches and not fresh:
                raise errors.UnexpectedResponseError(
                    f"the batch list repeated a page under a new page token, after {shown:,} batches"
                )
            for batch in fresh:
                if batch.id in listed:  # twice on one page
                    continue
                if len(listed) >= most:
                    raise errors.UnexpectedResponseError(
                        f"the batch list goes on past {most:,} batches: stopped there"
                    )
                listed.add(batch.id)
                yield batch
                shown += 1
                if limit is not None and shown >= limit:
                    return
            if not token or not batches:
                return

    def create_batch(self, *, name: str, input_dataset_id: str, model: str) -> Batch:
        """Create a batch, never two.

        A POST whose fate is unknown (the connection dropped, a timeout, a 5xx)
        may have created the batch. Before posting again, the newest batches
        are searched for one with the same name, dataset and model created
        since the first attempt (timed by the server's own clock, from the
        ``Date`` of the list answer, so clock skew does not matter: the one
        rule of :mod:`.clock`); if found,
        it is the answer.
        """
        body = {"name": name, "input_dataset_id": input_dataset_id, "model": model}
        started = time.monotonic()

        def find_created() -> Batch | None:
            return self._find_recent_batch(body, time.monotonic() - started)

        data = self._transport.request(
            "POST", "/v2/batches", json=body, before_retry=find_created, may_create="batch"
        )
        if isinstance(data, Batch):
            return data
        try:
            return Batch.from_api(_field(data, "batch", dict))
        except errors.UnexpectedResponseError as exc:
            # A 2xx answer: the batch was created, only the answer is unreadable.
            exc.may_have_created = "batch"
            raise

    def _find_recent_batch(self, body: dict[str, str], elapsed: float) -> Batch | None:
        """The batch a lost create answer made, if the batch list shows one.

        The first page (50 batches) is enough when the list is newest first
        and reaches back past the first attempt. The API does not document the
        direction, so the order is checked on every page: when it is not
        newest first (oldest first, or no order), the new batch may be on any
        page, and pages are read on to the last one. A list too long to read
        within :data:`_LOOKUP_PAGES` pages cannot settle it, which is an error
        the transport reports as "the batch may have been created".
        """
        response_date: list[float] = []
        since: float | None = None
        token: str | None = None
        for page in range(_LOOKUP_PAGES):
            params: dict[str, Any] = {
                "page_size": 50 if page == 0 else MAX_PAGE_SIZE,
                "order_by": "created_at",
            }
            if token:
                params["page_token"] = token
            data = self._transport.request(
                "GET",
                "/v2/batches",
                params=params,
                on_response=lambda r: response_date.append(clock.server_moment(r)),
            )
            if since is None:
                server_now = response_date[0] if response_date else time.time()
                since = clock.not_before(server_now - elapsed, server=True)
            batches = [
                Batch.from_api(raw) for raw in data.get("batches") or [] if isinstance(raw, dict)
            ]
            for batch in batches:
                if batch.created_at is None:
                    continue
                same = (batch.name, batch.input_dataset_id, batch.model) == (
                    body["name"],
                    body["input_dataset_id"],
                    body["model"],
                )
                if same and batch.created_at.timestamp() >= since:
                    return batch
            next_token = data.get("next_page_token")
            if (
                not batches
                or not isinstance(next_token, str)
                or not next_token
                or next_token == token
            ):
                return None
            stamps = [b.created_at for b in batches]
            known = [s for s in stamps if s is not None]
            if newest_first(stamps) and known and known[-1].timestamp() < since:
                return None  # newest first, and already older than the first attempt
            token = next_token
        raise errors.UnexpectedResponseError(
            f"the batch list is not newest first and longer than {_LOOKUP_PAGES} pages: "
            "cannot tell whether the lost answer created the batch"
        )

    def cancel_batch(self, batch_id: str) -> None:
        self._transport.request("POST", f"/v2/batches/{path_segment(batch_id)}:cancel")

    # -- datasets ------------------------------------------------------------

    def upload_dataset(
        self,
        path: Path,
        *,
        name: str,
        dataset_type: str,
        keep_original_file: bool = False,
        skip_malformed_input: bool = False,
        keep_fields: list[str] | None = None,
        optional_fields: list[str] | None = None,
        on_bytes: Callable[[int], None] | None = None,
        blocks: Sequence[Block] | None = None,
    ) -> str:
        """Upload a file as a new dataset, streamed from disk; returns the dataset id.

        With the ``blocks`` its check recorded, only the bytes that check read are sent: each block
        is compared before it goes, and :class:`~cohere_batch_cli.fingerprint.Changed` abandons
        the request before its body is complete when the file was changed since.

        Retried only when the server surely did not take it (429, 503, refused
        connection): an upload whose fate is unknown is reported, not repeated.
        """
        params: list[tuple[str, str]] = [("name", name), ("type", dataset_type)]
        if keep_original_file:
            params.append(("keep_original_file", "true"))
        if skip_malformed_input:
            params.append(("skip_malformed_input", "true"))
        params += [("keep_fields", f) for f in keep_fields or []]
        params += [("optional_fields", f) for f in optional_fields or []]

        def files() -> dict[str, tuple[str, IO[bytes], str]]:
            # Duck-typed: httpx calls read() and the size probes, which pass through to the file.
            from ..fingerprint import CheckedReader

            opened: Any = path.open("rb") if blocks is None else CheckedReader(path, blocks)
            handle = cast("IO[bytes]", CountingReader(opened, on_bytes))
            return {"data": (path.name, handle, "application/octet-stream")}

        data = self._transport.request(
            "POST", "/v1/datasets", params=params, files=files, upload=True, may_create="dataset"
        )
        try:
            return str(_field(data, "id", str))
        except errors.UnexpectedResponseError as exc:
            exc.may_have_created = "dataset"
            raise

    def get_dataset(self, dataset_id: str, *, timeout: float | None = None) -> Dataset:
        data = self._transport.request(
            "GET", f"/v1/datasets/{path_segment(dataset_id)}", timeout=timeout
        )
        return Dataset.from_api(_field(data, "dataset", dict))

    def list_datasets(
        self,
        *,
        dataset_type: str | None = None,
        validation_status: str | None = None,
        before: str | None = None,
        after: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Dataset]:
        params = {
            "datasetType": dataset_type,
            "validationStatus": validation_status,
            "before": before,
            "after": after,
            "limit": limit,
            "offset": offset,
        }
        data = self._transport.request(
            "GET", "/v1/datasets", params={k: v for k, v in params.items() if v is not None}
        )
        items = data.get("datasets") or []
        if not isinstance(items, list):
            raise errors.UnexpectedResponseError("the dataset list is not a list")
        return [Dataset.from_api(d) for d in items if isinstance(d, dict)]

    def iter_datasets(
        self,
        *,
        dataset_type: str | None = None,
        validation_status: str | None = None,
        limit: int | None = None,
        page_size: int = DATASET_PAGE_SIZE,
        most: int = MAX_LISTED,
    ) -> Iterator[Dataset]:
        """Every dataset (at most ``limit``), fetched a page at a time with ``limit``/``offset``.

        The API documents no page size of its own, so a page shorter than
        asked may be its cap rather than the end: the listing goes on until an
        empty page, or a page shorter than one already seen (the end, then).

        The list is newest first, so a dataset another client creates while it
        is paged shifts every later page: a page may repeat datasets already
        listed, even only those. That is normal: they are skipped, by id, and
        the listing goes on. A server that ignores ``offset`` is an error, not
        an endless listing: :data:`_STALE_PAGES` pages in a row with nothing
        new. (One page the same as the one before is not enough: a list of one
        dataset, one more created between the two requests, does that.) Past ``most``
        datasets the listing stops with an error.
        """
        offset = 0
        shown = 0
        longest = 0
        stale = 0
        seen: set[str] = set()
        while limit is None or shown < limit:
            ask = page_size if limit is None else min(page_size, limit - shown)
            page = self.list_datasets(
                dataset_type=dataset_type,
                validation_status=validation_status,
                limit=ask,
                offset=offset,
            )
            if not page:
                return
            ids = [d.id for d in page]
            stale = 0 if any(i not in seen for i in ids) else stale + 1
            if stale >= _STALE_PAGES:
                raise errors.UnexpectedResponseError(
                    "the dataset list repeated a page: offset was ignored"
                )
            for dataset in page:
                if dataset.id in seen:  # listed already: the list shifted under its pages
                    continue
                if len(seen) >= most:
                    raise errors.UnexpectedResponseError(
                        f"the dataset list goes on past {most:,} datasets: stopped there"
                    )
                seen.add(dataset.id)
                yield dataset
                shown += 1
                if limit is not None and shown >= limit:
                    return
            offset += len(page)
            if len(page) < longest:
                return  # shorter than a page already seen: the last one
            longest = max(longest, len(page))

    def delete_dataset(self, dataset_id: str) -> None:
        self._transport.request("DELETE", f"/v1/datasets/{path_segment(dataset_id)}")

    def dataset_usage(self) -> int:
        data = self._transport.request("GET", "/v1/datasets/usage")
        value = data.get("organization_usage")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise errors.UnexpectedResponseError("usage answer has no organization_usage") from None

    # -- models --------------------------------------------------------------------

    def get_model(self, model: str) -> Model:
        """One model's description: its context length and the public ``tokenizer_url``."""
        data = self._transport.request("GET", f"/v1/models/{path_segment(model)}")
        return Model.from_api(data)

    def list_models(
        self, *, endpoint: str | None = None, default_only: bool = False, page_size: int = 100
    ) -> Iterator[Model]:
        """Every model, page by page (``endpoint`` and ``default_only`` filter as the API does)."""
        token: str | None = None
        tokens: set[str] = set()
        while True:
            params: dict[str, Any] = {"page_size": max(1, min(MAX_PAGE_SIZE, page_size))}
            if endpoint:
                params["endpoint"] = endpoint
            if default_only:
                params["default_only"] = "true"
            if token:
                params["page_token"] = token
            data = self._transport.request("GET", "/v1/models", params=params)
            items = data.get("models") or []
            if not isinstance(items, list) or not all(isinstance(m, dict) for m in items):
                raise errors.UnexpectedResponseError("the model list is not a list of objects")
            yield from (Model.from_api(m) for m in items)
            next_token = data.get("next_page_token")
            token = next_token if isinstance(next_token, str) and next_token else None
            if token is None or not items:
                return
            if token in tokens:  # a server that loops would otherwise list forever
                raise errors.UnexpectedResponseError("the model list repeated a page token")
            tokens.add(token)


def _field(data: dict[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if not isinstance(value, kind):
        raise errors.UnexpectedResponseError(
            f"the answer has no {name!r} {'object' if kind is dict else 'value'}"
        )
    return value
