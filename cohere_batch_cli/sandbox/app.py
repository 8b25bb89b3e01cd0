"""The HTTP routes of the sandbox: batches (v2), datasets and models (v1), and storage.

Storage is what the real service keeps outside its API: part downloads behind signed,
expiring links (:mod:`.links`) and the public tokenizer file, both without a key.

``create_app(settings)`` builds a standalone app that owns its store and worker (started
and stopped by the ASGI lifespan); :class:`.server.SandboxServer` passes its own so it
can start, stop and inspect them. Handlers are thin: parse, ask the store, render with
:mod:`.views`; every API error leaves as ``{"message": ...}`` through
:class:`.errors.ApiError`, every storage error as the store's XML (:class:`.links.StorageError`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import shutil
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from cohere_batch_cli.units import exact_bytes

from . import links, models, tokenizer
from .clock import new_uuid, now_us, parse_rfc3339, random_suffix, slug
from .errors import ApiError
from .kinds import DATASET_TYPES, VALIDATION_STATUSES, is_batch_input
from .middleware import AuthMiddleware, FaultMiddleware, RequestLog, RequestLogMiddleware
from .settings import SandboxSettings
from .store import Store
from .validation import UPLOAD_FILE
from .views import batch_json, dataset_json
from .worker import Worker

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
US = 1_000_000
_ORDER_COLUMNS = {"created_at": "created_us", "updated_at": "updated_us"}
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


class Api:
    """The route handlers, bound to one store and worker."""

    def __init__(self, settings: SandboxSettings, store: Store, worker: Worker) -> None:
        self.settings = settings
        self.store = store
        self.worker = worker

    # -- batches ------------------------------------------------------------------------

    def _batch(self, row: Any) -> dict[str, Any]:
        return batch_json(row, self.store.org_id, self.store.creator_id)

    async def create_batch(self, request: Request) -> Response:
        body = await _json_object(request)
        for field in ("name", "input_dataset_id", "model"):
            value = body.get(field)
            if value is None or value == "":
                raise ApiError(400, f"missing required field: {field}")
            if not isinstance(value, str) or not value.strip():
                raise ApiError(400, f"{field} must be a non-empty string")
        dataset_id = body["input_dataset_id"]
        dataset = self.store.get_dataset(dataset_id)
        if dataset is None:
            raise ApiError(404, f"dataset {dataset_id} not found")
        if not is_batch_input(dataset["dataset_type"]):
            raise ApiError(
                400,
                f"dataset {dataset_id} has type {dataset['dataset_type']}, which is not a batch "
                "input type (batch-chat-v2-input, batch-embed-v2-input)",
            )
        if dataset["validation_status"] != "validated":
            raise ApiError(
                400,
                f"dataset {dataset_id} is not validated "
                f"(validation_status: {dataset['validation_status']})",
            )
        now = now_us()
        row = {
            "id": new_uuid(),
            "name": body["name"],
            "status": "BATCH_STATUS_QUEUED",
            "created_us": now,
            "updated_us": now,
            "input_dataset_id": dataset_id,
            "output_dataset_id": None,
            "model": body["model"],
            "dataset_type": dataset["dataset_type"],
            "num_records": dataset["num_rows"],
            "processed": 0,
            "num_successful": 0,
            "num_failed": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "status_reason": None,
            "queued_until_us": now + int(self.settings.queue_delay * US),
            "started_us": None,
            "cancel_us": None,
        }
        self.store.insert_batch(row)
        self.worker.wake()
        return JSONResponse({"batch": self._batch(row)})

    async def list_batches(self, request: Request) -> Response:
        q = request.query_params
        page_size = (
            _int_param(q.get("page_size"), "page_size", DEFAULT_PAGE_SIZE) or DEFAULT_PAGE_SIZE
        )
        if page_size <= 0:
            page_size = DEFAULT_PAGE_SIZE
        page_size = min(page_size, MAX_PAGE_SIZE)
        order_by = q.get("order_by") or "created_at"
        column = _ORDER_COLUMNS.get(order_by)
        if column is None:
            raise ApiError(400, "order_by must be created_at or updated_at")
        after = _decode_token(q.get("page_token"), order_by) if q.get("page_token") else None
        rows = self.store.list_batches(column, page_size + 1, after)
        out: dict[str, Any] = {"batches": [self._batch(r) for r in rows[:page_size]]}
        if len(rows) > page_size:
            last = rows[page_size - 1]
            out["next_page_token"] = _encode_token(order_by, last[column], last["seq"])
        return JSONResponse(out)

    async def cancel_batch(self, request: Request) -> Response:
        """POST /v2/batches/{id}:cancel (routed before GET /v2/batches/{id}, so the id stops at the colon)."""
        return self._cancel(request.path_params["id"])

    async def get_batch(self, request: Request) -> Response:
        raw_id = request.path_params["id"]
        if raw_id.endswith(":cancel"):  # the cancel path, with the wrong method
            raise ApiError(405, f"method not allowed: GET {request.url.path}", {"Allow": "POST"})
        row = self.store.get_batch(raw_id)
        if row is None:
            raise ApiError(404, f"batch {raw_id} not found")
        return JSONResponse({"batch": self._batch(row)})

    def _cancel(self, batch_id: str) -> Response:
        previous = self.store.request_cancel(batch_id, now_us())
        if previous is None:
            raise ApiError(404, f"batch {batch_id} not found")
        if previous in ("BATCH_STATUS_COMPLETED", "BATCH_STATUS_FAILED", "BATCH_STATUS_CANCELED"):
            state = previous.removeprefix("BATCH_STATUS_").lower()
            raise ApiError(400, f"batch {batch_id} cannot be canceled: it is already {state}")
        self.worker.wake()
        return JSONResponse({})

    # -- datasets -----------------------------------------------------------------------

    def _base_url(self, request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    def _dataset(self, request: Request, row: Any) -> dict[str, Any]:
        return dataset_json(row, self._base_url(request), self.store.secret, self.settings.link_ttl)

    async def create_dataset(self, request: Request) -> Response:
        q = request.query_params
        name = q.get("name")
        dataset_type = q.get("type")
        if not name:
            raise ApiError(400, "missing required query parameter: name")
        limit = self.settings.dataset_name_max_length
        if len(name) > limit:
            raise ApiError(
                400, f"dataset name must be under {limit + 1} characters, got {len(name)}"
            )
        if not dataset_type:
            raise ApiError(400, "missing required query parameter: type")
        if dataset_type not in DATASET_TYPES:
            raise ApiError(400, f"unknown dataset type {dataset_type!r}")
        flags: dict[str, Any] = {
            key: _bool_param(q.get(key), key)
            for key in ("keep_original_file", "skip_malformed_input")
        }
        for key in ("keep_fields", "optional_fields"):
            flags[key] = [f for v in q.getlist(key) for f in v.split(",") if f]
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ApiError(400, 'the body must be multipart/form-data with the file in part "data"')
        dataset_id = f"{slug(name)}-{random_suffix()}"
        directory = self.store.dataset_dir(dataset_id)
        async with request.form(max_files=2, max_fields=20) as form:
            data = form.get("data")
            if not isinstance(data, UploadFile):
                raise ApiError(400, 'missing file part "data"')
            directory.mkdir(parents=True, exist_ok=True)
            size = await run_in_threadpool(_save, data, directory / UPLOAD_FILE)
        try:
            self._check_capacity(size)
        except ApiError:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        now = now_us()
        self.store.insert_dataset(
            {
                "id": dataset_id,
                "name": name,
                "dataset_type": dataset_type,
                "created_us": now,
                "updated_us": now,
                "validation_status": "queued",
                "validation_warnings": [],
                "required_fields": [],
                "preserve_fields": [],
                "parts": [],
                "size_bytes": size,
                "ready_us": now + int(self.settings.validation_delay * US / 2),
                "flags": flags,
                "kind": "input",
                "expires_us": now + int(self.settings.dataset_ttl * US),
            }
        )
        self.worker.wake()
        return JSONResponse({"id": dataset_id})

    def _check_capacity(self, size: int) -> None:
        """The dataset limit, then the organisation's: both 400s, as the real API refuses."""
        s = self.settings
        if size > s.dataset_max_bytes:
            raise ApiError(
                400,
                f"dataset too large: the file is {size:,} bytes, over the limit of "
                f"{exact_bytes(s.dataset_max_bytes)} for one dataset; split it into smaller datasets",
            )
        if self.store.usage_bytes() + size > s.org_max_bytes:
            raise ApiError(400, "You have exceeded capacity")

    async def list_datasets(self, request: Request) -> Response:
        q = request.query_params
        status = q.get("validationStatus") or None
        if status is not None and status not in VALIDATION_STATUSES:
            raise ApiError(
                400, f"validationStatus must be one of {', '.join(sorted(VALIDATION_STATUSES))}"
            )
        limit = _int_param(q.get("limit"), "limit", None)
        offset = _int_param(q.get("offset"), "offset", 0) or 0
        if (limit is not None and limit < 0) or offset < 0:
            raise ApiError(400, "limit and offset must not be negative")
        rows = self.store.list_datasets(
            q.get("datasetType") or None,
            _time_param(q.get("before"), "before"),
            _time_param(q.get("after"), "after"),
            status,
            limit or None,
            offset,
        )
        return JSONResponse({"datasets": [self._dataset(request, r) for r in rows]})

    async def dataset_item(self, request: Request) -> Response:
        dataset_id = request.path_params["id"]
        if dataset_id == "usage":  # GET has its own route; 'usage' is never a dataset id
            raise ApiError(
                405, f"method not allowed: {request.method} /v1/datasets/usage", {"Allow": "GET"}
            )
        if request.method == "DELETE":
            if not self.store.delete_dataset(dataset_id):
                raise ApiError(404, f"dataset {dataset_id} not found")
            return JSONResponse({})
        row = self.store.get_dataset(dataset_id)
        if row is None:
            raise ApiError(404, f"dataset {dataset_id} not found")
        return JSONResponse({"dataset": self._dataset(request, row)})

    async def usage(self, request: Request) -> Response:
        return JSONResponse({"organization_usage": self.store.usage_bytes()})

    # -- models -------------------------------------------------------------------------

    async def list_models(self, request: Request) -> Response:
        q = request.query_params
        page_size = _int_param(q.get("page_size"), "page_size", models.DEFAULT_PAGE_SIZE) or 0
        if page_size <= 0:  # the description's minimum is 1: coerced, as batches coerce theirs
            page_size = models.DEFAULT_PAGE_SIZE
        page_size = min(page_size, MAX_PAGE_SIZE)
        endpoint = q.get("endpoint") or None
        if endpoint is not None and endpoint not in models.ENDPOINTS:
            raise ApiError(400, f"endpoint must be one of {', '.join(models.ENDPOINTS)}")
        default_only = _bool_param(q.get("default_only"), "default_only")
        if default_only and endpoint is None:
            raise ApiError(400, "default_only is only valid when endpoint is provided")
        start = _decode_offset(q.get("page_token")) if q.get("page_token") else 0
        listed = models.listed(endpoint, default_only)
        base = self._base_url(request)
        page = listed[start : start + page_size]
        out: dict[str, Any] = {"models": [models.model_json(m, self.settings, base) for m in page]}
        if start + page_size < len(listed):
            out["next_page_token"] = _encode_offset(start + page_size)
        return JSONResponse(out)

    async def get_model(self, request: Request) -> Response:
        name = request.path_params["model"]
        model = models.BY_NAME.get(name)
        if model is None:
            raise ApiError(
                404,
                f"model '{name}' not found, make sure the correct model ID was used "
                "and that you have access to the model.",
            )
        return JSONResponse(models.model_json(model, self.settings, self._base_url(request)))

    # -- storage: part downloads and tokenizer files (no API key) -----------------------

    async def download_part(self, request: Request) -> Response:
        """A signed link: the signature and the expiry are checked as the store would."""
        dataset_id = request.path_params["dataset_id"]
        name = request.path_params["name"]
        try:
            links.check(
                self.store.secret, dataset_id, name, dict(request.query_params), time.time()
            )
            path = self._stored_file(dataset_id, name)
        except links.StorageError as exc:
            return _storage_error(exc)
        return FileResponse(path, media_type="application/octet-stream", filename=name)

    def _stored_file(self, dataset_id: str, name: str) -> Any:
        row = self.store.get_dataset(dataset_id)
        names = set()
        if row is not None and row["validation_status"] == "validated":
            for part in json.loads(row["parts"]):
                names.add(part["name"])
                if part.get("original"):
                    names.add(part["original"])
        path = self.store.dataset_dir(dataset_id) / name
        if name not in names or not path.is_file():
            raise links.no_such_key()
        return path

    async def tokenizer_file(self, request: Request) -> Response:
        """Public, like the storage bucket real ``tokenizer_url`` links point to."""
        if request.path_params["name"] != f"{tokenizer.TOKENIZER_NAME}.json":
            return _storage_error(links.no_such_key())
        return FileResponse(tokenizer.path(), media_type="application/json")

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})


def _save(upload: UploadFile, dest: Any) -> int:
    """Copy the spooled upload to its place in chunks; never the whole file in memory."""
    upload.file.seek(0)
    with open(dest, "wb") as out:
        shutil.copyfileobj(upload.file, out, 1024 * 1024)
        return out.tell()


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "request body is required")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"invalid JSON body: {getattr(exc, 'msg', exc)}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


INT32_MAX = 2**31 - 1


def _int_param(value: str | None, name: str, default: int | None) -> int | None:
    """An integer query parameter within int32, as the API's gateway parses them (else 400)."""
    if value is None or value == "":
        return default
    try:
        number = float(value)
        if number != int(number) or abs(number) > INT32_MAX:
            raise ValueError
        return int(number)
    except (ValueError, OverflowError):
        raise ApiError(400, f"{name} must be a 32-bit integer") from None


def _bool_param(value: str | None, name: str) -> bool:
    if value is None or value.lower() in _FALSE:
        return False
    if value.lower() in _TRUE:
        return True
    raise ApiError(400, f"{name} must be true or false")


def _time_param(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise ApiError(400, f"{name} must be an RFC 3339 date-time") from None


def _encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"m": offset}).encode()).decode().rstrip("=")


def _decode_offset(token: str | None) -> int:
    try:
        assert token is not None
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = data["m"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (AssertionError, ValueError, KeyError, TypeError, binascii.Error):
        raise ApiError(400, "invalid page_token") from None


def _storage_error(exc: links.StorageError) -> Response:
    return Response(exc.xml(), status_code=exc.status, media_type="application/xml; charset=UTF-8")


def _encode_token(order_by: str, stamp: int, seq: int) -> str:
    raw = json.dumps({"o": order_by, "t": stamp, "s": seq}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str | None, order_by: str) -> tuple[int, int]:
    """The keyset cursor in a page token; 400 if it was not made by us for this order."""
    try:
        assert token is not None
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        stamp, seq = data["t"], data["s"]
        if data["o"] != order_by or not isinstance(stamp, int) or not isinstance(seq, int):
            raise ValueError
        return stamp, seq
    except (AssertionError, ValueError, KeyError, TypeError, binascii.Error):
        raise ApiError(400, "invalid page_token") from None


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"route not found: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method not allowed: {request.method} {request.url.path}"
    else:
        message = str(exc.detail)
    return JSONResponse({"message": message}, status_code=exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"message": "sandbox: internal server error"}, status_code=500)


def create_app(
    settings: SandboxSettings,
    *,
    store: Store | None = None,
    worker: Worker | None = None,
    request_log: RequestLog | None = None,
) -> Starlette:
    """The ASGI app. Without ``store``/``worker`` it makes and runs its own via lifespan."""
    owned = store is None
    store = store or Store(settings.data_dir)
    worker = worker or Worker(store, settings)
    api = Api(settings, store, worker)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if owned:
            worker.start()
        try:
            yield
        finally:
            if owned:
                worker.stop()
                store.close()

    routes = [
        Route("/v2/batches", api.create_batch, methods=["POST"]),
        Route("/v2/batches", api.list_batches, methods=["GET"]),
        Route("/v2/batches/{id}:cancel", api.cancel_batch, methods=["POST"]),
        Route("/v2/batches/{id}", api.get_batch, methods=["GET"]),
        Route("/v1/datasets", api.create_dataset, methods=["POST"]),
        Route("/v1/datasets", api.list_datasets, methods=["GET"]),
        Route("/v1/datasets/usage", api.usage, methods=["GET"]),
        Route("/v1/datasets/{id}", api.dataset_item, methods=["GET", "DELETE"]),
        Route("/v1/models", api.list_models, methods=["GET"]),
        Route("/v1/models/{model}", api.get_model, methods=["GET"]),
        Route("/_sandbox/parts/{dataset_id}/{name}", api.download_part, methods=["GET"]),
        Route("/_sandbox/tokenizers/{name}", api.tokenizer_file, methods=["GET"]),
        Route("/_sandbox/health", api.health, methods=["GET"]),
    ]
    middleware = [
        Middleware(RequestLogMiddleware, log=request_log if request_log is not None else []),
        Middleware(AuthMiddleware, api_keys=settings.api_keys),
        Middleware(FaultMiddleware, settings=settings),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.worker = worker
    return app
