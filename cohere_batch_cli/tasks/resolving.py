"""Short ids and names: ``cbatch get a1383546`` or ``cbatch get nightly`` find the batch.

As ``git`` and ``docker`` take a unique prefix of an id, every command that takes
a batch (or dataset) id takes a unique prefix of one, or an exact name, too. The
one rule, for every such command:

1. a whole batch id (a UUID) is used as it is;
2. anything else is resolved against the API, never against a cached listing
   (the completion cache serves Tab only: a listing made ten minutes ago does
   not know the batch made a minute ago): a batch token shaped like the start
   of a UUID (``a1383546``) is looked up in a listing at once; any other token
   is first tried as an id by the command's own call where there is one (an
   API may use other ids, and a dataset id is a name with a suffix), and only
   if that answers 404 is it looked up in a listing, by prefix and by exact
   name;
3. one listing per command, however many ids it resolves (``cbatch cancel -``
   with a hundred names lists once);
4. a whole id wins, then exact names, then id prefixes; one match is used,
   and said on stderr; several are refused with the
   candidates (exit 2); none is "not found" (exit 4, the API's own 404 when
   there was one).

A match that was not the exact id is *inexact*: ``cancel`` and ``datasets
delete`` act on one only after a yes at a terminal (``--yes`` skips the
question; off a terminal, without ``--yes``, it is refused), because acting on
the wrong batch cannot be undone.
"""

from __future__ import annotations

import contextlib
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


Entry = tuple[str, str, str]
"""(id, name, status) of one listed batch or dataset."""


class Listing:
    """Every batch (or dataset) of the account, asked for once and only when a token needs it."""

    def __init__(self, client: CohereClient, kind: str) -> None:
        self._client, self._kind = client, kind
        self._entries: list[Entry] | None = None
        self._failed: Exception | None = None

    def entries(self) -> list[Entry]:
        if self._failed is not None:
            raise self._failed  # asked once: a listing that failed is not asked for again
        if self._entries is None:
            try:
                self._entries = list(_listing(self._client, self._kind))
            except Exception as failed:
                self._failed = failed
                raise
        return self._entries

    def match(self, token: str) -> Match:
        """The one match of ``token``, by exact id, id prefix or exact name; NoMatch or AmbiguousMatch."""
        return _one(token, self._kind, _matches(token, self.entries()))


def known(token: str, kind: str) -> Match | None:
    """What ``token`` stands for without asking the API: a whole batch id (a UUID)."""
    if not token.strip(" ."):
        raise UsageError(f"{token!r} is not a valid id")
    if kind == BATCH and UUID.match(token):
        return Match(token, token.lower())
    return None


def listed(client: CohereClient, token: str, kind: str) -> Match:
    """The one match of ``token`` in a listing, by id prefix or exact name; NoMatch or AmbiguousMatch."""
    return Listing(client, kind).match(token)


def _matches(token: str, entries: Iterable[Entry]) -> list[Entry]:
    """Entries ``token`` names: its whole id, else exact names, else id prefixes.

    A name is exact and a prefix is a guess, so names win: ``nightly`` is the
    dataset named so, not also ``nightly-output-x3k`` that starts like its id.
    """
    named: dict[str, Entry] = {}
    prefixed: dict[str, Entry] = {}
    for entry in entries:
        entry_id, name, _ = entry
        if entry_id == token:
            return [entry]  # the whole id wins over a name that happens to equal it
        if name == token:
            named[entry_id] = entry
        elif entry_id.startswith(token):
            prefixed[entry_id] = entry
    return list((named or prefixed).values())


def _one(token: str, kind: str, found: list[Entry]) -> Match:
    plural = {BATCH: "batches", DATASET: "datasets"}[kind]
    if not found:
        listing = "cbatch list --all" if kind == BATCH else "cbatch datasets list"
        raise NoMatch(
            f"no {kind} has the id {token!r}, an id starting with it, or that name; see: {listing}"
        )
    if len(found) > 1:
        shown = "; ".join(f"{i} {name!r} ({status})" for i, name, status in found[:MAX_CANDIDATES])
        more = f"; and {len(found) - MAX_CANDIDATES} more" if len(found) > MAX_CANDIDATES else ""
        raise AmbiguousMatch(
            f"{token!r} matches {len(found)} {plural}: {shown}{more}; give more of the id"
        )
    entry_id, name, _ = found[0]
    return Match(token, entry_id, name, exact=entry_id == token)


def _listing(client: CohereClient, kind: str) -> Iterator[Entry]:
    if kind == BATCH:
        for batch in client.iter_batches(page_size=1000):
            yield batch.id, batch.name, batch.status.label
    else:
        for dataset in client.iter_datasets():  # every page: one answer may be capped
            yield dataset.id, dataset.name, dataset.validation_status


def _accept(match: Match, kind: str, reporter: Reporter, confirm: str | None, yes: bool) -> str:
    """Say what an inexact match stood for, and ask before ``confirm``; returns the id."""
    if match.exact:
        return match.id
    named = f" {match.name!r}" if match.name else ""
    if confirm is None or yes:
        reporter.info(f"{match.token!r} is {kind} {match.id}{named}")
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

    Whole batch ids are used as they are; a token shaped like the start of a
    batch id is looked up in the listing; any other is first asked for as an
    id, and looked up in the listing only if the API does not know it. A token
    nothing matches is passed on as it is: the command's own call says it does
    not exist (with the API's own 404). The listing is asked for once at most.
    """
    from ..api.errors import CohereAPIError

    listing = Listing(client, kind)
    ids: list[str] = []
    for token in tokens:
        match = known(token, kind)
        if match is None and kind == BATCH and UUID_START.match(token):
            match = listing.match(token)
        if match is None and not _exists(client, token, kind):
            with contextlib.suppress(NoMatch, CohereAPIError):  # the command's call says 404
                match = listing.match(token)
        found = token if match is None else _accept(match, kind, reporter, confirm, yes)
        if found not in ids:
            ids.append(found)
    return ids


def _exists(client: CohereClient, token: str, kind: str) -> bool:
    """Whether ``token`` may be a whole id: one quick call, not retried.

    Only a 404 says no. Any other failure says nothing either way: the token is
    passed on, and the command's own call, retried as usual, meets the same
    trouble and reports it its own way.
    """
    from ..api.errors import CohereAPIError, NotFoundError
    from ..api.retry import RetryPolicy

    once = client.with_retry(RetryPolicy.for_polls(0))
    try:
        (once.get_batch if kind == BATCH else once.get_dataset)(token)
    except NotFoundError:
        return False
    except CohereAPIError:
        return True
    return True


def resolve_id(client: CohereClient, token: str, kind: str, reporter: Reporter) -> str:
    """The one id ``token`` stands for (``retry``): a whole id at once, else from a listing."""
    return resolve_ids(client, [token], kind, reporter)[0]


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
