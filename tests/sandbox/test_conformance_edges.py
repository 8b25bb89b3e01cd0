"""Edges a schemathesis run against openapi.yaml found, kept as regressions.

The run itself stays out of the suite (the project must not read ../shared);
these pin what it found: no 500 on absurd numbers, Allow headers on 405,
'usage' never taken for a dataset id, malformed dates refused.
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import TEST_KEY


@pytest.fixture
def http(sandbox: object) -> httpx.Client:
    with httpx.Client(
        base_url=sandbox.base_url, headers={"Authorization": f"Bearer {TEST_KEY}"}
    ) as client:  # type: ignore[attr-defined]
        yield client


@pytest.mark.parametrize(
    "path",
    [
        "/v1/datasets?limit=1.0760513353497095e%2B251",
        "/v2/batches?page_size=2147483648",
        "/v1/datasets?offset=1e400",
    ],
)
def test_absurd_numbers_are_a_400_not_a_500(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 400 and "32-bit integer" in response.json()["message"]


def test_an_empty_date_is_refused(http: httpx.Client) -> None:
    response = http.get("/v1/datasets", params={"before": ""})
    assert response.status_code == 400 and "RFC 3339" in response.json()["message"]


def test_usage_is_not_a_dataset_id(http: httpx.Client) -> None:
    response = http.delete("/v1/datasets/usage")
    assert response.status_code == 405 and response.headers["allow"] == "GET"


def test_405_names_the_allowed_methods(http: httpx.Client) -> None:
    wrong_verb = http.post("/v2/batches/some-id")
    assert wrong_verb.status_code == 405 and "GET" in wrong_verb.headers["allow"], wrong_verb.text
    get_on_cancel = http.get("/v2/batches/some-id:cancel")
    assert get_on_cancel.status_code == 405 and get_on_cancel.headers["allow"] == "POST"
    assert get_on_cancel.json()["message"].startswith("method not allowed")


def test_cancel_routes_on_the_id_before_the_colon(http: httpx.Client) -> None:
    response = http.post("/v2/batches/no-such-batch:cancel")
    assert response.status_code == 404 and "no-such-batch" in response.json()["message"]
