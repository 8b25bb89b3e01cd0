"""The HTTP layer under :class:`~cohere_batch_cli.api.client.CohereClient`.

One ``httpx.Client`` per process, with the key in one header and nowhere else.
Every API call goes through :meth:`Transport.request`, which owns the retry
loop (under a :class:`~.retry.RetryPolicy`), turns every failure into the
error tree of :mod:`.errors`, and checks that a 2xx answer is the JSON object
the contract promises before anyone reads it. Parts of output datasets are
pre-signed links to storage: they are fetched with :func:`storage_client`,
which never carries the key.

Nothing here names a cbatch command: an error that needs a next step says
what happened (``may_have_created``), and the CLI words the advice.
"""

from __future__ import annotations

import copy
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from .. import __version__
from .._httpx import httpx
from . import errors
from .answer import ACCEPT_ENCODING, NotJSON, OutOfBounds, load_json, read_body
from .errors import CreatedKind, InvalidBaseURL
from .retry import RetryPolicy, server_requested_wait

DEFAULT_BASE_URL = "https://api.cohere.com"
CLIENT_NAME = "cbatch"
PYTHON_VERSION = ".".join(str(part) for part in sys.version_info[:3])
USER_AGENT = f"cbatch/{__version__} python/{PYTHON_VERSION} httpx/{httpx.__version__}"

DebugSink = Callable[[str], None]
FilesFactory = Callable[[], dict[str, tuple[str, IO[bytes], str]]]
"""Builds the multipart files of one attempt: each attempt opens (and closes) its own handles."""


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
        raise InvalidBaseURL(f"the base URL {base_url!r} is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidBaseURL(
            f"the base URL {base_url!r} is not an http:// or https:// URL with a host"
        )
    return base_url.rstrip("/")


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


# --------------------------------------------------------------------------- failures


class _Retry(Exception):
    """Internal: one attempt failed in a way that may succeed when tried again."""

    def __init__(self, error: errors.CohereAPIError, wait: float | None, sent: bool) -> None:
        self.error = error
        self.wait = wait
        self.sent = sent  # False when the request surely never reached the server


def request_id(response: httpx.Response) -> str | None:
    """The id the server gave this exchange, under whichever header it uses."""
    for name in ("x-request-id", "request-id", "x-cohere-request-id", "x-amzn-requestid"):
        if name in response.headers:
            return response.headers[name]
    return None


def _api_message(body: bytes) -> str | None:
    """The API's own ``message``, when the body is the JSON the contract promises."""
    try:
        data = load_json(body)
    except ValueError:  # not JSON, or JSON past the bounds: no message to quote
        return None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"].strip() or None
    return None


def describe_body(response: httpx.Response, body: bytes) -> str:
    """What came back, for a message: its size and type, never its content."""
    kind = response.headers.get("content-type", "").split(";")[0].strip() or "no content type"
    return f"{len(body)} bytes of {kind}" if body else "an empty body"


def error_from_response(
    response: httpx.Response, body: bytes, retries: int = 0
) -> errors.APIStatusError:
    """The error for an error status, with the API's message when it sent one."""
    status = response.status_code
    api_message = _api_message(body)
    detail = api_message or f"{response.reason_phrase or 'error'} ({describe_body(response, body)})"
    cls = errors.error_class_for_status(status)
    return cls(
        f"HTTP {status}: {detail}",
        status_code=status,
        request_id=request_id(response),
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
    parsed = httpx.URL(url)
    # The port too: "could not connect to 127.0.0.1" hides which of a machine's servers is down.
    host = f"{parsed.host}:{parsed.port}" if parsed.host and parsed.port else parsed.host or url
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


def _surely_not_taken(error: errors.CohereAPIError) -> bool:
    """429 and 503 are refusals: the server did not act on the request."""
    return error.status_code in (429, 503)


# --------------------------------------------------------------------------- the transport


class Transport:
    """The authenticated connection to the API and the loop every call goes through."""

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
        if not api_key:
            raise errors.AuthenticationError("no API key")
        if not api_key.isascii() or not api_key.isprintable():
            raise errors.InvalidRequestError("the API key holds characters a header cannot carry")
        self.base_url = check_base_url(base_url)
        self.retry = retry if retry is not None else RetryPolicy()
        self.timeouts = timeouts if timeouts is not None else Timeouts()
        self._sleep = sleep
        self._debug = debug
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "X-Client-Name": client_name or CLIENT_NAME,
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            timeout=self.timeouts.to_httpx(),
            verify=tls_verify(ca_bundle),
            transport=_plain_http_transport() if self.base_url.startswith("http://") else None,
            follow_redirects=False,
            event_hooks=_debug_hooks(debug) if debug else None,
        )

    def with_retry(self, retry: RetryPolicy) -> Transport:
        """The same connection pool and key under another retry policy."""
        clone = copy.copy(self)
        clone.retry = retry
        return clone

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        files: FilesFactory | None = None,
        timeout: float | None = None,
        upload: bool = False,
        before_retry: Callable[[], Any] | None = None,
        on_response: Callable[[httpx.Response], None] | None = None,
        may_create: CreatedKind | None = None,
    ) -> Any:
        """Send one API call with retries; return its JSON object (or what before_retry found).

        ``before_retry`` runs before each retry of a request that may have
        reached the server; a non-None result ends the loop as the answer.
        ``upload`` marks a request that must not be repeated once sent.
        ``may_create`` names what the request creates ("batch", "dataset"): an
        error that ends the loop while such a request may have been acted on
        (its answer was lost, or the look-up for it failed) carries it as
        ``may_have_created``, so the user is told not to simply run it again.
        """
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return self._attempt(method, path, params, json, files, timeout, on_response)
            except errors.UnexpectedResponseError as exc:
                if may_create and exc.status_code is not None and 200 <= exc.status_code < 300:
                    exc.may_have_created = may_create  # acted on: only the answer is unreadable
                raise
            except _Retry as retry:
                attempt += 1
                retry.error.retries = attempt - 1
                fate_unknown = retry.sent and not _surely_not_taken(retry.error)
                if fate_unknown and may_create:
                    retry.error.may_have_created = may_create
                if upload and fate_unknown:
                    raise retry.error from None
                wait = self.retry.next_wait(
                    attempt, time.monotonic() - started, requested=retry.wait
                )
                if wait is None:
                    raise retry.error from None
                if self._debug:
                    self._debug(
                        f"retry {attempt}/{self.retry.retries} in {wait:.2f}s: {retry.error}"
                    )
                self._sleep(wait)
                if before_retry is not None and retry.sent:
                    try:
                        found = before_retry()
                    except errors.CohereAPIError as exc:
                        if may_create:  # the look-up failed: the lost request may still have worked
                            exc.may_have_created = may_create
                        raise
                    if found is not None:
                        return found

    def _attempt(
        self,
        method: str,
        path: str,
        params: Any,
        json_body: Any,
        files: FilesFactory | None,
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
                response.stream = _BodyDeadline(
                    response.stream, time.monotonic() + (limits.read or 60.0)
                )
                # Decoded here, within a bound, not by httpx: a gzip bomb stops at the bound.
                body = read_body(response.iter_raw(), response.headers.get("content-encoding", ""))
            finally:
                response.close()
        except httpx.LocalProtocolError:
            # The request could not even be written (a header value httpx refuses). Its
            # message quotes the header, which may be the key: never repeat it.
            raise errors.InvalidRequestError(
                "the request could not be sent: a header value is not valid (check the API key)"
            ) from None
        except OutOfBounds as exc:
            raise _refused(method, path, response, exc) from None
        except NotJSON as exc:  # a compressed body cut short: as a connection closed mid-answer
            raise _Retry(
                network_error(httpx.RemoteProtocolError(str(exc)), url), None, True
            ) from None
        except httpx.HTTPError as exc:
            lost = network_error(exc, url)
            if _is_certificate_error(exc):
                raise lost from None
            sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
            raise _Retry(lost, None, sent) from None
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
                f"{self.base_url} is not the API's"
            )
        if status >= 400 or status < 200:
            error = error_from_response(response, body)
            if self.retry.retryable(status):
                raise _Retry(
                    error, server_requested_wait(response.headers), not _surely_not_taken(error)
                )
            raise error
        try:
            data = load_json(body) if body else {}
        except OutOfBounds as exc:
            raise _refused(method, path, response, exc) from None
        except NotJSON:
            unreadable = errors.UnexpectedResponseError(
                f"{method} {path} answered {status} with {describe_body(response, body)}, not JSON",
                status_code=status,
                request_id=request_id(response),
            )
            raise _Retry(unreadable, None, True) from None
        if not isinstance(data, dict):
            raise errors.UnexpectedResponseError(
                f"{method} {path} answered with JSON that is not an object",
                status_code=status,
                request_id=request_id(response),
            )
        return data


def _refused(
    method: str, path: str, response: httpx.Response, exc: OutOfBounds
) -> errors.UnexpectedResponseError:
    """An answer past a bound (:mod:`.answer`): refused, not retried; the same answer would come again."""
    return errors.UnexpectedResponseError(
        f"{method} {path} answered {response.status_code} with {exc}: refused",
        status_code=response.status_code,
        request_id=request_id(response),
    )


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


class CountingReader:
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


# --------------------------------------------------------------------------- --debug


_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


def _redact_headers(headers: httpx.Headers) -> str:
    return "; ".join(
        f"{name}: {'[redacted]' if name.lower() in _SECRET_HEADERS else value}"
        for name, value in headers.items()
    )


def _debug_hooks(debug: DebugSink) -> dict[str, list[Callable[..., Any]]]:
    """httpx hooks that trace each exchange, with every credential header redacted."""

    def on_request(request: httpx.Request) -> None:
        request.extensions["cbatch_started"] = time.monotonic()
        debug(f"> {request.method} {request.url} [{_redact_headers(request.headers)}]")

    def on_response(response: httpx.Response) -> None:
        started = response.request.extensions.get("cbatch_started", time.monotonic())
        took = (time.monotonic() - started) * 1000
        rid = request_id(response)
        debug(
            f"< {response.status_code} {response.request.method} {response.request.url.path}"
            f" in {took:.0f} ms" + (f" request-id={rid}" if rid else "")
        )

    return {"request": [on_request], "response": [on_response]}


# --------------------------------------------------------------------------- storage


def storage_client(
    *, timeouts: Timeouts | None = None, ca_bundle: str | None = None
) -> httpx.Client:
    """A client for pre-signed storage links: no API key, no API headers, ever."""
    return httpx.Client(
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
        timeout=(timeouts or Timeouts()).to_httpx(),
        verify=tls_verify(ca_bundle),
        follow_redirects=True,
    )
