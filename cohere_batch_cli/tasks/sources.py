"""Where a retry reads the requests it sends again, first found first used.

1. the file given with ``--input``: the user's word;
2. the file cbatch recorded when it created the root batch from a file
   (path, size and fingerprint): used only while it still holds those bytes,
   refused with a clear line when it changed; it is copied into the work
   folder by the same read that compares it, and the copy is what is read
   next, so a file rewritten after the comparison sends nothing of its own;
3. the root batch's input dataset, while it exists: the uploaded file itself
   from a part's ``original_url`` (cbatch asks for ``keep_original_file`` on
   every upload), else the parsed records of its Avro parts.

Every source ends as a local JSONL file, which the selection reads; links
are fetched without the API key and never shown.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import InputFileError, InputRejected

if TYPE_CHECKING:
    from .._httpx import httpx
    from ..api.client import CohereClient
    from ..api.models import DatasetPart
    from ..state.store import StateStore
    from .lineage import Chain
    from .reporting import Reporter


@dataclass(frozen=True)
class InputSource:
    """A local file holding the root's requests, and how cbatch came by it."""

    path: Path
    kind: str
    """``input`` (--input), ``recorded``, ``original`` (original_url) or ``parts`` (parsed parts)."""
    description: str


def find_input(
    client: CohereClient,
    chain: Chain,
    *,
    given: Path | None,
    store: StateStore | None,
    workdir: Path,
    http: httpx.Client,
    reporter: Reporter,
    concurrency: int = 4,
    stall_timeout: float = 60.0,
) -> InputSource:
    """The first source that has the root's requests; raise :class:`InputRejected` when none has."""
    root = chain.root
    if given is not None:
        if not given.is_file():
            raise InputFileError(f"--input {given} is not a file cbatch can read")
        return InputSource(given, "input", f"{given} (--input)")
    recorded = _recorded(root.id, root.input_dataset_id, store)
    if recorded is not None:
        from .lineage import same_file

        path, size, sha256 = recorded
        copy = (
            workdir / "recorded.jsonl"
        )  # the bytes compared: the selection reads these, not the file again
        changed = same_file(path, size, sha256, copy_to=copy)
        if changed is None:
            return InputSource(
                copy,
                "recorded",
                f"{path} (recorded when batch {root.id} was created from it; unchanged)",
            )
        copy.unlink(missing_ok=True)
        if path.exists():
            from ..errors import InputChanged

            raise InputChanged(
                f"{path} has changed since batch {root.id} was created from it: {changed}",
                hint="give the file the batch was created from with --input FILE",
            )
        reporter.info(
            f"{path}, which batch {root.id} was created from, is gone; reading its input dataset instead"
        )
    dataset_id = root.input_dataset_id
    if not dataset_id:
        raise InputRejected(
            f"no input to retry batch {root.id} from: its input dataset is gone"
            + (" and cbatch recorded no file for it" if recorded is None else ""),
            hint="give the file the batch was created from with --input FILE",
        )
    from ..api.errors import NotFoundError

    try:
        dataset = client.get_dataset(dataset_id)
    except NotFoundError:
        raise InputRejected(
            f"no input to retry batch {root.id} from: its input dataset {dataset_id} no longer exists",
            hint="give the file the batch was created from with --input FILE",
        ) from None
    parts = [p for p in dataset.parts if p.url or p.raw.get("original_url")]
    if not parts:
        raise InputRejected(f"input dataset {dataset_id} of batch {root.id} has no parts to read")
    originals = _original_links(parts)
    if originals:
        target = workdir / "original.jsonl"
        _download_all(http, originals, target, stall_timeout)
        return InputSource(
            target, "original", f"the file uploaded as dataset {dataset_id} (its original_url)"
        )
    target = workdir / "parsed.jsonl"
    rows = _rebuild_from_parts(http, parts, workdir, target, concurrency, stall_timeout)
    return InputSource(
        target,
        "parts",
        f"the {rows:,} parsed records of dataset {dataset_id} ({len(parts)} part{'' if len(parts) == 1 else 's'})",
    )


def _recorded(
    root_id: str, dataset_id: str | None, store: StateStore | None
) -> tuple[Path, int, str] | None:
    if store is None:
        return None
    known = store.batch(root_id)
    for candidate in (dataset_id, known.input_dataset_id if known is not None else None):
        if candidate:
            record = store.input_file(candidate)
            if record is not None:
                return Path(record.path), record.size, record.sha256
    return None


def _original_links(parts: Sequence[DatasetPart]) -> list[str]:
    """Each distinct uploaded file, in part order (every part may point at the same one)."""
    links: list[str] = []
    seen: set[str] = set()
    for part in parts:
        url = part.raw.get("original_url")
        if not isinstance(url, str) or not url:
            return []  # a part without its original: read the parsed parts instead
        key = urlsplit(url)._replace(query="", fragment="").geturl()
        if key not in seen:
            seen.add(key)
            links.append(url)
    return links


def _download_all(http: httpx.Client, links: list[str], target: Path, stall_timeout: float) -> None:
    from ..results.parts import download_part

    pieces = []
    for k, url in enumerate(links):
        piece = target.with_name(f"{target.name}.{k}")
        download_part(http, url, piece, label=f"original file {k}", stall_timeout=stall_timeout)
        pieces.append(piece)
    with open(target, "wb") as out:
        for piece in pieces:
            with open(piece, "rb") as fh:
                while chunk := fh.read(1024 * 1024):
                    out.write(chunk)
            piece.unlink()


def _rebuild_from_parts(
    http: httpx.Client,
    parts: Sequence[DatasetPart],
    workdir: Path,
    target: Path,
    concurrency: int,
    stall_timeout: float,
) -> int:
    """The input's lines again from its Avro parts: ``custom_id``, ``body`` and kept fields."""
    import fastavro

    from ..errors import ResultsError
    from ..output.progress import NullProgress
    from ..results.parts import Fetcher, ordered_parts

    ordered = ordered_parts(parts)
    folder = workdir / "input-parts"
    folder.mkdir()
    fetcher = Fetcher(ordered, folder, http, concurrency, stall_timeout, NullProgress())
    fetcher.start()
    rows = 0
    try:
        with open(target, "wb") as out:
            for position in range(len(ordered)):
                path = fetcher.wait(position)
                try:
                    with open(path, "rb") as fh:
                        lines = [_line(record) for record in fastavro.reader(fh)]
                except Exception as exc:  # the bytes are the API's: any failure says only that
                    raise ResultsError(
                        f"input part {position} is not a readable Avro file: {type(exc).__name__}"
                    ) from None
                out.write("".join(lines).encode("utf-8"))
                rows += len(lines)
                path.unlink()
    finally:
        fetcher.stop()
    return rows


def _line(record: Any) -> str:
    """One request line from an input part's record; fields hold JSON text, ``custom_id`` first."""
    from ..errors import ResultsError

    if (
        not isinstance(record, dict)
        or not isinstance(record.get("custom_id"), str)
        or not isinstance(record.get("body"), str)
    ):
        raise ResultsError("an input part holds a record without custom_id and body")
    fields = [
        f'"custom_id": {json.dumps(record["custom_id"])}',
        f'"body": {_one_line(record["body"])}',
    ]
    for key, value in record.items():
        if key not in ("custom_id", "body") and isinstance(value, str):
            fields.append(f"{json.dumps(key)}: {_one_line(value)}")
    return "{" + ", ".join(fields) + "}\n"


def _one_line(text: str) -> str:
    """JSON text as it came, or on one line when it spans several (a JSONL line must not)."""
    if "\n" not in text and "\r" not in text:
        return text
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(text)  # not JSON: the check of the retry input will say so
