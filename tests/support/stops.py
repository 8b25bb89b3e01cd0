"""A Ctrl-C at one step of an API call, made by the program's own progress callback.

``cb.Client(on_event=stop_after_upload)`` raises ``KeyboardInterrupt`` as soon as
an upload's last event is heard: the moment between a dataset's upload and the
batch's create, where a stopped run must be carried on by the same call again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import cohere_batch_cli as cb


def stop_after_upload(event: cb.Event) -> None:
    """Ctrl-C between the upload and the create: raised once the upload's answer (its dataset) is heard."""
    if event.kind == "step_done" and (event.description or "").startswith("uploading"):
        raise KeyboardInterrupt
