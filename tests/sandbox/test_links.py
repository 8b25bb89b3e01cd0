"""Signed part links that expire like a signed-URL store's (CONTRACT.md, "What real clients
have seen": Part links), fetched without a key, resumable with Range, never logged."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.sandbox.sandbox_client import chat_lines, read_avro


def _part_url(api: Any, dataset_id: str) -> str:
    return str(api.wait_dataset(dataset_id)["dataset_parts"][0]["url"])


def _xml_code(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/xml"), response.headers
    assert response.text.startswith("<?xml"), response.text
    return response.text.split("<Code>", 1)[1].split("</Code>", 1)[0]


def test_a_link_carries_its_date_lifetime_and_signature(shared: Any) -> None:
    done = shared.run(chat_lines(2))
    query = parse_qs(urlsplit(_part_url(shared, done["output_dataset_id"])).query)
    assert query["X-Goog-Expires"] == ["3600"]
    assert query["X-Goog-Algorithm"] == ["GOOG4-HMAC-SHA256"]
    assert len(query["X-Goog-Date"][0]) == len("20250305T145925Z") and query["X-Goog-Date"][
        0
    ].endswith("Z")
    assert len(query["X-Goog-Signature"][0]) == 64


def test_an_expired_link_is_a_storage_error_and_a_fresh_get_gives_a_working_one(
    start: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cohere_batch_cli.sandbox")
    api = start(link_ttl=3)  # long enough that a fresh link outlives a slow, loaded CI machine
    done = api.run(chat_lines(3), keep_original_file="true")
    links = [p["url"] for p in api.wait_dataset(done["output_dataset_id"])["dataset_parts"]]
    links += [
        p[k]
        for p in api.dataset(done["input_dataset_id"])["dataset_parts"]
        for k in ("url", "original_url")
    ]
    time.sleep(4.05)  # signed to the second, so a 3 s link is surely dead 4 s on
    for link in links:
        expired = httpx.get(link)
        assert expired.status_code == 400 and _xml_code(expired) == "ExpiredToken"
        assert "The provided token has expired" in expired.text
    fresh = _part_url(api, done["output_dataset_id"])
    assert fresh != links[0]
    assert len(read_avro(httpx.get(fresh))) == 3

    # no link is ever logged: not by the sandbox's log, not by the tests' request log
    assert caplog.records, "the sandbox logged its work"
    signatures = [parse_qs(urlsplit(link).query)["X-Goog-Signature"][0] for link in [*links, fresh]]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [s for s in signatures if s in logged]
    kept = "\n".join(path for _, path, _ in api.server.request_log)
    assert "/_sandbox/parts/" in kept and "X-Goog-Signature=REDACTED" in kept
    assert not [s for s in signatures if s in kept]


def test_links_live_their_whole_ttl(start: Any) -> None:
    api = start(link_ttl=2)
    done = api.run(chat_lines(2))
    url = _part_url(api, done["output_dataset_id"])
    time.sleep(0.6)  # signed to the second: a 2 s link lives more than 1 s
    assert httpx.get(url).status_code == 200


@pytest.mark.parametrize(
    ("edit", "status", "code"),
    [
        (
            lambda q: q.replace("X-Goog-Expires=3600", "X-Goog-Expires=7200"),
            403,
            "SignatureDoesNotMatch",
        ),
        (lambda q: q[: q.index("X-Goog-Signature=") + 17] + "0" * 64, 403, "SignatureDoesNotMatch"),
        (lambda q: q[: q.index("&X-Goog-Signature=")], 403, "AccessDenied"),
        (
            lambda q: q.replace("X-Goog-Expires=3600", "X-Goog-Expires=soon"),
            400,
            "MalformedSecurityHeader",
        ),
    ],
    ids=["lifetime-edited", "forged", "unsigned", "malformed"],
)
def test_tampered_links_are_refused_as_a_store_would(
    shared: Any, edit: Any, status: int, code: str
) -> None:
    done = shared.run(chat_lines(1))
    url = _part_url(shared, done["output_dataset_id"])
    refused = httpx.get(edit(url))
    assert refused.status_code == status and _xml_code(refused) == code


def test_a_gone_dataset_is_no_such_key(shared: Any) -> None:
    done = shared.run(chat_lines(1))
    url = _part_url(shared, done["output_dataset_id"])
    assert shared.http.delete(f"/v1/datasets/{done['output_dataset_id']}").status_code == 200
    gone = httpx.get(url)
    assert gone.status_code == 404 and _xml_code(gone) == "NoSuchKey"


def test_range_requests_resume_a_part_on_a_live_link(shared: Any) -> None:
    done = shared.run(chat_lines(50))
    url = _part_url(shared, done["output_dataset_id"])
    whole = httpx.get(url).content
    tail = httpx.get(url, headers={"Range": "bytes=100-"})
    assert tail.status_code == 206
    assert tail.headers["content-range"] == f"bytes 100-{len(whole) - 1}/{len(whole)}"
    assert whole[:100] + tail.content == whole
