"""Pre-signed part links that expire, and the storage errors a signed-URL store answers.

A link is made each time a dataset is read, in the shape of a Google Cloud Storage V4
signed URL (recorded Cohere links carry ``X-Goog-Expires=3600``)::

    /_sandbox/parts/<dataset>/<part>?X-Goog-Algorithm=GOOG4-HMAC-SHA256
        &X-Goog-Credential=...&X-Goog-Date=20250305T145925Z&X-Goog-Expires=3600
        &X-Goog-SignedHeaders=host&X-Goog-Signature=<hex>

The signature covers the dataset, the part, the date and the lifetime, so none can be
edited. Checking follows the store: a wrong or missing signature is a 403
(``SignatureDoesNotMatch`` / ``AccessDenied``), a malformed date or lifetime a 400
(``MalformedSecurityHeader``), a link past its lifetime a 400 ``ExpiredToken``, an object
that is gone a 404 ``NoSuchKey``, each with the XML body GCS sends. The fix a client
needs for an expired link is the one the real API needs: ``GET /v1/datasets/{id}`` again.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

ALGORITHM = "GOOG4-HMAC-SHA256"
_DATE = "%Y%m%dT%H%M%SZ"
SIGNATURE = "X-Goog-Signature"


def _signature(secret: str, dataset_id: str, name: str, date: str, expires: str) -> str:
    msg = f"{dataset_id}/{name}\n{date}\n{expires}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def part_url(base_url: str, secret: str, dataset_id: str, name: str, now: float, ttl: int) -> str:
    """A link to one stored file of a dataset, valid ``ttl`` seconds from ``now``."""
    stamp = datetime.fromtimestamp(int(now), tz=timezone.utc)
    date = stamp.strftime(_DATE)
    expires = str(ttl)
    query = {
        "X-Goog-Algorithm": ALGORITHM,
        "X-Goog-Credential": f"cbatch-sandbox/{stamp:%Y%m%d}/auto/storage/goog4_request",
        "X-Goog-Date": date,
        "X-Goog-Expires": expires,
        "X-Goog-SignedHeaders": "host",
        SIGNATURE: _signature(secret, dataset_id, name, date, expires),
    }
    return f"{base_url}/_sandbox/parts/{quote(dataset_id)}/{quote(name)}?{urlencode(query)}"


class StorageError(Exception):
    """A refusal in the storage's own words: status, XML code, message, details."""

    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def xml(self) -> bytes:
        details = f"<Details>{escape(self.details)}</Details>" if self.details else ""
        return (
            "<?xml version='1.0' encoding='UTF-8'?>"
            f"<Error><Code>{self.code}</Code><Message>{escape(self.message)}</Message>{details}</Error>"
        ).encode()


def no_such_key() -> StorageError:
    return StorageError(404, "NoSuchKey", "The specified key does not exist.")


def check(secret: str, dataset_id: str, name: str, query: dict[str, str], now: float) -> None:
    """Raise the :class:`StorageError` the store would answer; return if the link is good."""
    given = query.get(SIGNATURE)
    date, expires = query.get("X-Goog-Date"), query.get("X-Goog-Expires")
    if not given or date is None or expires is None:
        raise StorageError(
            403, "AccessDenied", "Access denied.",
            "Anonymous caller does not have storage.objects.get access to the Google Cloud Storage object.",
        )  # fmt: skip
    try:
        signed_at = datetime.strptime(date, _DATE).replace(tzinfo=timezone.utc).timestamp()
        lifetime = int(expires)
        if lifetime <= 0 or str(lifetime) != expires:
            raise ValueError
    except ValueError:
        raise StorageError(
            400, "MalformedSecurityHeader", "Your request has a malformed header.",
            "The X-Goog-Date or X-Goog-Expires parameter is malformed.",
        ) from None  # fmt: skip
    if not hmac.compare_digest(_signature(secret, dataset_id, name, date, expires), given):
        raise StorageError(
            403, "SignatureDoesNotMatch", "Access denied.",
            "The request signature we calculated does not match the signature you provided.",
        )  # fmt: skip
    end = signed_at + lifetime
    if now >= end:
        at = datetime.fromtimestamp(end, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        raise StorageError(
            400, "ExpiredToken", "Invalid argument.",
            f"The provided token has expired. Request signature expired at: {at}",
        )  # fmt: skip


def redact(path_with_query: str) -> str:
    """The path of a request with its signature replaced, fit for any log."""
    head, sep, query = path_with_query.partition("?")
    if not sep or SIGNATURE not in query:
        return path_with_query
    kept = [
        p if not p.startswith(f"{SIGNATURE}=") else f"{SIGNATURE}=REDACTED"
        for p in query.split("&")
    ]
    return f"{head}?{'&'.join(kept)}"
