"""Short ids and names: ``cbatch get a1383546`` or ``cbatch get nightly`` find the batch.

As ``git`` and ``docker`` take a unique prefix of an id, every command that takes
a batch (or dataset) id takes a unique prefix of one, or an exact name, too. The
one rule, for every such command:

1. a whole batch id (a UUID) is used as it is;
2. the completion cache (the last ``cbatch list`` or ``datasets list``, ten
   minutes) is searched first: the id itself, ids starting with the text,
   names equal to it;
3. then the API: a batch token shaped like the start of a UUID (``a1383546``)
   is looked up in a listing at once; any other token is first tried as an id
   by the command's own call (an API may use other ids, and a dataset id is a
   name with a suffix), and only if that answers 404 is it looked up in a
   listing, by prefix and by exact name;
4. one match is used, and said on stderr; several are refused with the
   candidates (exit 2); none is "not found" (exit 4, the API's own 404 when
   there was one).

A match that was not the exact id is *inexact*: ``cancel`` and ``datasets
delete`` act on one only after a yes at a terminal (``--yes`` skips the
question; off a terminal, without ``--yes``, it is refused), because acting on
the wrong batch cannot be undone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ..errors import AmbiguousMatch, NoMatch, UsageError

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from .reporting import Reporter

T = TypeVar("T")
BATCH, DATASET = "batch", "dataset"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
UUID_START = re.compile(
    r"^[0-9a-f]{4,8}(-[0-9a-f]{0,4}(-[0-9a-f]{0,4}(-[0-9a-f]{0,4}(-[0-9a-f]{0,12})?)?)?)?$",
    re.IGNORECASE,
)
"""The start of a batch id, at least 4 characters: looked up as a prefix without trying it as an id."""
MAX_CANDIDATES = 10
"""Candidates named in the refusal of an ambiguous match."""


@dataclass(frozen=True)
class Match:
    """What a token stood for: the id, its name, and whether the token was the id itself."""

    token: str
    id: str
    name: str = ""
    exact: bool = True
    source: str = ""
    """``the last listing`` or ``the API``, for the line that says what was matched."""


def known(token: str, kind: str) -> Match | None:
    """What ``token`` stands for without asking the API: a UUID, or the completion cache."""
    from ..completion_cache import cached

    if not token.strip(" ."):
        raise UsageError(f"{token!r} is not a valid id")
    if kind == BATCH and UUID.match(token):
        return Match(token, token.lower())
    entries = cached(kind)
    for entry_id, name, _status in entries:
        if entry_id == token:
            return Match(token, entry_id, name)
    found = _matches(token, entries)
    return _one(token, kind, found, "the last listing") if found else None


def listed(client: CohereClient, token: str, kind: str) -> Match:
    """The one match of ``token`` in a listing, by id prefix or exact name; NoMatch or AmbiguousMatch."""
    return _one(token, kind, _matches(token, _listing(client, kind)), "the API")


def _matches(token: str, entries: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    found: dict[str, tuple[str, str, str]] = {}
    for entry in entries:
        entry_id, name, _ = entry
        if entry_id.startswith(token) or name == token:
            found[entry_id] = entry
            if len(found) > MAX_CANDIDATES:
                break
    return list(found.values())


def _one(token: str, kind: str, found: list[tuple[str, str, str]], source: str) -> Match:
    if not found:
        listing = "cbatch list" if kind == BATCH else "cbatch datasets list"
        raise NoMatch(
            f"no {kind} has the id {token!r}, an id starting with it, or that name; see: {listing}"
        )
    if len(found) > 1:
        shown = "; ".join(f"{i} {name!r} ({status})" for i, name, status in found[:MAX_CANDIDATES])
        more = " and more" if len(found) > MAX_CANDIDATES else ""
        raise AmbiguousMatch(
            f"{token!r} matches {len(found)}{more} {kind}es: {shown}; give more of the id"
        )
    entry_id, name, _ = found[0]
    return Match(token, entry_id, name, exact=False, source=source)


def _listing(client: CohereClient, kind: str) -> Iterator[tuple[str, str, str]]:
    if kind == BATCH:
        for batch in client.iter_batches(page_size=1000):
            yield batch.id, batch.name, batch.status.label
    else:
        for dataset in client.list_datasets():
            yield dataset.id, dataset.name, dataset.validation_status


def _accept(match: Match, kind: str, reporter: Reporter, confirm: str | None, yes: bool) -> str:
    """Say what an inexact match stood for, and ask before ``confirm``; returns the id."""
    if match.exact:
        return match.id
    named = f" {match.name!r}" if match.name else ""
    if confirm is None or yes:
        reporter.info(f"{match.token!r} is {kind} {match.id}{named} (from {match.source})")
    else:  # the question names the match; off a terminal, nothing but the refusal
        answer = reporter.ask(f"{match.token!r} is {kind} {match.id}{named}: {confirm} it? [y/N] ")
        if answer is None:
            raise UsageError(
                f"{match.token!r} is not a whole {kind} id; give the whole id, or --yes to {confirm} what it matches"
            )
        if answer.strip().lower() not in ("y", "yes"):
            raise UsageError("nothing done: not confirmed")
    return match.id


def resolve_ids(
    client: CohereClient,
    tokens: Sequence[str],
    kind: str,
    reporter: Reporter,
    *,
    confirm: str | None = None,
    yes: bool = False,
) -> list[str]:
    """The ids ``tokens`` stand for, each once, in order, before any is acted on (``watch``, ``cancel``).

    A token that is neither known (UUID, cache) nor shaped like the start of a
    batch id is passed on as it is: the command's own call says whether it exists.
    """
    ids: list[str] = []
    for token in tokens:
        match = known(token, kind)
        if match is None and kind == BATCH and UUID_START.match(token):
            match = listed(client, token, kind)
        found = token if match is None else _accept(match, kind, reporter, confirm, yes)
        if found not in ids:
            ids.append(found)
    return ids


def act_on(
    client: CohereClient,
    token: str,
    kind: str,
    reporter: Reporter,
    act: Callable[[str], T],
    *,
    confirm: str | None = None,
    yes: bool = False,
) -> T:
    """``act(id)`` on what ``token`` stands for, trying it as an id first (``get``, ``results``)."""
    from ..api.errors import CohereAPIError, NotFoundError

    match = known(token, kind)
    if match is None and kind == BATCH and UUID_START.match(token):
        match = listed(client, token, kind)
    if match is None:
        try:
            return act(token)
        except NotFoundError as missing:
            try:
                match = listed(client, token, kind)
            except (NoMatch, CohereAPIError):
                raise missing from None
    return act(_accept(match, kind, reporter, confirm, yes))


def choose_running(client: CohereClient, reporter: Reporter) -> list[str]:
    """``cbatch watch`` with no id at a terminal: offer the batches still running, as ``gh run watch`` does."""
    from ..api.models import BatchStatus

    if not reporter.interactive:
        raise UsageError(
            "give one or more batch ids (at a terminal, 'cbatch watch' alone offers the running batches)"
        )
    running = [
        batch
        for batch in client.iter_batches(page_size=100, limit=1000)
        if not batch.status.is_terminal and batch.status != BatchStatus.UNSPECIFIED
    ]
    if not running:
        raise UsageError("no batch is running; watch a finished one by its id")
    reporter.info("Batches still running:")
    for n, batch in enumerate(running, 1):
        reporter.info(f"  {n:>3}  {batch.id}  {batch.status.label:<11}  {batch.name}")
    answer = reporter.ask("Watch which? (numbers, or Enter for all) ")
    if answer is None:
        raise UsageError("no batch chosen")
    if not answer.strip():
        return [b.id for b in running]
    chosen = []
    for word in answer.replace(",", " ").split():
        if not word.isdigit() or not 1 <= int(word) <= len(running):
            raise UsageError(f"{word!r} is not one of the numbers 1 to {len(running)}")
        chosen.append(running[int(word) - 1].id)
    return list(dict.fromkeys(chosen))
