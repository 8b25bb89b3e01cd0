"""The retry rules, against a server on loopback that misbehaves on a plan."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cohere_batch_cli.api import errors
from cohere_batch_cli.api.client import CohereClient, Timeouts
from cohere_batch_cli.api.retry import RetryPolicy, server_requested_wait
from tests.conftest import TEST_KEY
from tests.support.fault_server import HTML_502, RESET, SLOW, TRUNCATE, FaultServer, batch_json

GET_B1 = "GET /v2/batches/b-1"
OK_B1 = (200, {}, {"batch": batch_json()})


def client_for(server: FaultServer, retries: int = 3, **kw: float) -> CohereClient:
    policy = RetryPolicy(
        retries=retries, initial=0.01, maximum=0.05, max_total=kw.pop("max_total", 10)
    )
    return CohereClient(
        TEST_KEY,
        server.base_url,
        retry=policy,
        timeouts=Timeouts(connect=2, read=kw.pop("read", 5)),
    )


@pytest.mark.parametrize(
    "fault",
    [
        (429, {"Retry-After": "0"}, {"message": "slow down"}),
        (503, {}, {"message": "unavailable"}),
        (500, {}, {"message": "boom"}),
        (408, {}, ""),
        HTML_502,
        RESET,
        TRUNCATE,
        (200, {"Content-Type": "text/html"}, "<html>not json</html>"),
    ],
    ids=["429", "503", "500", "408", "html-502", "reset", "truncated", "html-200"],
)
def test_transient_faults_are_retried_then_succeed(
    fault_server: FaultServer, fault: object
) -> None:
    fault_server.steady[GET_B1] = OK_B1
    fault_server.plans[GET_B1] = [fault, fault]
    with client_for(fault_server) as client:
        batch = client.get_batch("b-1")
    assert batch.id == "b-1" and batch.input_tokens == 1234
    assert fault_server.count(GET_B1) == 3


def test_retry_after_is_honoured(fault_server: FaultServer) -> None:
    fault_server.steady[GET_B1] = OK_B1
    fault_server.plans[GET_B1] = [(429, {"Retry-After": "1"}, {"message": "slow down"})]
    started = time.monotonic()
    with client_for(fault_server) as client:
        client.get_batch("b-1")
    assert time.monotonic() - started >= 0.95


def test_the_environment_base_is_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CBATCH_RETRY_BASE", "0.25")
    assert RetryPolicy.from_env().initial == 0.25
    monkeypatch.setenv("CBATCH_RETRY_BASE", "3")
    # read once: every later policy keeps the first value, whatever the environment says now
    assert RetryPolicy.from_env(2).initial == 0.25 and RetryPolicy.from_env(2).retries == 2
    assert RetryPolicy.for_parts().initial == 0.25 and RetryPolicy.for_polls().initial == 0.25
    RetryPolicy.reset_env()  # the documented way for a test that changes it in-process
    assert RetryPolicy.from_env().initial == 3.0
    assert (
        RetryPolicy.for_polls().initial == 0.5
    )  # a poll's quick retry never waits longer than 0.5 s
    monkeypatch.setenv("CBATCH_RETRY_BASE", "soon")
    RetryPolicy.reset_env()
    assert (
        RetryPolicy.from_env().initial == 1.0 and RetryPolicy.for_parts().initial == 0.5
    )  # not a number: the defaults


def test_a_poll_policy_fails_fast() -> None:
    assert RetryPolicy.for_polls() == RetryPolicy(
        retries=1, initial=0.01, maximum=1.0, max_total=5.0
    )
    assert RetryPolicy.for_polls(0).retries == 0 and RetryPolicy.for_polls(9).retries == 1


def test_the_wait_honours_the_server_first_and_the_total_bound_always() -> None:
    policy = RetryPolicy(retries=3, initial=1.0, maximum=4.0, max_total=10.0, jitter=0.0)
    assert [policy.next_wait(n, 0.0) for n in (1, 2, 3, 4)] == [
        1.0,
        2.0,
        4.0,
        None,
    ]  # doubling, then no retry left
    assert policy.next_wait(1, 0.0, requested=7.0) == 7.0  # Retry-After wins over the schedule
    assert policy.next_wait(1, 5.0, requested=7.0) is None  # ...but never past max_total
    assert policy.step(100_000) == 4.0  # a watch failing for hours: capped, never an overflow
    jittered = RetryPolicy(initial=1.0, maximum=4.0)
    assert all(1.0 <= jittered.backoff(2) <= 2.0 for _ in range(50))  # half to all of the step


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert server_requested_wait({"retry-after-ms": "250", "retry-after": "30"}) == 0.25
    assert (
        server_requested_wait({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0)
        == 10.0
    )
    assert server_requested_wait({"x-ratelimit-reset": "3"}) == 3.0
    assert server_requested_wait({}) is None


def test_gives_up_after_the_retry_count_with_the_api_message(fault_server: FaultServer) -> None:
    fault_server.steady[GET_B1] = (503, {"x-request-id": "req-42"}, {"message": "overloaded"})
    with client_for(fault_server, retries=2) as client, pytest.raises(errors.ServerError) as info:
        client.get_batch("b-1")
    assert fault_server.count(GET_B1) == 3
    assert info.value.status_code == 503
    assert info.value.api_message == "overloaded"
    assert info.value.request_id == "req-42"


def test_total_retry_time_is_bounded(fault_server: FaultServer) -> None:
    fault_server.steady[GET_B1] = (429, {"Retry-After": "30"}, {"message": "later"})
    started = time.monotonic()
    with (
        client_for(fault_server, retries=5, max_total=5) as client,
        pytest.raises(errors.RateLimitError),
    ):
        client.get_batch("b-1")
    assert time.monotonic() - started < 2, "a wait past the total budget must end the loop at once"
    assert fault_server.count(GET_B1) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, errors.BadRequestError), (401, errors.AuthenticationError), (403, errors.AuthenticationError),
     (498, errors.AuthenticationError), (404, errors.NotFoundError), (422, errors.BadRequestError)],
)  # fmt: skip
def test_client_errors_are_not_retried(fault_server: FaultServer, status: int, error: type) -> None:
    fault_server.steady[GET_B1] = (status, {}, {"message": "nope"})
    with client_for(fault_server) as client, pytest.raises(error) as info:
        client.get_batch("b-1")
    assert fault_server.count(GET_B1) == 1
    assert "nope" in str(info.value)


def test_a_slow_answer_times_out_as_a_network_error(fault_server: FaultServer) -> None:
    fault_server.slow_seconds = 1.5
    fault_server.steady[GET_B1] = SLOW
    with (
        client_for(fault_server, retries=0, read=0.3) as client,
        pytest.raises(errors.RequestTimeout),
    ):
        client.get_batch("b-1")


def test_wrong_shape_is_an_unexpected_response(fault_server: FaultServer) -> None:
    fault_server.steady[GET_B1] = (200, {}, {"not_a_batch": 1})
    with client_for(fault_server) as client, pytest.raises(errors.UnexpectedResponseError):
        client.get_batch("b-1")


# -- create never creates twice ------------------------------------------------


def _created(created_at: str = "2099-01-01T00:00:00Z") -> dict[str, object]:
    return batch_json("b-new", name="nightly", input_dataset_id="ds-1", model="command-r",
                      status="BATCH_STATUS_QUEUED", created_at=created_at)  # fmt: skip


@pytest.mark.parametrize(
    "fault", [RESET, (500, {}, {"message": "oops"}), TRUNCATE], ids=["reset", "500", "truncated"]
)
def test_create_after_a_lost_answer_finds_the_batch_instead_of_posting_again(
    fault_server: FaultServer, fault: object
) -> None:
    # The server created the batch but the answer was lost: the listing shows it.
    fault_server.plans["POST /v2/batches"] = [fault]
    fault_server.steady["POST /v2/batches"] = (200, {}, {"batch": _created()})
    fault_server.steady["GET /v2/batches"] = (200, {}, {"batches": [_created()]})
    with client_for(fault_server) as client:
        batch = client.create_batch(name="nightly", input_dataset_id="ds-1", model="command-r")
    assert batch.id == "b-new"
    assert fault_server.count("POST /v2/batches") == 1


def test_create_posts_again_when_nothing_was_created(fault_server: FaultServer) -> None:
    old = _created(created_at="2020-01-01T00:00:00Z")  # same name, but long before this attempt
    fault_server.plans["POST /v2/batches"] = [RESET]
    fault_server.steady["POST /v2/batches"] = (200, {}, {"batch": _created()})
    fault_server.steady["GET /v2/batches"] = (200, {}, {"batches": [old]})
    with client_for(fault_server) as client:
        batch = client.create_batch(name="nightly", input_dataset_id="ds-1", model="command-r")
    assert batch.created_at and batch.created_at.year == 2099
    assert fault_server.count("POST /v2/batches") == 2


def test_create_after_429_retries_without_looking(fault_server: FaultServer) -> None:
    fault_server.plans["POST /v2/batches"] = [(429, {"Retry-After": "0"}, {"message": "later"})]
    fault_server.steady["POST /v2/batches"] = (200, {}, {"batch": _created()})
    with client_for(fault_server) as client:
        client.create_batch(name="nightly", input_dataset_id="ds-1", model="command-r")
    assert fault_server.count("POST /v2/batches") == 2
    assert fault_server.count("GET /v2/batches") == 0


def test_requests_carry_auth_client_name_and_user_agent(fault_server: FaultServer) -> None:
    fault_server.steady[GET_B1] = OK_B1
    with client_for(fault_server) as client:
        client.get_batch("b-1")
    headers = {k.lower(): v for k, v in fault_server.requests[0].headers.items()}
    assert headers["authorization"] == f"Bearer {TEST_KEY}"
    assert headers["x-client-name"] == "cbatch"
    assert headers["user-agent"].startswith("cbatch/")


def test_ids_are_path_escaped(fault_server: FaultServer) -> None:
    fault_server.steady["GET /v2/batches/a%2F..%2Fb%3Fc%23d"] = OK_B1
    with client_for(fault_server) as client:
        client.get_batch("a/../b?c#d")
    assert fault_server.requests[0].path == "/v2/batches/a%2F..%2Fb%3Fc%23d"


# -- what an error says about a request that may have been acted on ----------------


def test_a_lost_upload_answer_says_a_dataset_may_exist_without_naming_a_command(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.steady["POST /v1/datasets"] = (500, {}, {"message": "oops"})
    path = tmp_path / "in.jsonl"
    path.write_text('{"custom_id": "a", "body": {"messages": []}}\n')
    with client_for(fault_server) as client, pytest.raises(errors.ServerError) as info:
        client.upload_dataset(path, name="n", dataset_type="batch-chat-v2-input")
    assert (
        fault_server.count("POST /v1/datasets") == 1
    )  # an upload whose fate is unknown is not repeated
    assert info.value.may_have_created == "dataset" and info.value.hint is None


def test_a_refused_create_says_nothing_was_created(fault_server: FaultServer) -> None:
    fault_server.steady["POST /v2/batches"] = (429, {"Retry-After": "0"}, {"message": "later"})
    with (
        client_for(fault_server, retries=1) as client,
        pytest.raises(errors.RateLimitError) as info,
    ):
        client.create_batch(name="nightly", input_dataset_id="ds-1", model="command-r")
    assert info.value.may_have_created is None  # 429 is a refusal: the server did not act


def test_a_failed_look_up_after_a_lost_create_says_a_batch_may_exist(
    fault_server: FaultServer,
) -> None:
    fault_server.plans["POST /v2/batches"] = [RESET]
    fault_server.steady["GET /v2/batches"] = (401, {}, {"message": "key revoked"})
    with client_for(fault_server) as client, pytest.raises(errors.AuthenticationError) as info:
        client.create_batch(name="nightly", input_dataset_id="ds-1", model="command-r")
    assert info.value.may_have_created == "batch"


def test_an_unreadable_created_answer_says_a_batch_may_exist(fault_server: FaultServer) -> None:
    fault_server.steady["POST /v2/batches"] = (200, {}, {"not_a_batch": True})
    with client_for(fault_server) as client, pytest.raises(errors.UnexpectedResponseError) as info:
        client.create_batch(name="nightly", input_dataset_id="ds-1", model="command-r")
    assert info.value.may_have_created == "batch"


@pytest.mark.parametrize("url", ["ftp://example.com", "http://", "http://[::1"])
def test_a_bad_base_url_says_what_is_wrong_and_names_no_command(url: str) -> None:
    with pytest.raises(errors.InvalidBaseURL) as info:
        CohereClient(TEST_KEY, url)
    assert (
        "base URL" in str(info.value)
        and "cbatch" not in str(info.value)
        and info.value.hint is None
    )
