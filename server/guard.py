"""The gate every request passes before any route runs: the API key and its role, then the body's size.

A pure ASGI middleware, because FastAPI reads and parses a body before a dependency can refuse it: four
unauthenticated 200 MB POSTs once took the process from 0.3 to 2 GB. Here a request without a valid key is
refused from its headers alone, and a body is counted as it arrives and refused past ``KB_MAX_BODY_BYTES``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb.errors import BodyTooLarge, Forbidden, KBError, Unauthorized
from kb.settings import Role

OPEN_PATHS = ("/healthz", "/readyz", "/report/login")
"""What an orchestrator probes without a key (/readyz then answers with its status alone), and the page where a
person gives the key once."""
AGENT_PATHS = ("/v1/query", "/v1/audit", "/v1/changes", "/mcp", "/docs", "/openapi.json")
"""Paths (and what lies below them) an agent's key opens; ``GET /v1/documents...`` too. Everything else, the
staleness report, /metrics and the review and acknowledge actions, is for editors: a new route is closed to
agents until it is listed here."""
CHALLENGE = 'Bearer realm="kb"'
SESSION_COOKIE = "kb_session"
"""Set by the report's login form: a token derived from the key, so the page needs no header tools."""


def session_token(key: str) -> str:
    """What the session cookie holds for ``key``: derived from it, so the cookie never carries the key itself."""
    return hmac.new(key.encode(), b"kb report session", hashlib.sha256).hexdigest()


def given_key(headers: Headers) -> str:
    header = headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else headers.get("x-api-key", "")


def _matching(given: str, credentials: Mapping[str, Role]) -> Role | None:
    # Compare with every credential, so the time taken does not tell which one nearly matched.
    found = [role for secret, role in credentials.items() if secrets.compare_digest(given.encode(), secret.encode())]
    return found[0] if found else None


def role_of(headers: Headers, keys: Mapping[str, Role]) -> Role | None:
    """The role of the key a request carries (header first, then the report's session cookie), or None."""
    given = given_key(headers)
    if given:
        return _matching(given, keys)
    cookie = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE, "")
    return _matching(cookie, {session_token(key): role for key, role in keys.items()}) if cookie else None


def needed_role(method: str, path: str) -> Role:
    """Agents read; editors also see the report and act on it."""
    if path in AGENT_PATHS or path.startswith(tuple(p + "/" for p in AGENT_PATHS)):
        return Role.agent
    if method in ("GET", "HEAD") and (path == "/v1/documents" or path.startswith("/v1/documents/")):
        return Role.agent
    return Role.editor


def allows(role: Role, needed: Role) -> bool:
    return role is Role.editor or needed is Role.agent


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
    def __init__(self, app: ASGIApp, keys: Mapping[str, Role], max_body_bytes: int) -> None:
        self.app, self.keys, self.max_body = app, dict(keys), max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        role = role_of(headers, self.keys) if self.keys else Role.editor
        path = scope["path"]
        scope.setdefault("state", {}).update(authorised=role is not None, role=role)
        if path not in OPEN_PATHS:
            if role is None:
                await self._unauthorised(scope, headers, send)
                return
            needed = needed_role(scope["method"], path)
            if not allows(role, needed):
                message = f"this key's role is {role.value}; {path} needs an {needed.value} key (KB_API_KEYS key:role)"
                await _refuse(send, Forbidden(message))
                return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            await _refuse(send, self._too_large())
            return
        await self._capped(scope, receive, send)

    async def _unauthorised(self, scope: Scope, headers: Headers, send: Send) -> None:
        if (
            scope["path"].startswith("/report")
            and scope["method"] == "GET"
            and "text/html" in headers.get("accept", "")
        ):
            # A person opening the report in a browser is sent to the form that takes the key once.
            target = scope["path"] + ("?" + scope["query_string"].decode() if scope["query_string"] else "")
            location = "/report/login?next=" + quote(target, safe="")
            await send({"type": "http.response.start", "status": 303, "headers": [(b"location", location.encode()),
                        (b"content-length", b"0")]})  # fmt: skip
            await send({"type": "http.response.body", "body": b""})
            return
        message = "a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)"
        await _refuse(send, Unauthorized(message), [(b"www-authenticate", CHALLENGE.encode())])

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
