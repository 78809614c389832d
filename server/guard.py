"""The gate every request passes before any route runs: the API key, then the body's size.

A pure ASGI middleware, because FastAPI reads and parses a body before a dependency can refuse it: four
unauthenticated 200 MB POSTs once took the process from 0.3 to 2 GB. Here a request without a valid key is
refused from its headers alone, and a body is counted as it arrives and refused past ``KB_MAX_BODY_BYTES``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb.errors import BodyTooLarge, KBError, Unauthorized

OPEN_PATHS = ("/healthz", "/readyz")
"""What an orchestrator probes without a key; /readyz then answers with its status alone."""
CHALLENGE = 'Bearer realm="kb"'


def given_key(headers: Headers) -> str:
    header = headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else headers.get("x-api-key", "")


def key_is_valid(given: str, keys: Sequence[str]) -> bool:
    # Compare with every key, so the time taken does not tell which one nearly matched.
    return any([secrets.compare_digest(given.encode(), key.encode()) for key in keys])


async def _refuse(send: Send, error: KBError, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": {"code": error.code, "message": error.message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app: ASGIApp, keys: Sequence[str], max_body_bytes: int) -> None:
        self.app, self.keys, self.max_body = app, list(keys), max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        authorised = not self.keys or key_is_valid(given_key(headers), self.keys)
        scope.setdefault("state", {})["authorised"] = authorised
        if not authorised and scope["path"] not in OPEN_PATHS:
            message = "a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)"
            await _refuse(send, Unauthorized(message), [(b"www-authenticate", CHALLENGE.encode())])
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            await _refuse(send, self._too_large())
            return
        await self._capped(scope, receive, send)

    def _too_large(self) -> BodyTooLarge:
        return BodyTooLarge(f"the request body is over {self.max_body:,} bytes (KB_MAX_BODY_BYTES)")

    async def _capped(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A body sent without Content-Length (chunked) is read here, counted as it arrives, then replayed."""
        if "content-length" in Headers(scope=scope) or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await _refuse(send, self._too_large())
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)
