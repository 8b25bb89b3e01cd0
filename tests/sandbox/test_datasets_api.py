"""The datasets API: list filters, get, delete, usage, upload errors and signed part links."""

from __future__ import annotations

from typing import Any

from tests.sandbox.sandbox_client import Api, chat_lines


def test_list_filters_and_usage(start: Any) -> None:
    api = start()
    a = api.validated(chat_lines(2), name="a")
    b = api.validated(
        b'{"custom_id":"e","body":{"texts":["x"]}}\n', type_="batch-embed-v2-input", name="b"
    )
    everything = api.http.get("/v1/datasets").json()["datasets"]
    assert [d["id"] for d in everything] == [b, a]
    chat = api.http.get("/v1/datasets", params={"datasetType": "batch-chat-v2-input"}).json()[
        "datasets"
    ]
    assert [d["id"] for d in chat] == [a]
    page = api.http.get("/v1/datasets", params={"limit": 1, "offset": 1}).json()["datasets"]
    assert [d["id"] for d in page] == [a]
    failed = api.http.get("/v1/datasets", params={"validationStatus": "failed"}).json()["datasets"]
    assert failed == []
    created_b = api.dataset(b)["created_at"]
    before = api.http.get("/v1/datasets", params={"before": created_b}).json()["datasets"]
    assert [d["id"] for d in before] == [a]
    assert api.http.get("/v1/datasets", params={"after": "not a date"}).status_code == 400
    usage = api.http.get("/v1/datasets/usage").json()
    assert usage["organization_usage"] > 0 and isinstance(usage["organization_usage"], int)
    assert api.http.delete(f"/v1/datasets/{a}").json() == {}
    assert api.http.get(f"/v1/datasets/{a}").status_code == 404
    assert api.http.delete(f"/v1/datasets/{a}").status_code == 404


def test_upload_errors(shared: Api) -> None:
    no_name = shared.http.post(
        "/v1/datasets", params={"type": "batch-chat-v2-input"}, files={"data": ("f", b"x")}
    )
    assert no_name.status_code == 400 and "name" in no_name.json()["message"]
    no_type = shared.http.post("/v1/datasets", params={"name": "n"}, files={"data": ("f", b"x")})
    assert no_type.status_code == 400 and "type" in no_type.json()["message"]
    bad_type = shared.upload(b"x", type_="batch-chat-v9-input")
    assert bad_type.status_code == 400 and "unknown dataset type" in bad_type.json()["message"]
    no_file = shared.http.post(
        "/v1/datasets",
        params={"name": "n", "type": "batch-chat-v2-input"},
        files={"other": ("f", b"x")},
    )
    assert no_file.status_code == 400 and '"data"' in no_file.json()["message"]


def test_validation_moves_through_queued_and_processing(start: Any) -> None:
    api = start(validation_delay=0.6)
    dataset_id = api.upload(chat_lines(3)).json()["id"]
    seen = {api.dataset(dataset_id)["validation_status"]}
    final = api._wait(
        lambda: api.dataset(dataset_id),
        lambda d: seen.add(d["validation_status"]) or d["validation_status"] == "validated",
        5,
    )
    assert final["validation_status"] == "validated"
    assert {"queued", "processing", "validated"} <= seen


def test_part_links_need_no_key_and_check_their_signature(shared: Api) -> None:
    done = shared.wait_batch(shared.create(shared.validated(chat_lines(3)))["id"])
    assert len(shared.results(done["output_dataset_id"])) == 3
    downloads = [
        entry for entry in shared.server.request_log if entry[1].startswith("/_sandbox/parts/")
    ]
    assert downloads and all("authorization" not in headers for _, _, headers in downloads)
    url = shared.wait_dataset(done["output_dataset_id"])["dataset_parts"][0]["url"]
    forged = url[: url.index("X-Goog-Signature=") + 17] + "0" * 64
    import httpx

    assert httpx.get(forged).status_code == 403
    assert httpx.get(url).status_code == 200


def test_a_record_using_every_field_of_the_chat_request_in_the_spec_runs(shared: Api) -> None:
    """The sandbox's check is the local one: what the spec allows, response_format included, runs."""
    import json

    from tests.test_validate import EVERY_SPEC_FIELD

    # response_format does not go with documents (bodies.yaml, ResponseFormatV2: "Limitation"):
    # each runs beside every other field, and the two together fail the record.
    no_format = {k: v for k, v in EVERY_SPEC_FIELD.items() if k != "response_format"}
    no_documents = {k: v for k, v in EVERY_SPEC_FIELD.items() if k != "documents"}
    lines = [
        {"custom_id": "no-format", "body": no_format},
        {"custom_id": "no-documents", "body": no_documents},
        {"custom_id": "all", "body": EVERY_SPEC_FIELD},
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    dataset_id = shared.validated(data)
    assert shared.dataset(dataset_id)["validation_warnings"] == []
    done = shared.run_existing(dataset_id)
    assert done["status"] == "BATCH_STATUS_COMPLETED" and done["num_successful_records"] == 2
    errors = {cid: r["error"] for cid, r in shared.by_id(done["output_dataset_id"]).items()}
    assert errors == {
        "no-format": "",
        "no-documents": "",
        "all": "invalid request: response_format is not supported with documents or tools",
    }


def test_fields_clients_send_that_the_spec_lacks_are_kept_with_one_warning_a_field(
    shared: Api,
) -> None:
    """CONTRACT.md: max_input_tokens, reasoning, thinking_budget, return_prompt are accepted
    with a warning, never refused: one warning a field, counting the records kept."""
    import json

    def record(custom_id: str, **fields: Any) -> dict[str, Any]:
        return {
            "custom_id": custom_id,
            "body": {"messages": [{"role": "user", "content": "x"}], **fields},
        }

    lines = [
        record("a"),
        record("b", return_prompt=True, reasoning={"effort": "low"}),
        record("c", return_prompt=False, max_input_tokens=9, thinking_budget=100),
        record("d", return_prompt=True),
        record("e", return_prompt="yes"),  # not a boolean: dropped, so not counted
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    dataset = shared.dataset(shared.validated(data, skip_malformed_input="true"))
    assert dataset["dataset_parts"][0]["num_rows"] == 4
    assert dataset["validation_warnings"] == [
        "dropped line 5: body.return_prompt must be true or false",
        "body.max_input_tokens is not a field of the API's chat request: accepted and ignored (1 record, first on line 3)",
        "body.reasoning is not a field of the API's chat request: accepted and ignored (1 record, first on line 2)",
        "body.return_prompt is not a field of the API's chat request: accepted and ignored (3 records, first on line 2)",
        "body.thinking_budget is not a field of the API's chat request: accepted and ignored (1 record, first on line 3)",
    ]  # fmt: skip
    done = shared.run_existing(dataset["id"])
    assert done["status"] == "BATCH_STATUS_COMPLETED" and done["num_successful_records"] == 4
