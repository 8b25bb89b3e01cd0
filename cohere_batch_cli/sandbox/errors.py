"""The one exception handlers raise to answer with a JSON error body."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Answer ``status`` with ``{"message": message}`` (plus extra headers if given)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"message": self.message}
