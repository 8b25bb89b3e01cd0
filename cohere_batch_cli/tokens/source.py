"""Where a model's tokenizer comes from: a file given, the user cache, or its public URL.

``tokenizer_url`` points at public storage, like a part link: it is fetched with
:func:`~cohere_batch_cli.api.transport.storage_client` (no API key, no API headers),
which honours ``HTTPS_PROXY``/``NO_PROXY`` and the CA bundle as the API client does.
A downloaded file must load before it is kept; it is then written through
:func:`~cohere_batch_cli.atomic.atomic_write` to
``platformdirs.user_cache_dir("cbatch")/tokenizers/<sha256 of the URL>.json``, so the
next estimate downloads nothing. A cached file that no longer loads is fetched again.
Messages show a URL without its query string, as for part links.
"""

from __future__ import annotations

import hashlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import InputFileError, TokenizerError
from .tokenizer import TextTokenizer, require_tokenizers

CACHE_FOLDER = "tokenizers"
MAX_TOKENIZER_BYTES = 128 * 1024 * 1024
"""The largest tokenizer file read, once decompressed: Cohere's are about 10 to 20 MB."""


@dataclass(frozen=True)
class FetchSettings:
    """How the storage host is reached: the CA bundle (``--ca-bundle``) and the read timeout."""

    ca_bundle: str | None = None
    read_timeout: float | None = None


def safe_url(url: str) -> str:
    """The URL without its query string or fragment (a signed link's signature stays out)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("cbatch", appauthor=False)) / CACHE_FOLDER


def cache_path(url: str) -> Path:
    """The cache file of a tokenizer URL: the same URL, the same file, on every run."""
    return cache_dir() / f"{hashlib.sha256(url.encode('utf-8')).hexdigest()[:32]}.json"


def obtain(
    url: str | None,
    *,
    file: Path | None = None,
    settings: FetchSettings = FetchSettings(),
    what: str = "counting tokens",
    note: Callable[[str], None] | None = None,
) -> TextTokenizer:
    """The tokenizer: from ``file`` when given, else the cache, else downloaded from ``url``.

    ``note`` hears what happened on the way (a download, a cache that could not be
    written), for the reporter's debug or info lines.
    """
    require_tokenizers(what)  # before any download: without the library there is no point
    if file is not None:
        return _from_file(file, what)
    if not url:
        raise TokenizerError("the model has no tokenizer_url; pass --tokenizer FILE")
    cached = cache_path(url)
    if cached.is_file():
        try:
            return TextTokenizer.from_bytes(cached.read_bytes(), safe_url(url), what=what)
        except (OSError, TokenizerError) as exc:
            if note:
                note(f"the cached tokenizer {cached} is unusable ({exc}); downloading it again")
    started = time.monotonic()
    data = download(url, settings)
    tokenizer = TextTokenizer.from_bytes(data, safe_url(url), what=what)
    if note:
        note(
            f"downloaded the tokenizer from {safe_url(url)} ({len(data):,} bytes in {time.monotonic() - started:.1f} s)"
        )
    _keep(cached, data, note)
    return tokenizer


def _from_file(file: Path, what: str) -> TextTokenizer:
    try:
        data = Path(file).read_bytes()
    except IsADirectoryError:
        raise InputFileError(f"--tokenizer {file} is a directory, not a tokenizer file") from None
    except OSError as exc:
        raise InputFileError(f"cannot read --tokenizer {file}: {exc.strerror or exc}") from None
    try:
        return TextTokenizer.from_bytes(data, str(file), what=what)
    except TokenizerError as exc:
        raise InputFileError(f"--tokenizer {file}: {exc}") from None


def _keep(path: Path, data: bytes, note: Callable[[str], None] | None) -> None:
    """Cache the file; a cache that cannot be written costs a download next time, nothing more."""
    from ..atomic import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as handle:
            handle.write(data)
    except OSError as exc:
        if note:
            note(f"the tokenizer could not be cached in {path.parent}: {exc.strerror or exc}")


def download(url: str, settings: FetchSettings) -> bytes:
    """GET the tokenizer file without the key, retried as a part download is.

    A dropped connection, a 408/429/5xx or a timeout is tried again under
    :meth:`RetryPolicy.for_parts <cohere_batch_cli.api.retry.RetryPolicy.for_parts>`,
    honouring a ``Retry-After``; a certificate failure or any other status is final.
    """
    from .._httpx import httpx
    from ..api.answer import NotJSON, OutOfBounds, read_body
    from ..api.retry import RetryPolicy, server_requested_wait
    from ..api.transport import Timeouts, network_error, storage_client

    shown = safe_url(url)
    policy = RetryPolicy.for_parts()
    timeouts = Timeouts(read=settings.read_timeout) if settings.read_timeout else Timeouts()
    waited, attempt = 0.0, 0
    with storage_client(timeouts=timeouts, ca_bundle=settings.ca_bundle) as http:
        while True:
            attempt += 1
            requested: float | None = None
            try:
                with http.stream("GET", url) as response:
                    if response.status_code == 200:
                        # Decoded within a bound, as every API answer is: a gzip bomb stops there.
                        return read_body(
                            response.iter_raw(),
                            response.headers.get("content-encoding", ""),
                            limit=MAX_TOKENIZER_BYTES,
                        )
            except OutOfBounds as exc:
                raise TokenizerError(
                    f"the tokenizer could not be downloaded from {shown}: the storage server "
                    f"answered with {exc}"
                ) from None
            except (httpx.HTTPError, NotJSON) as exc:  # NotJSON: a compressed body cut short
                last = (
                    str(network_error(exc, url)) if isinstance(exc, httpx.HTTPError) else str(exc)
                )
                if _tls_failure(exc):
                    raise TokenizerError(
                        f"the tokenizer could not be downloaded from {shown}: {last}"
                    ) from None
            else:
                if not policy.retryable(response.status_code):
                    raise TokenizerError(
                        f"the tokenizer could not be downloaded from {shown}: "
                        f"the storage server answered {response.status_code}"
                    )
                last = f"the storage server answered {response.status_code}"
                requested = server_requested_wait(response.headers)
            wait = policy.next_wait(attempt, waited, requested=requested)
            if wait is None:
                tries = "1 attempt" if attempt == 1 else f"{attempt} attempts"
                raise TokenizerError(
                    f"the tokenizer could not be downloaded from {shown} after {tries}: {last}"
                )
            time.sleep(wait)
            waited += wait


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)
