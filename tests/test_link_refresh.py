"""Part links that expire mid-download: renewed by reading the dataset again, resumed with Range.

Against the misbehaving part server on loopback (tests/support/part_server.py); the
refresh callback is what ``tasks/fetching.py`` passes in, here a function that hands
out the same parts under a new 'signature' and counts its calls.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from cohere_batch_cli.api.models import DatasetPart
from cohere_batch_cli.results import ResultsError, download_results
from cohere_batch_cli.results.parts import link_expired
from tests.support.part_server import DENY, DROP, FORBID, PartServer
from tests.test_results import avro_bytes, read_jsonl, records


@pytest.fixture
def server() -> Iterator[PartServer]:
    with PartServer() as srv:
        yield srv


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


class Dataset:
    """Parts on the part server; ``refresh()`` reads them again with fresh signatures."""

    def __init__(
        self,
        server: PartServer,
        per_part: list[list[dict[str, Any]]],
        plans: dict[int, list[str]],
        query: str = "",
    ) -> None:
        self.server = server
        self.names = [f"part-{i}.avro" for i in range(len(per_part))]
        for i, recs in enumerate(per_part):
            server.add(self.names[i], avro_bytes(recs), plans.get(i))
        self.query = query
        self.refreshes = 0
        self.lock = threading.Lock()

    def parts(self, signature: str) -> list[DatasetPart]:
        host = self.server.url("x").split("/parts/")[0]
        query = self.query or f"X-Signature={signature}"
        return [
            DatasetPart(
                {"id": f"p{i}", "name": name, "index": i, "url": f"{host}/parts/{name}?{query}"}
            )
            for i, name in enumerate(self.names)
        ]

    def refresh(self) -> list[DatasetPart]:
        with self.lock:
            self.refreshes += 1
            return self.parts(f"fresh-{self.refreshes}")


def test_a_link_refused_mid_part_is_renewed_and_the_part_resumes_where_it_stopped(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    per_part = [records("a", 3000, fail_every=0), records("b", 50)]
    data = Dataset(server, per_part, {0: [DROP, FORBID]})
    out = tmp_path / "r.jsonl"
    summary = download_results(data.parts("first"), out, http=http, refresh_links=data.refresh)
    assert [r["custom_id"] for r in read_jsonl(out)] == [
        r["custom_id"] for recs in per_part for r in recs
    ]
    assert data.refreshes == 1 and summary.link_refreshes == 1
    dropped, refused, resumed = server.requests_for("part-0.avro")
    assert (dropped.step, refused.step, resumed.step) == ("drop", "forbid", "ok")
    assert (
        refused.headers["Range"] == resumed.headers["Range"] != "bytes=0-"
    )  # resumed, not restarted
    assert (refused.query, resumed.query) == ("X-Signature=first", "X-Signature=fresh-1")
    assert len(server.requests_for("part-1.avro")) == 1, "a finished part is not fetched again"


def test_one_read_of_the_dataset_renews_every_part(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    data = Dataset(
        server, [records(f"p{i}", 20) for i in range(4)], {i: [FORBID] for i in range(4)}
    )

    def refresh_once_all_were_refused() -> list[DatasetPart]:
        deadline = time.monotonic() + 5
        while (
            len(server.requests) < 4 and time.monotonic() < deadline
        ):  # every part holds a refused link
            time.sleep(0.01)
        return data.refresh()

    download_results(
        data.parts("old"),
        tmp_path / "r.jsonl",
        http=http,
        concurrency=4,
        refresh_links=refresh_once_all_were_refused,
    )
    assert data.refreshes == 1
    assert [r.query for r in server.requests if r.step == "ok"] == ["X-Signature=fresh-1"] * 4
    assert len(read_jsonl(tmp_path / "r.jsonl")) == 80


def test_a_fresh_link_refused_before_a_byte_is_final(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    data = Dataset(server, [records("f", 10)], {0: [FORBID, FORBID, FORBID]})
    with pytest.raises(ResultsError) as caught:
        download_results(
            data.parts("old"), tmp_path / "r.jsonl", http=http, refresh_links=data.refresh
        )
    message = str(caught.value)
    assert "refused its link (403)" in message and "so was the fresh link" in message
    assert "X-Signature" not in message and "/parts/" not in message, (
        "a link never appears in a message"
    )
    assert data.refreshes == 1 and len(server.requests) == 2
    assert list(tmp_path.iterdir()) == []


def test_a_fresh_link_that_delivered_bytes_may_be_renewed_once_more(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    big = records("g", 3000, fail_every=0)
    data = Dataset(server, [big], {0: [FORBID, DROP, FORBID]})
    download_results(data.parts("old"), tmp_path / "r.jsonl", http=http, refresh_links=data.refresh)
    assert data.refreshes == 2
    assert [r.step for r in server.requests] == ["forbid", "drop", "forbid", "ok"]
    assert [r["custom_id"] for r in read_jsonl(tmp_path / "r.jsonl")] == [
        r["custom_id"] for r in big
    ]


def test_a_plain_403_on_a_live_link_is_not_an_expiry(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    data = Dataset(server, [records("d", 5)], {0: [DENY]})
    with pytest.raises(ResultsError, match="refused the link"):
        download_results(
            data.parts("old"), tmp_path / "r.jsonl", http=http, refresh_links=data.refresh
        )
    assert data.refreshes == 0


def test_any_refusal_of_a_link_past_its_signed_expiry_renews_it(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    signed = (datetime.now(timezone.utc) - timedelta(hours=2)).strftime("%Y%m%dT%H%M%SZ")
    data = Dataset(
        server,
        [records("e", 5)],
        {0: [DENY]},
        query=f"X-Goog-Date={signed}&X-Goog-Expires=3600&X-Goog-Signature=ab",
    )
    download_results(data.parts("old"), tmp_path / "r.jsonl", http=http, refresh_links=data.refresh)
    assert data.refreshes == 1 and len(read_jsonl(tmp_path / "r.jsonl")) == 5


def test_the_refresh_callbacks_own_error_passes_through(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    class Gone(Exception):
        pass

    def refresh() -> list[DatasetPart]:
        raise Gone("the dataset expired")

    data = Dataset(server, [records("x", 5)], {0: [FORBID]})
    with pytest.raises(Gone):
        download_results(data.parts("old"), tmp_path / "r.jsonl", http=http, refresh_links=refresh)
    assert list(tmp_path.iterdir()) == []


def test_a_dataset_that_lost_a_part_is_an_error_not_a_short_file(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    data = Dataset(server, [records("y", 5), records("z", 5)], {1: [FORBID]})
    with pytest.raises(ResultsError, match="changed during the download: part 1"):
        download_results(
            data.parts("old"),
            tmp_path / "r.jsonl",
            http=http,
            refresh_links=lambda: data.parts("n")[:1],
        )


def test_link_expiry_is_read_from_the_signed_query() -> None:
    now = time.time()
    stamp = datetime.fromtimestamp(now - 100, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    assert (
        link_expired(f"https://s/o?X-Goog-Date={stamp}&X-Goog-Expires=60&X-Goog-Signature=s", now)
        is True
    )
    assert link_expired(f"https://s/o?X-Goog-Date={stamp}&X-Goog-Expires=3600", now) is False
    assert (
        link_expired(f"https://s/o?X-Amz-Date={stamp}&X-Amz-Expires=60&X-Amz-Signature=s", now)
        is True
    )
    assert link_expired(f"https://s/o?Expires={int(now) + 60}&Signature=s", now) is False
    assert link_expired("https://s/o?X-Goog-Date=soon&X-Goog-Expires=60", now) is None
    assert link_expired("https://s/o?sig=abc", now) is None


def test_records_in_any_order_are_written_as_each_part_holds_them(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    """Shuffled, with the recorded empty-string error on success: the same bytes each time."""
    shuffled = [
        [{"custom_id": f"r{i}", "body": json.dumps({"i": i}), "error": ""} for i in order]
        for order in ([7, 2, 9, 0], [5, 1], [8, 3, 6, 4])
    ]
    data = Dataset(server, shuffled, {})
    written = []
    for concurrency in (1, 3):
        out = tmp_path / f"r{concurrency}.jsonl"
        summary = download_results(data.parts("s"), out, http=http, concurrency=concurrency)
        written.append(out.read_bytes())
        assert (summary.succeeded, summary.failed) == (10, 0)
    assert written[0] == written[1]
    lines = [json.loads(line) for line in written[0].decode().splitlines()]
    assert [r["custom_id"] for r in lines] == [f"r{i}" for i in (7, 2, 9, 0, 5, 1, 8, 3, 6, 4)]
    assert all(set(r) == {"custom_id", "body"} for r in lines), "an empty error is a success"
