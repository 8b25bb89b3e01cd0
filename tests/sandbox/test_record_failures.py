"""Failures with realistic variety, for a client-side retry: transient ones decided afresh
every run, permanent ones tied to the request body, both worded as the real API words them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.sandbox.sandbox_client import chat_lines, embed_lines

REAL_MESSAGES = re.compile(
    r"internal server error, this has been reported to our developers\. id [0-9a-f-]{36}"
    r"|request timed out"
    r"|invalid request: .+"
    r"|too many tokens: size limit exceeded by \d+ tokens\. Try using shorter or fewer inputs\. "
    r"The limit for this model is \d+ tokens\."
)


def _failures(api: Any, data: bytes, **kw: Any) -> dict[str, str]:
    done = api.run(data, **kw)
    return {
        cid: r["error"] for cid, r in api.by_id(done["output_dataset_id"]).items() if r["error"]
    }


def _lines(data: bytes, ids: set[str]) -> bytes:
    return b"".join(
        line + b"\n" for line in data.splitlines() if json.loads(line)["custom_id"] in ids
    )


def test_transient_failures_clear_when_the_failed_records_are_sent_again(start: Any) -> None:
    api = start(transient_fail_rate=0.5, seed=1)
    data = chat_lines(40)
    failing = set(_failures(api, data))
    assert 5 < len(failing) < 35
    rounds = 0
    while failing:
        rounds += 1
        assert rounds <= 12, f"{len(failing)} records still failing after {rounds} retries"
        again = _failures(api, _lines(data, failing))
        assert set(again) <= failing
        failing = set(again)
    assert rounds >= 2


def test_permanent_failures_follow_the_body_in_every_batch_and_sandbox(
    start: Any, tmp_path: Path
) -> None:
    data = chat_lines(60)
    api = start(data_dir=tmp_path / "a", permanent_fail_rate=0.3, seed=4)
    first = _failures(api, data)
    assert 5 < len(first) < 40
    assert _failures(api, data) == first, "the same bodies fail the same way in a new batch"
    renamed = data.replace(b'"custom_id": "r', b'"custom_id": "again-r')
    assert {cid.removeprefix("again-") for cid in _failures(api, renamed)} == set(first)
    twin = start(data_dir=tmp_path / "b", permanent_fail_rate=0.3, seed=4)
    assert _failures(twin, data) == first
    other = start(data_dir=tmp_path / "c", permanent_fail_rate=0.3, seed=5)
    assert set(_failures(other, data)) != set(first)


def test_messages_are_the_api_s_kind_with_no_sandbox_wording(start: Any) -> None:
    api = start(transient_fail_rate=0.3, permanent_fail_rate=0.3, seed=2)
    errors = list(_failures(api, chat_lines(80)).values())
    errors += list(
        _failures(
            api,
            embed_lines([f"text {i}" for i in range(40)]),
            type_="batch-embed-v2-input",
            model="embed-v4.0",
        ).values()
    )
    assert len(errors) > 40
    for error in errors:
        assert REAL_MESSAGES.fullmatch(error), error
        assert not re.search(r"sandbox|transient|permanent|inject", error, re.IGNORECASE), error
    kinds = {e.split(":")[0].split(",")[0] for e in errors}
    assert kinds == {
        "internal server error",
        "request timed out",
        "invalid request",
        "too many tokens",
    }


def test_the_marker_fails_in_every_run_whatever_the_rates(start: Any) -> None:
    api = start(transient_fail_rate=0.0, permanent_fail_rate=0.0)
    for _ in range(2):
        assert _failures(api, chat_lines(5, fail={1, 3})) == {
            "r1": "sandbox: failure requested by [[sandbox:fail]] marker",
            "r3": "sandbox: failure requested by [[sandbox:fail]] marker",
        }
