"""Pure-ASGI layers around the routes: request log, API-key check, fault injection.

Pure ASGI (not ``BaseHTTPMiddleware``) because it adds almost nothing per request, which
matters when a benchmark creates ten thousand batches. Part downloads (``/_sandbox/``)
skip the key check and the faults, as pre-signed storage links would.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .links import redact
from .settings import SandboxSettings

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RequestLog = list[tuple[str, str, dict[str, str]]]
SANDBOX_PREFIX = "/_sandbox/"


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class RequestLogMiddleware:
    """Records (method, path with query, headers) of every request, for tests.

    A part link's signature is replaced before it is kept (:func:`.links.redact`): the
    log shows which part was fetched and how, never a link that would still work.
    """

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if scope.get("query_string"):
                path += "?" + scope["query_string"].decode("latin-1")
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            self.log.append((scope["method"], redact(path), headers))
        await self.app(scope, receive, send)


class AuthMiddleware:
    """Bearer-key check: any non-empty key, or one of ``api_keys`` when some are set."""

    def __init__(self, app: ASGIApp, api_keys: tuple[str, ...]) -> None:
        self.app = app
        self.api_keys = frozenset(api_keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(SANDBOX_PREFIX):
            await self.app(scope, receive, send)
            return
        token = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, rest = value.decode("latin-1").strip().partition(" ")
                if scheme.lower() == "bearer":
                    token = rest.strip()
        if not token:
            await send_json(send, 401, {"message": "no api key supplied"})
        elif self.api_keys and token not in self.api_keys:
            await send_json(send, 401, {"message": "invalid api token"})
        else:
            await self.app(scope, receive, send)


class FaultMiddleware:
    """Adds latency and answers a seeded share of API requests with 429 or 500/503."""

    def __init__(self, app: ASGIApp, settings: SandboxSettings) -> None:
        self.app = app
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.five_xx = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        s = self.settings
        if scope["type"] != "http" or scope["path"].startswith(SANDBOX_PREFIX):
            await self.app(scope, receive, send)
            return
        if s.latency > 0:
            await asyncio.sleep(s.latency)
        if s.fail_rate_429 > 0 or s.fail_rate_5xx > 0:
            draw = self.rng.random()
            if draw < s.fail_rate_429:
                await send_json(
                    send,
                    429,
                    {"message": "sandbox: too many requests (injected by --fail-rate-429)"},
                    {"Retry-After": str(s.retry_after)},
                )
                return
            if draw < s.fail_rate_429 + s.fail_rate_5xx:
                self.five_xx += 1
                status = 500 if self.five_xx % 2 else 503
                await send_json(
                    send, status, {"message": f"sandbox: injected {status} (--fail-rate-5xx)"}
                )
                return
        await self.app(scope, receive, send)
