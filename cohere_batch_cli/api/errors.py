"""The API layer's exceptions: one tree, so callers catch by meaning, not by status code.

::

    CohereAPIError                  anything the API layer raises
    ├── APIStatusError              the API answered with an error status
    │   ├── AuthenticationError     401, 403, 498: no key, a wrong key, no permission
    │   ├── NotFoundError           404
    │   ├── BadRequestError         400, 422 and any other 4xx: the request was refused
    │   ├── RateLimitError          429, still limited after the retries
    │   └── ServerError             5xx, still failing after the retries
    ├── NetworkError                could not connect, TLS failure, connection dropped
    │   └── RequestTimeout          no answer within the timeout
    ├── UnexpectedResponseError     an answer that is not the JSON the contract promises
    └── InvalidRequestError         a request not sent: an empty id, or one that is only dots

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

from ..errors import ConfigError

CreatedKind = Literal["batch", "dataset"]
"""What a request that may have been acted on may have created."""


class CohereAPIError(Exception):
    """Base of every error raised by the API layer."""

    hint: str | None = None
    """The next thing to try, set by the layer that knows which command to name."""

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
        super().__init__(message)
        self.message = message
        self.path = path
        self.status_code = status_code
        self.request_id = request_id
        self.api_message = api_message
        self.retries = retries
        # The next thing to try, when whoever raised it knows one; the API layer never sets it.
        self.hint = hint
        # "batch" or "dataset" when the failed request may have created one: repeating
        # it blindly could make two.
        self.may_have_created: CreatedKind | None = may_have_created

    def __str__(self) -> str:
        return self.message


class APIStatusError(CohereAPIError):
    """The API answered with an error status."""


class AuthenticationError(APIStatusError):
    """401, 403 or 498: the key is missing, wrong, or may not do this."""


class NotFoundError(APIStatusError):
    """404: the batch or dataset does not exist (or the base URL is wrong)."""


class BadRequestError(APIStatusError):
    """400, 422 or another 4xx: the API refused the request as sent."""


class RateLimitError(APIStatusError):
    """429 after every retry allowed."""


class ServerError(APIStatusError):
    """5xx after every retry allowed."""


class NetworkError(CohereAPIError):
    """No usable answer: connection refused or reset, DNS, TLS, a proxy failure."""


class RequestTimeout(NetworkError):
    """The server did not answer within the timeout."""


class UnexpectedResponseError(CohereAPIError):
    """An answer that is not what the contract promises: HTML, truncated or wrong-shaped JSON."""


class InvalidRequestError(CohereAPIError):
    """A request cbatch refuses to send because no server could answer it sensibly."""


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
