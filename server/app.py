"""The FastAPI application: ``create_app(settings)`` wires a knowledge base to the routes."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.pipeline import IngestReport, sync
from ingest.watcher import FolderWatcher
from kb.embedder import Embedder
from kb.errors import KBError, NotReady, Unauthorized
from kb.knowledge import Clock, KnowledgeBase, utc_now
from kb.settings import Settings
from kb.webhooks import WebhookDispatcher
from server.mcp_tools import build_mcp, http_routes
from server.metrics import Metrics

log = logging.getLogger("kb.server")


@dataclass
class AppState:
    settings: Settings
    kb: KnowledgeBase | None = None
    watcher: FolderWatcher | None = None
    ready: bool = False
    last_sync: IngestReport | None = None
    metrics: Metrics = field(default_factory=Metrics)

    def serving_kb(self) -> KnowledgeBase:
        """The knowledge base once it is ready to answer; the one lookup of routes and MCP tools alike."""
        if self.kb is None or not self.ready:
            raise NotReady("the index is still loading; retry shortly")
        return self.kb


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg')}")
    return "; ".join(parts) or "invalid request"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KBError)
    async def kb_error(_: Request, exc: KBError) -> JSONResponse:
        if exc.status >= 500:
            log.error("%s: %s", exc.code, exc.message)
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error(500, "internal_error", "internal error; see the server log")


def require_key(request: Request) -> None:
    """When KB_API_KEYS is set, /v1 and /report need ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``."""
    keys = request.app.state.kb_state.settings.api_keys
    if not keys:
        return
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    if not any(secrets.compare_digest(given.encode(), key.encode()) for key in keys):
        raise Unauthorized("a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)")


def create_app(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    clock: Clock = utc_now,
    open_kb: Callable[..., KnowledgeBase] = KnowledgeBase.open,
    sync_folder: bool = True,
) -> FastAPI:
    """The knowledge base opens (and the folder is synced) in the lifespan, before /readyz says ready.

    ``sync_folder=False`` serves the ledger as it is, for a store another process fills.
    """
    state = AppState(settings)
    mcp = build_mcp(state.serving_kb)
    mcp_routes = http_routes(mcp, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.kb = open_kb(settings, embedder=embedder, clock=clock)
        webhooks = None
        if settings.webhooks and settings.webhook_secret:
            webhooks = WebhookDispatcher(state.kb, settings.webhooks, settings.webhook_secret)
            webhooks.start()
        try:
            if sync_folder and settings.watch:
                # Watch first, then reconcile: a save during the start-up sync is not lost.
                state.watcher = FolderWatcher(state.kb, debounce=settings.debounce_ms / 1000)
                state.watcher.start()
            state.last_sync = sync(state.kb) if sync_folder else None
            state.ready = True
            async with mcp.session_manager.run():
                yield
        finally:
            state.ready = False
            if state.watcher is not None:
                state.watcher.stop()
            if webhooks is not None:
                webhooks.stop()
            state.kb.close()

    from server.routes import changes, documents, health, query, report, staleness

    app = FastAPI(
        title="kb",
        summary="Current, regional, effective-dated policy knowledge for AI agents.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.kb_state = state
    _install_error_handlers(app)
    secured = [Depends(require_key)]
    app.include_router(health.router)
    app.include_router(query.router, dependencies=secured)
    app.include_router(documents.router, dependencies=secured)
    app.include_router(changes.router, dependencies=secured)
    app.include_router(staleness.router, dependencies=secured)
    app.include_router(report.router, dependencies=secured)
    app.router.routes.extend(mcp_routes)
    return app
