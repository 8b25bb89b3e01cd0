"""Listing, paging, cancelling and the error bodies of the batches API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.sandbox.sandbox_client import KEY, Api, chat_lines


def _all_pages(api: Api, **params: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    token = None
    while True:
        query = dict(params, **({"page_token": token} if token else {}))
        body = api.http.get("/v2/batches", params=query).json()
        seen.extend(body["batches"])
        token = body.get("next_page_token")
        if not token:
            return seen


def test_paging_with_page_size_1_is_newest_first_and_stable(start: Any) -> None:
    api = start(queue_delay=60)
    dataset_id = api.validated(chat_lines(1))
    ids = [api.create(dataset_id, name=f"b{i}")["id"] for i in range(5)]
    first = api.http.get("/v2/batches", params={"page_size": 1}).json()
    assert [b["id"] for b in first["batches"]] == [ids[-1]]
    api.create(dataset_id, name="late")  # created while paging: must not shift the pages
    rest = _all_pages(api, page_size=1, page_token=first["next_page_token"])
    assert [b["id"] for b in rest] == list(reversed(ids[:-1]))
    last = api.http.get("/v2/batches", params={"page_size": 1000}).json()
    assert "next_page_token" not in last and len(last["batches"]) == 6


def test_page_size_rules_and_bad_tokens(shared: Api) -> None:
    assert shared.http.get("/v2/batches", params={"page_size": 5000}).status_code == 200
    assert shared.http.get("/v2/batches", params={"page_size": 0}).status_code == 200
    bad = shared.http.get("/v2/batches", params={"page_token": "garbage!"})
    assert bad.status_code == 400 and bad.json() == {"message": "invalid page_token"}
    assert shared.http.get("/v2/batches", params={"order_by": "name"}).status_code == 400


def test_order_by_updated_at_puts_the_latest_change_first(start: Any) -> None:
    api = start(queue_delay=60)
    dataset_id = api.validated(chat_lines(1))
    a = api.create(dataset_id, name="a")["id"]
    b = api.create(dataset_id, name="b")["id"]
    api.http.post(f"/v2/batches/{a}:cancel")
    listed = api.http.get("/v2/batches", params={"order_by": "updated_at"}).json()["batches"]
    assert [x["id"] for x in listed] == [a, b]


def test_cancel_ends_canceled(start: Any) -> None:
    api = start(records_per_second=50)
    batch = api.create(api.validated(chat_lines(200)))
    r = api.http.post(f"/v2/batches/{batch['id']}:cancel")
    assert r.status_code == 200 and r.json() == {}
    assert api.batch(batch["id"])["status"] == "BATCH_STATUS_CANCELING"
    again = api.http.post(f"/v2/batches/{batch['id']}:cancel")
    assert again.status_code == 200 and again.json() == {}
    assert api.wait_batch(batch["id"])["status"] == "BATCH_STATUS_CANCELED"
    refused = api.http.post(f"/v2/batches/{batch['id']}:cancel")
    assert refused.status_code == 400
    assert "already canceled" in refused.json()["message"]


def test_cancel_can_still_end_completed_when_the_work_finishes_first(start: Any) -> None:
    api = start(records_per_second=100)
    batch = api.create(api.validated(chat_lines(60)))
    api.wait_batch(batch["id"], until=lambda b: b["num_successful_records"] >= 20)
    assert api.http.post(f"/v2/batches/{batch['id']}:cancel").status_code == 200
    done = api.wait_batch(batch["id"])
    assert done["status"] == "BATCH_STATUS_COMPLETED"
    assert done["num_successful_records"] == 60
    assert len(api.results(done["output_dataset_id"])) == 60


def test_cancel_of_a_finished_batch_is_refused(shared: Api) -> None:
    done = shared.wait_batch(shared.create(shared.validated(chat_lines(2)))["id"])
    r = shared.http.post(f"/v2/batches/{done['id']}:cancel")
    assert r.status_code == 400
    assert r.json() == {
        "message": f"batch {done['id']} cannot be canceled: it is already completed"
    }


def test_error_bodies(shared: Api) -> None:
    base = shared.server.base_url
    no_key = httpx.get(f"{base}/v2/batches")
    assert no_key.status_code == 401 and no_key.json() == {"message": "no api key supplied"}
    empty = httpx.get(f"{base}/v2/batches", headers={"Authorization": "Bearer"})
    assert empty.status_code == 401
    missing = shared.http.get("/v2/batches/nope")
    assert missing.status_code == 404 and missing.json() == {"message": "batch nope not found"}
    assert shared.http.post("/v2/batches/nope:cancel").status_code == 404
    route = shared.http.get("/v3/anything")
    assert route.status_code == 404 and "message" in route.json()
    assert shared.http.delete("/v2/batches").status_code == 405
    bad_json = shared.http.post(
        "/v2/batches", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400 and "invalid JSON" in bad_json.json()["message"]
    no_model = shared.http.post("/v2/batches", json={"name": "x", "input_dataset_id": "y"})
    assert no_model.status_code == 400 and no_model.json() == {
        "message": "missing required field: model"
    }
    unknown = shared.http.post(
        "/v2/batches", json={"name": "x", "input_dataset_id": "nope", "model": "m"}
    )
    assert unknown.status_code == 404 and unknown.json() == {"message": "dataset nope not found"}


def test_create_needs_a_validated_batch_input_dataset(start: Any) -> None:
    api = start(validation_delay=30)
    pending = api.upload(chat_lines(1)).json()["id"]
    r = api.http.post("/v2/batches", json={"name": "x", "input_dataset_id": pending, "model": "m"})
    assert r.status_code == 400 and "validation_status: queued" in r.json()["message"]
    other = api.upload(b'{"text": "hi"}\n', type_="embed-input").json()["id"]
    r = api.http.post("/v2/batches", json={"name": "x", "input_dataset_id": other, "model": "m"})
    assert r.status_code == 400 and "not a batch input type" in r.json()["message"]


def test_only_the_configured_keys_are_accepted(start: Any) -> None:
    api = start(api_keys=("right",))
    assert api.http.get("/v2/batches").status_code == 401  # the fixture's key is not "right"
    assert api.http.get("/v2/batches").json() == {"message": "invalid api token"}
    ok = api.http.get("/v2/batches", headers={"Authorization": "Bearer right"})
    assert ok.status_code == 200
    assert KEY != "right"
