"""Hostile and careless ids and names: escaped, carried intact, never a traceback."""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohere_batch_cli.api.client import CohereClient, RetryPolicy
from cohere_batch_cli.api.errors import InvalidRequestError, NotFoundError
from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY, Cli
from tests.support.fault_server import FaultServer, batch_json

NASTY = st.one_of(
    st.sampled_from(["a/b", "../../v1/datasets", "%2e%2e", "?page_size=1", "#frag", "a b", "ü🙂", "\x00\n\t", "x" * 5000]),
    st.text(min_size=1, max_size=60),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(batch_id=NASTY)
def test_any_id_stays_one_path_segment(fault_server: FaultServer, batch_id: str) -> None:
    fault_server.requests.clear()
    with CohereClient(TEST_KEY, fault_server.base_url, retry=RetryPolicy(retries=0)) as client:
        try:
            client.get_batch(batch_id)
        except InvalidRequestError:
            assert batch_id.strip(" .") == ""
            return
        except NotFoundError:
            pass
    [request] = fault_server.requests
    prefix = "/v2/batches/"
    assert request.path.startswith(prefix)
    segment = request.path[len(prefix):]
    assert "/" not in segment and "?" not in segment and "#" not in segment
    assert unquote(segment) == batch_id


@SETTINGS
@given(name=st.text(max_size=80))
def test_names_travel_intact_in_the_json_body(fault_server: FaultServer, name: str) -> None:
    fault_server.requests.clear()
    fault_server.steady["POST /v2/batches"] = (200, {}, {"batch": batch_json(name=name)})
    with CohereClient(TEST_KEY, fault_server.base_url, retry=RetryPolicy(retries=0)) as client:
        batch = client.create_batch(name=name, input_dataset_id="ds-1", model="m")
    assert json.loads(fault_server.requests[-1].body)["name"] == name
    assert batch.name == name


@pytest.mark.parametrize("bad", ["", ".", "..", "  "])
def test_empty_or_dot_ids_are_usage_errors(fault_cli: Cli, bad: str) -> None:
    result = fault_cli("get", bad, exit_code=ExitCode.USAGE)
    assert "not a valid id" in result.stderr


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch_id=st.text(min_size=1, max_size=40).filter(lambda s: s.strip(" .") and not s.startswith("-")))
def test_cli_answers_any_id_with_one_line(fault_server: FaultServer, batch_id: str) -> None:
    result = Cli(fault_server.base_url, TEST_KEY)("get", batch_id, exit_code=ExitCode.NOT_FOUND)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
