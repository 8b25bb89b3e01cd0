"""Optional extras: what a command needs beyond the base install, and how to get it."""

from __future__ import annotations

from .. import MissingExtra


def require_sandbox_extra(what: str = "cbatch sandbox") -> None:
    """Raise :class:`MissingExtra` (exit 2, with the install command) without the server extra."""
    try:
        import python_multipart  # noqa: F401  (the upload parser; "multipart" is its old name)
        import starlette  # noqa: F401
        import tokenizers  # noqa: F401  (the sandbox's usage counts)
        import uvicorn  # noqa: F401
    except ImportError:
        from ..engine import install_hint

        raise MissingExtra(f"{what} needs the server extra: {install_hint('sandbox')}") from None
