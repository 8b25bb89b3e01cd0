"""The HTTP client for Cohere's batch and dataset endpoints.

One ``httpx.Client`` per process, with the key in one header and nowhere else.
Every call goes through :meth:`CohereClient._request`, which owns the retry
loop, turns every failure into the error tree of :mod:`.errors`, and checks
that a 2xx answer is the JSON object the contract promises before anyone
reads it. Parts of output datasets are pre-signed links to storage: they are
fetched with :func:`storage_client`, which never carries the key.
"""

from __future__ import annotations

import copy
import json
import os
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from .._httpx import httpx

from .. import __version__
from . import errors
from .errors import InvalidBaseURL
from .models import Batch, Dataset
from .retry import RETRYABLE_STATUSES, RetryPolicy, server_requested_wait

DEFAULT_BASE_URL = "https://api.cohere.com"
CLIENT_NAME = "cbatch"
MAX_PAGE_SIZE = 1000
PYTHON_VERSION = ".".join(str(part) for part in sys.version_info[:3])
USER_AGENT = f"cbatch/{__version__} python/{PYTHON_VERSION} httpx/{httpx.__version__}"

DebugSink = Callable[[str], None]

BATCH_MAY_EXIST = "the batch may have been created: look for it with 'cbatch list' before creating it again"
DATASET_MAY_EXIST = (
    "the file may have been stored: look for it with 'cbatch datasets list' before uploading it again"
)
"""Hints for an error that ends a create or an upload whose answer was lost (see ``_request``)."""


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait: to connect, and for each read of an answer."""

    connect: float = 10.0
    read: float = 60.0

    def to_httpx(self, override: float | None = None) -> httpx.Timeout:
        read = self.read if override is None else min(self.read, override)
        return httpx.Timeout(read, connect=min(self.connect, read))


def check_base_url(base_url: str) -> str:
    """``base_url`` without a trailing slash, or InvalidBaseURL saying what is wrong with it."""
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        raise InvalidBaseURL(f"the base URL {base_url!r} is not a URL: {exc}{_BASE_URL_HINT}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidBaseURL(
            f"the base URL {base_url!r} is not an http:// or https:// URL with a host{_BASE_URL_HINT}"
        )
    return base_url.rstrip("/")


_BASE_URL_HINT = "; it comes from --base-url, CO_API_URL or the profile: 'cbatch config' shows which"


class _Retry(Exception):
    """Internal: one attempt failed in a way that may succeed when tried again."""

    def __init__(self, error: errors.CohereAPIError, wait: float | None, sent: bool) -> None:
        self.error = error
        self.wait = wait
        self.sent = sent  # False when the request surely never reached the server


def path_segment(value: str) -> str:
    """An id made safe for one URL path segment: ``/``, ``..``, ``?``, ``#`` cannot escape it."""
    if value.strip(" .") == "":
        raise errors.InvalidRequestError(f"{value!r} is not a valid id")
    return quote(value, safe="")


def tls_verify(ca_bundle: str | None) -> ssl.SSLContext | bool:
    """Certificate checks are always on: the system bundle (or SSL_CERT_FILE), or the one given."""
    if not ca_bundle:
        return True
    return ssl.create_default_context(cafile=ca_bundle)


def _plain_http_transport() -> httpx.HTTPTransport:
    """A transport for an ``http://`` API (a sandbox, a CI stub) that skips loading CAs.

    httpx builds a verifying TLS context up front, loading the whole CA bundle
    (~45 ms a process) even when no request will use TLS. This context
    verifies as strictly but trusts no CA at all, so it could never accept a
    certificate; it is simply never used, since the API is plain http and
    redirects are not followed. Proxies from the environment keep their own
    verifying transports.
    """
    return httpx.HTTPTransport(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))


def _request_id(response: httpx.Response) -> str | None:
    for name in ("x-request-id", "request-id", "x-cohere-request-id", "x-amzn-requestid"):
        if name in response.headers:
            return response.headers[name]
    return None


def _api_message(response: httpx.Response) -> str | None:
    """The API's own ``message``, when the body is the JSON the contract promises."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"].strip() or None
    return None


def _describe_body(response: httpx.Response) -> str:
    kind = response.headers.get("content-type", "").split(";")[0].strip() or "no content type"
    size = len(response.content)
    return f"{size} bytes of {kind}" if size else "an empty body"


def error_from_response(response: httpx.Response, retries: int = 0) -> errors.APIStatusError:
    """The error for an error status, with the API's message when it sent one."""
    status = response.status_code
    api_message = _api_message(response)
    detail = api_message or f"{response.reason_phrase or 'error'} ({_describe_body(response)})"
    cls = errors.error_class_for_status(status)
    return cls(
        f"HTTP {status}: {detail}",
        status_code=status,
        request_id=_request_id(response),
        api_message=api_message,
        retries=retries,
        path=response.request.url.path,
    )


def _is_certificate_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def network_error(exc: httpx.HTTPError, url: str) -> errors.NetworkError:
    """A transport failure as a NetworkError that says what happened and to which host."""
    host = httpx.URL(url).host or url
    if isinstance(exc, httpx.TimeoutException):
        what = "connect" if isinstance(exc, httpx.ConnectTimeout) else "answer"
        return errors.RequestTimeout(f"timed out waiting for {host} to {what}")
    if _is_certificate_error(exc):
        return errors.NetworkError(
            f"TLS error talking to {host}: {exc} (use --ca-bundle or SSL_CERT_FILE for a private CA)"
        )
    if isinstance(exc, httpx.ConnectError):
        return errors.NetworkError(f"could not connect to {host}: {exc or 'connection refused'}")
    if isinstance(exc, httpx.RemoteProtocolError):
        return errors.NetworkError(f"{host} closed the connection mid-answer: {exc}")
    if isinstance(exc, (httpx.ReadError, httpx.WriteError)):
        return errors.NetworkError(f"the connection to {host} was lost: {exc}")
    return errors.NetworkError(f"network error talking to {host}: {exc or type(exc).__name__}")


class CohereClient:
    """A thin, typed client; one per process, closed with ``close()`` or ``with``."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeouts: Timeouts = Timeouts(),
        retry: RetryPolicy = RetryPolicy(),
        client_name: str = CLIENT_NAME,
        ca_bundle: str | None = None,
        debug: DebugSink | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise errors.AuthenticationError("no API key")
        if not api_key.isascii() or not api_key.isprintable():
            raise errors.InvalidRequestError("the API key holds characters a header cannot carry")
        self.base_url = check_base_url(base_url)
        self.retry = retry
        self.timeouts = timeouts
        self._sleep = sleep
        self._debug = debug
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "X-Client-Name": client_name or CLIENT_NAME,
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            },
            timeout=timeouts.to_httpx(),
            verify=tls_verify(ca_bundle),
            transport=_plain_http_transport() if self.base_url.startswith("http://") else None,
            follow_redirects=False,
            event_hooks=_debug_hooks(debug) if debug else None,
        )

    def with_retry(self, retry: RetryPolicy) -> CohereClient:
        """The same connection pool and key under another retry policy.

        A poller that handles transient errors itself (watch) wants each call
        to fail fast instead of sleeping inside the client for minutes.
        """
        clone = copy.copy(self)
        clone.retry = retry
        return clone

    def __enter__(self) -> CohereClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- batches -------------------------------------------------------------

    def get_batch(self, batch_id: str, *, timeout: float | None = None) -> Batch:
        data = self._request("GET", f"/v2/batches/{path_segment(batch_id)}", timeout=timeout)
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
        data = self._request("GET", "/v2/batches", params=params, timeout=timeout)
        items = data.get("batches") or []
        if not isinstance(items, list) or not all(isinstance(b, dict) for b in items):
            raise errors.UnexpectedResponseError("the batch list is not a list of objects")
        token = data.get("next_page_token")
        return [Batch.from_api(b) for b in items], (token if isinstance(token, str) and token else None)

    def iter_batches(
        self, *, page_size: int = 100, order_by: str | None = None, limit: int | None = None
    ) -> Iterator[Batch]:
        """Every batch, newest first, fetching the next page only when it is needed."""
        token: str | None = None
        seen = 0
        tokens: set[str] = set()
        if limit is not None:
            page_size = min(page_size, max(1, limit))
        while True:
            batches, token = self.list_batches_page(
                page_size=page_size, page_token=token, order_by=order_by
            )
            if token is not None:
                if token in tokens:  # a server that loops would otherwise list forever
                    raise errors.UnexpectedResponseError("the batch list repeated a page token")
                tokens.add(token)
            for batch in batches:
                yield batch
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if not token or not batches:
                return

    def create_batch(self, *, name: str, input_dataset_id: str, model: str) -> Batch:
        """Create a batch, never two.

        A POST whose fate is unknown (the connection dropped, a timeout, a 5xx)
        may have created the batch. Before posting again, the newest batches
        are searched for one with the same name, dataset and model created
        since the first attempt (timed by the server's own clock, from the
        ``Date`` of the list answer, so clock skew does not matter); if found,
        it is the answer.
        """
        body = {"name": name, "input_dataset_id": input_dataset_id, "model": model}
        started = time.monotonic()

        def find_created() -> Batch | None:
            return self._find_recent_batch(body, time.monotonic() - started)

        data = self._request(
            "POST", "/v2/batches", json=body, before_retry=find_created, unknown_fate=BATCH_MAY_EXIST
        )
        if isinstance(data, Batch):
            return data
        try:
            return Batch.from_api(_field(data, "batch", dict))
        except errors.UnexpectedResponseError as exc:
            # A 2xx answer: the batch was created, only the answer is unreadable.
            exc.hint = BATCH_MAY_EXIST  # type: ignore[attr-defined]
            raise

    def _find_recent_batch(self, body: dict[str, str], elapsed: float) -> Batch | None:
        response_date: list[float] = []
        data = self._request(
            "GET",
            "/v2/batches",
            params={"page_size": 50, "order_by": "created_at"},
            on_response=lambda r: response_date.append(_server_time(r)),
        )
        server_now = response_date[0] if response_date else time.time()
        since = server_now - elapsed - 5.0
        for raw in data.get("batches") or []:
            batch = Batch.from_api(raw) if isinstance(raw, dict) else None
            if batch is None or batch.created_at is None:
                continue
            same = (batch.name, batch.input_dataset_id, batch.model) == (
                body["name"],
                body["input_dataset_id"],
                body["model"],
            )
            if same and batch.created_at.timestamp() >= since:
                return batch
        return None

    def cancel_batch(self, batch_id: str) -> None:
        self._request("POST", f"/v2/batches/{path_segment(batch_id)}:cancel")

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
    ) -> str:
        """Upload a file as a new dataset, streamed from disk; returns the dataset id.

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
            handle: IO[bytes] = _CountingReader(path.open("rb"), on_bytes)
            return {"data": (path.name, handle, "application/octet-stream")}

        data = self._request(
            "POST", "/v1/datasets", params=params, files=files, upload=True, unknown_fate=DATASET_MAY_EXIST
        )
        try:
            return str(_field(data, "id", str))
        except errors.UnexpectedResponseError as exc:
            exc.hint = DATASET_MAY_EXIST  # type: ignore[attr-defined]
            raise

    def get_dataset(self, dataset_id: str, *, timeout: float | None = None) -> Dataset:
        data = self._request("GET", f"/v1/datasets/{path_segment(dataset_id)}", timeout=timeout)
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
        data = self._request(
            "GET", "/v1/datasets", params={k: v for k, v in params.items() if v is not None}
        )
        items = data.get("datasets") or []
        if not isinstance(items, list):
            raise errors.UnexpectedResponseError("the dataset list is not a list")
        return [Dataset.from_api(d) for d in items if isinstance(d, dict)]

    def delete_dataset(self, dataset_id: str) -> None:
        self._request("DELETE", f"/v1/datasets/{path_segment(dataset_id)}")

    def dataset_usage(self) -> int:
        data = self._request("GET", "/v1/datasets/usage")
        value = data.get("organization_usage")
        try:
            return int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise errors.UnexpectedResponseError("usage answer has no organization_usage") from None

    # -- transport -----------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        files: Callable[[], Any] | None = None,
        timeout: float | None = None,
        upload: bool = False,
        before_retry: Callable[[], Any] | None = None,
        on_response: Callable[[httpx.Response], None] | None = None,
        unknown_fate: str | None = None,
    ) -> Any:
        """Send one API call with retries; return its JSON object (or what before_retry found).

        ``before_retry`` runs before each retry of a request that may have
        reached the server; a non-None result ends the loop as the answer.
        ``upload`` marks a request that must not be repeated once sent.
        ``unknown_fate`` is the hint an error carries when it ends the loop
        while a request that may have been acted on is unaccounted for (a
        create or an upload whose answer was lost): the user must not simply
        run the command again.
        """
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return self._attempt(method, path, params, json, files, timeout, on_response)
            except _Retry as retry:
                attempt += 1
                retry.error.retries = attempt - 1
                fate_unknown = retry.sent and not _surely_not_taken(retry.error)
                if fate_unknown and unknown_fate:
                    retry.error.hint = unknown_fate  # type: ignore[attr-defined]
                if upload and fate_unknown:
                    raise retry.error from None
                wait = retry.wait if retry.wait is not None else self.retry.backoff(attempt)
                elapsed = time.monotonic() - started
                if attempt > self.retry.retries or elapsed + wait > self.retry.max_total:
                    raise retry.error from None
                if self._debug:
                    self._debug(f"retry {attempt}/{self.retry.retries} in {wait:.2f}s: {retry.error}")
                self._sleep(wait)
                if before_retry is not None and retry.sent:
                    try:
                        found = before_retry()
                    except errors.CohereAPIError as exc:
                        if unknown_fate:  # the look-up failed: the lost request may still have worked
                            exc.hint = unknown_fate  # type: ignore[attr-defined]
                        raise
                    if found is not None:
                        return found

    def _attempt(
        self,
        method: str,
        path: str,
        params: Any,
        json_body: Any,
        files: Callable[[], Any] | None,
        timeout: float | None,
        on_response: Callable[[httpx.Response], None] | None,
    ) -> dict[str, Any]:
        url = self.base_url + path
        opened = files() if files else None
        limits = self.timeouts.to_httpx(timeout)
        try:
            request = self._http.build_request(
                method, path, params=params, json=json_body, files=opened, timeout=limits
            )
            response = self._http.send(request, stream=True)
            try:
                # httpx's read timeout is per read: a body that trickles in a few bytes at a
                # time never trips it. The whole body must arrive within one read timeout.
                response.stream = _BodyDeadline(response.stream, time.monotonic() + (limits.read or 60.0))
                response.read()
            finally:
                response.close()
        except httpx.LocalProtocolError:
            # The request could not even be written (a header value httpx refuses). Its
            # message quotes the header, which may be the key: never repeat it.
            raise errors.InvalidRequestError(
                "the request could not be sent: a header value is not valid (check the API key)"
            ) from None
        except httpx.HTTPError as exc:
            error = network_error(exc, url)
            if _is_certificate_error(exc):
                raise error from None
            sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
            raise _Retry(error, None, sent) from None
        finally:
            for _, handle, _ in (opened or {}).values():
                handle.close()
        if on_response is not None:
            on_response(response)
        status = response.status_code
        if 300 <= status < 400:
            location = response.headers.get("location", "somewhere else")
            raise InvalidBaseURL(
                f"the API answered {status}, a redirect to {location}: the base URL "
                f"{self.base_url} is not the API's{_BASE_URL_HINT}"
            )
        if status >= 400 or status < 200:
            error = error_from_response(response)
            if status in RETRYABLE_STATUSES:
                # 429 and 503 are refusals: the server did not act on the request.
                raise _Retry(error, server_requested_wait(response.headers), status not in (429, 503))
            raise error
        try:
            data = response.json() if response.content else {}
        except (ValueError, UnicodeDecodeError):
            error = errors.UnexpectedResponseError(
                f"{method} {path} answered {status} with {_describe_body(response)}, not JSON",
                status_code=status,
                request_id=_request_id(response),
            )
            raise _Retry(error, None, True) from None
        if not isinstance(data, dict):
            raise errors.UnexpectedResponseError(
                f"{method} {path} answered with JSON that is not an object",
                status_code=status,
                request_id=_request_id(response),
            )
        return data


def _surely_not_taken(error: errors.CohereAPIError) -> bool:
    return error.status_code in (429, 503)


def _server_time(response: httpx.Response) -> float:
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(response.headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError, IndexError):
        return time.time()


def _field(data: dict[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if not isinstance(value, kind):
        raise errors.UnexpectedResponseError(
            f"the answer has no {name!r} {'object' if kind is dict else 'value'}"
        )
    return value


class _BodyDeadline(httpx.SyncByteStream):
    """A response body that raises ReadTimeout once its deadline passes, however it trickles."""

    def __init__(self, inner: Any, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            if time.monotonic() > self._deadline:
                raise httpx.ReadTimeout("the answer's body did not arrive within the timeout")
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _CountingReader:
    """A file wrapper that reports bytes as httpx reads them, for upload progress."""

    def __init__(self, handle: IO[bytes], on_bytes: Callable[[int], None] | None) -> None:
        self._handle = handle
        self._on_bytes = on_bytes

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        if self._on_bytes and chunk:
            self._on_bytes(len(chunk))
        return chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def close(self) -> None:
        self._handle.close()


def _redact_headers(headers: httpx.Headers) -> str:
    shown = []
    for name, value in headers.items():
        if name.lower() in ("authorization", "proxy-authorization", "cookie", "x-api-key"):
            value = "[redacted]"
        shown.append(f"{name}: {value}")
    return "; ".join(shown)


def _debug_hooks(debug: DebugSink) -> dict[str, list[Callable[..., None]]]:
    """httpx hooks that trace each exchange, with every credential header redacted."""

    def on_request(request: httpx.Request) -> None:
        request.extensions["cbatch_started"] = time.monotonic()
        debug(f"> {request.method} {request.url} [{_redact_headers(request.headers)}]")

    def on_response(response: httpx.Response) -> None:
        started = response.request.extensions.get("cbatch_started", time.monotonic())
        took = (time.monotonic() - started) * 1000
        rid = _request_id(response)
        debug(
            f"< {response.status_code} {response.request.method} {response.request.url.path}"
            f" in {took:.0f} ms" + (f" request-id={rid}" if rid else "")
        )

    return {"request": [on_request], "response": [on_response]}


def storage_client(
    *, timeouts: Timeouts = Timeouts(), ca_bundle: str | None = None
) -> httpx.Client:
    """A client for pre-signed storage links: no API key, no API headers, ever."""
    return httpx.Client(
        headers={"User-Agent": USER_AGENT},
        timeout=timeouts.to_httpx(),
        verify=tls_verify(ca_bundle),
        follow_redirects=True,
    )


def env_retry_policy(retries: int | None = None) -> RetryPolicy:
    """The retry policy, with ``CBATCH_RETRY_BASE`` letting tests shrink the waits."""
    base = os.environ.get("CBATCH_RETRY_BASE")
    policy = RetryPolicy()
    try:
        initial = float(base) if base else policy.initial
    except ValueError:
        initial = policy.initial
    return RetryPolicy(
        retries=policy.retries if retries is None else max(0, retries),
        initial=initial,
        maximum=policy.maximum,
        max_total=policy.max_total,
    )
