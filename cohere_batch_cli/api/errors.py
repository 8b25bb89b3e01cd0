"""The API layer's exceptions: one tree, so callers catch by meaning, not by status code.

::

    CohereAPIError                  anything the API layer raises (exit 1)
    ├── APIStatusError              the API answered with an error status
    │   ├── AuthenticationError     401, 403, 498: no key, a wrong key, no permission (exit 3)
    │   ├── NotFoundError           404 (exit 4)
    │   ├── BadRequestError         400, 422 and any other 4xx: the request was refused (exit 5)
    │   ├── RateLimitError          429, still limited after the retries (exit 6)
    │   └── ServerError             5xx, still failing after the retries (exit 6)
    ├── NetworkError                could not connect, TLS failure, connection dropped (exit 7)
    │   └── RequestTimeout          no answer within the timeout
    ├── UnexpectedResponseError     an answer that is not the JSON the contract promises (exit 6)
    └── InvalidRequestError         a request not sent: an empty id, or one that is only dots (exit 2)

The tree hangs under :class:`~cohere_batch_cli.errors.CbatchError`, the base of
every error cbatch raises, and each class says its exit code as ``exit_code``
(the one table of them: see :mod:`cohere_batch_cli.errors`).

Every error carries the HTTP status (when there was an answer), the API's own
``message`` and the request id, so the one line a user sees can say what the
server said. Nothing here ever holds the API key.

Nothing here names a cbatch command either: the API layer says what it knows
(``may_have_created``: a create or an upload ended in an error while the
request may have been acted on) and the CLI turns that into advice. ``hint``
is for a caller that has the advice already worded.
"""

from __future__ import annotations

from typing import Literal

from ..errors import CbatchError, ConfigError
from ..exit_codes import ExitCode

CreatedKind = Literal["batch", "dataset"]
"""What a request that may have been acted on may have created."""


class CohereAPIError(CbatchError):
    """Base of every error raised by the API layer.

    ``hint`` (from :class:`CbatchError`) is the next thing to try, set by the
    layer that knows which command to name; the API layer never sets it.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        api_message: str | None = None,
        retries: int = 0,
        path: str | None = None,
        hint: str | None = None,
        may_have_created: CreatedKind | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.status_code = status_code
        self.request_id = request_id
        self.api_message = api_message
        self.retries = retries
        # "batch" or "dataset" when the failed request may have created one: repeating
        # it blindly could make two.
        self.may_have_created: CreatedKind | None = may_have_created


class APIStatusError(CohereAPIError):
    """The API answered with an error status."""


class AuthenticationError(APIStatusError):
    """401, 403 or 498: the key is missing, wrong, or may not do this."""

    exit_code = ExitCode.AUTH


class NotFoundError(APIStatusError):
    """404: the batch or dataset does not exist (or the base URL is wrong)."""

    exit_code = ExitCode.NOT_FOUND


class BadRequestError(APIStatusError):
    """400, 422 or another 4xx: the API refused the request as sent."""

    exit_code = ExitCode.REFUSED


class RateLimitError(APIStatusError):
    """429 after every retry allowed."""

    exit_code = ExitCode.SERVER


class ServerError(APIStatusError):
    """5xx after every retry allowed."""

    exit_code = ExitCode.SERVER


class NetworkError(CohereAPIError):
    """No usable answer: connection refused or reset, DNS, TLS, a proxy failure."""

    exit_code = ExitCode.NETWORK


class RequestTimeout(NetworkError):
    """The server did not answer within the timeout."""


class UnexpectedResponseError(CohereAPIError):
    """An answer that is not what the contract promises: HTML, truncated or wrong-shaped JSON."""

    exit_code = ExitCode.SERVER


class InvalidRequestError(CohereAPIError):
    """A request cbatch refuses to send because no server could answer it sensibly."""

    exit_code = ExitCode.USAGE


class InvalidBaseURL(ConfigError):
    """The base URL cannot be used: not http(s), no host, a bad port, or it redirects.

    Outside the tree above on purpose: it is a configuration mistake found
    before (or instead of) talking to the API, not an answer from it, so it is
    one of cbatch's own configuration errors (exit 3). The message says what is
    wrong with the URL; where the URL came from is the CLI's to say (``hint``).
    """


def error_class_for_status(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status; the one place that table lives."""
    if status in (401, 403, 498):
        return AuthenticationError
    if status == 404:
        return NotFoundError
    if status == 429:
        return RateLimitError
    if status >= 500:
        return ServerError
    return BadRequestError
