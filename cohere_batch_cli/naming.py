"""One naming scheme for the batches and datasets cbatch makes on a user's behalf.

A batch name is read twice: by a person scanning ``cbatch list``, and by
cbatch scanning ``GET /v2/batches`` on a machine whose local state store is
empty. The API keeps no metadata of ours (no labels, no idempotency keys:
CONTRACT.md), so the name is the one place a batch can carry its lineage.
It is the label the user chose, then a bracketed tag::

    nightly                                                   an original: attempt 1
    nightly [retry 1 of 3a21ff4a-03d6-4a8c-b324-3f5f5e292b57]   attempt 2 of that batch
    nightly [retry 2 of 3a21ff4a-03d6-4a8c-b324-3f5f5e292b57]   attempt 3
    nightly [job 7f3k2q part 3]                               part 3 of a job: attempt 1
    nightly [job 7f3k2q part 3 retry 1]                       its attempt 2

A retry names the *root* (the original batch, or the job and the part), not
its parent: every attempt of one root is found by one scan of the list, and
attempt ``n``'s parent is attempt ``n - 1`` of the same root. There is never
more than one batch for one root and attempt (``cbatch retry`` looks before
it creates), so the pair is a key.

Dataset names must stay under 50 characters (the API refuses 50 or more), so
a dataset made for an attempt carries a short form of the same tag
(``nightly-retry1-3a21ff4a``); its id is what the state store remembers, and
the name only helps a person, or cbatch, find a dataset whose upload answer
was lost. A dataset id is its name cut to 48 characters and a random suffix
(``nightly-7f3k2q-p3-x8k2qa``, as the sandbox makes them), so every name cbatch
derives is at most 48 characters: the part, the attempt and the job id at its
end show in the id too, never cut off by it. The user's label is what gives
way, never the tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DATASET_NAME_MAX = 49
"""Longest dataset name the API takes ("under 50 characters"): a name the user gives is refused past it."""
DERIVED_NAME_MAX = 48
"""Longest dataset name cbatch derives: the part of a name a dataset id keeps whole."""
LABEL_MAX = 80
"""A label is cut to this many characters in a batch name: the tag must stay readable."""

_TAG = re.compile(r"^(?P<label>.*?) ?\[(?P<tag>[^\[\]]*)\]$", re.DOTALL)
_RETRY = re.compile(r"retry (?P<retry>[1-9]\d{0,5}) of (?P<root>\S+)")
_JOB = re.compile(
    r"job (?P<job>\S+) part (?P<part>[1-9]\d{0,6})(?: retry (?P<retry>[1-9]\d{0,5}))?"
)
_UNSAFE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Lineage:
    """Where a batch comes from: its root (a batch, or a job and a part) and its attempt.

    ``attempt`` counts from 1, the original; ``attempt - 1`` is the retry's number.
    """

    root_batch_id: str | None = None
    job_id: str | None = None
    part: int | None = None
    attempt: int = 1

    def __post_init__(self) -> None:
        if (self.root_batch_id is None) == (self.job_id is None):
            raise ValueError("a lineage has exactly one root: a batch id or a job id")
        if self.attempt < 1:
            raise ValueError("attempts count from 1")
        if self.job_id is not None and (self.part is None or self.part < 1):
            raise ValueError("a job's batch names its part, counting from 1")
        if self.root_batch_id is not None and self.part is not None:
            raise ValueError("only a job's batch has a part")

    @property
    def retry(self) -> int:
        """The retry's number: 0 for an original, 1 for the first retry."""
        return self.attempt - 1

    @property
    def root(self) -> str:
        """The root batch id, or ``job:ID/part`` for a job's part: one key for one chain."""
        if self.root_batch_id is not None:
            return self.root_batch_id
        return f"job:{self.job_id}/{self.part}"

    def next(self) -> Lineage:
        """The lineage of the attempt after this one."""
        return Lineage(self.root_batch_id, self.job_id, self.part, self.attempt + 1)


def tag(lineage: Lineage) -> str:
    """The bracketed tag of a name, without the brackets: ``retry 1 of ID``, ``job J part 3``."""
    if lineage.job_id is not None:
        text = f"job {lineage.job_id} part {lineage.part}"
        return text + (f" retry {lineage.retry}" if lineage.retry else "")
    return f"retry {lineage.retry} of {lineage.root_batch_id}"


def batch_name(label: str, lineage: Lineage) -> str:
    """The name of a batch made for ``lineage``: the label, then its tag.

    An original batch of a root (attempt 1 of a batch) is named by the user and
    never through here; a job's first attempt is.
    """
    if lineage.root_batch_id is not None and lineage.attempt == 1:
        raise ValueError("an original batch keeps the name it was given")
    label = " ".join(label.split())[:LABEL_MAX].strip()
    return f"{label} [{tag(lineage)}]" if label else f"[{tag(lineage)}]"


def parse_batch_name(name: str) -> tuple[str, Lineage | None]:
    """The label and the lineage a batch name carries (None: a name of the user's own)."""
    match = _TAG.match(name or "")
    if match is None:
        return name, None
    text, label = match.group("tag"), match.group("label")
    retry = _RETRY.fullmatch(text)
    if retry is not None:
        return label, Lineage(
            root_batch_id=retry.group("root"), attempt=int(retry.group("retry")) + 1
        )
    job = _JOB.fullmatch(text)
    if job is not None:
        again = int(job.group("retry") or 0)
        return label, Lineage(
            job_id=job.group("job"), part=int(job.group("part")), attempt=again + 1
        )
    return name, None


def label_of(name: str) -> str:
    """A batch name without its tag: what the user called the work."""
    return parse_batch_name(name)[0]


def dataset_name(label: str, lineage: Lineage) -> str:
    """A dataset name for ``lineage``'s input, under :data:`DATASET_NAME_MAX` characters.

    ``nightly-retry1-3a21ff4a``, ``nightly-7f3k2q-p3-retry1``: the label's
    letters and digits as far as they fit, then the short tag, which is never cut.
    """
    if lineage.job_id is not None:
        short = f"{_safe(lineage.job_id)[:16]}-p{lineage.part}" + (
            f"-retry{lineage.retry}" if lineage.retry else ""
        )
    else:
        short = f"retry{lineage.retry}-{_safe(lineage.root_batch_id or '')[:8]}"
    room = DERIVED_NAME_MAX - len(short) - 1
    head = _safe(label)[: max(0, room)].strip("-")
    return f"{head}-{short}" if head else short


def plain_dataset_name(label: str) -> str:
    """The dataset name of ``create --file``'s input: the batch's label, cut to fit.

    ``--name`` names the batch, which may be long; its dataset takes the same
    words as far as :data:`DERIVED_NAME_MAX` allows, so a long name is never
    refused at upload, after the file was checked.
    """
    text = " ".join(label.split())
    return text if len(text) <= DERIVED_NAME_MAX else text[:DERIVED_NAME_MAX].rstrip(" -_.")


_KEY_TAG = re.compile(r"\[key (?P<run>[a-z0-9]{6,16}) (?P<digest>[0-9a-f]{8})\]")
_KEY_SUFFIX = re.compile(r"(?:^|-)key-(?P<run>[a-z0-9]{6,16})-(?P<digest>[0-9a-f]{8})$")


def keyed_batch_name(label: str, run_id: str, digest: str) -> str:
    """The name of a batch made under an idempotency key: ``nightly [key k3v9x0q2ma 1a2b3c4d]``.

    The tag carries the run id (derived from the key: any machine finds the
    run by it) and the request's digest (another request under the same key
    is told apart with no state store). A retry of it names it as its root,
    keeping this tag in its label.
    """
    label = " ".join(label.split())[:LABEL_MAX].strip()
    tag = f"[key {run_id} {digest}]"
    return f"{label} {tag}" if label else tag


def keyed_dataset_name(label: str, run_id: str, digest: str) -> str:
    """The dataset name of a keyed run's input, within :data:`DERIVED_NAME_MAX`: ``nightly-key-k3v9x0q2ma-1a2b3c4d``.

    The label gives way, never the key's run id or the digest.
    """
    short = f"key-{run_id}-{digest}"
    head = _safe(label)[: max(0, DERIVED_NAME_MAX - len(short) - 1)].strip("-")
    return f"{head}-{short}" if head else short


def key_of(name: str | None) -> tuple[str, str] | None:
    """The run id and the digest a batch's or a dataset's name carries (None: not made under a key)."""
    text = name or ""
    match = _KEY_TAG.search(text) or _KEY_SUFFIX.search(text)
    return (match.group("run"), match.group("digest")) if match else None


def check_dataset_name(name: str) -> None:
    """Refuse a dataset name the user gave that the API would refuse, before any upload."""
    from .errors import UsageError

    if len(name) > DATASET_NAME_MAX:
        raise UsageError(
            f"--name is {len(name)} characters; a dataset name must be under {DATASET_NAME_MAX + 1}"
        )


def _safe(text: str) -> str:
    return _UNSAFE.sub("-", text.lower()).strip("-")
