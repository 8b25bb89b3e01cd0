"""The sandbox's own log: one ``logging`` hierarchy, configured in one place.

Every module logs through :func:`get` (loggers under ``cohere_batch_cli.sandbox``) and
never prints. A library user (tests, ``cbatch demo``) gets Python's default: warnings
and errors on stderr, nothing else. ``cbatch sandbox serve`` calls :func:`configure`
once with its ``--log-level``.

What is never logged: API keys, request headers, and part or original-file links
(each is a credential for as long as it lives). Records name datasets and batches by id.
"""

from __future__ import annotations

import logging

ROOT = "cohere_batch_cli.sandbox"
LEVELS = ("debug", "info", "warning", "error")
_FORMAT = "cbatch sandbox: %(levelname)s %(message)s"


def get(name: str = "") -> logging.Logger:
    """The logger of one sandbox module (``get("worker")``), or the sandbox's root."""
    return logging.getLogger(f"{ROOT}.{name}" if name else ROOT)


def configure(level: str = "warning") -> None:
    """Send the sandbox's log at ``level`` and above to stderr, once per process.

    Calling it again only changes the level, so a second sandbox in the same process
    does not double every line.
    """
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}")
    root = get()
    root.setLevel(level.upper())
    if not any(getattr(h, "_cbatch_sandbox", False) for h in root.handlers):
        handler = logging.StreamHandler()  # stderr
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._cbatch_sandbox = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False
