"""The FastAPI application: ``create_app(settings)`` wires a knowledge base to the routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kb.embedder import Embedder
from kb.errors import KBError
from kb.knowledge import Clock, KnowledgeBase, utc_now
from kb.server import startup
from kb.server.apidocs import install_docs
from kb.server.guard import Guard
from kb.server.mcp_tools import build_mcp, http_routes
from kb.server.startup import AppState
from kb.settings import Settings

log = logging.getLogger("kb.server")


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
        response = _error(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})  # 405 keeps its Allow
        return response

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error(500, "internal_error", "internal error; see the server log")


def create_app(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    clock: Clock = utc_now,
    open_kb: Callable[..., KnowledgeBase] = KnowledgeBase.open,
    sync_folder: bool = True,
    background: bool = False,
    on_startup_failure: Callable[[BaseException], None] | None = None,
) -> FastAPI:
    """The knowledge base opens and the folder is synced in the lifespan, before /readyz says ready.

    ``background=True`` (``kb serve``) does that on a thread, so the port answers at once: /healthz 200 and
    /readyz 503 with progress until ready; ``on_startup_failure`` then hears of a failed start-up.
    ``sync_folder=False`` serves the ledger as it is, for a store another process fills.
    """
    state = AppState(settings)
    mcp = build_mcp(state.serving_kb)
    mcp_routes = http_routes(mcp, settings)

    def opened(read_only: bool = False) -> KnowledgeBase:
        if read_only:  # a replica or a standby writer of a shared ledger (server/startup.py)
            return open_kb(settings, embedder=embedder, clock=clock, read_only=True)
        return open_kb(settings, embedder=embedder, clock=clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        starting = None
        try:
            if background:
                starting = startup.start_in_background(state, opened, sync_folder, on_startup_failure)
            else:
                startup.start(state, opened, sync_folder, on_startup_failure)
            async with mcp.session_manager.run():
                yield
        finally:
            startup.stop(state, starting)

    from kb.server.routes import (
        audit,
        changes,
        documents,
        health,
        query,
        report,
        report_actions,
        report_views,
        staleness,
    )

    app = FastAPI(
        title="kb",
        summary="Current, regional, effective-dated policy knowledge for AI agents.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served from a package instead of a CDN (server/apidocs.py)
        redoc_url=None,
    )
    app.state.kb_state = state
    _install_error_handlers(app)
    # Every route but /healthz and /readyz needs a key when keys are set, /mcp included; roles by path.
    app.add_middleware(Guard, keys=settings.key_roles, max_body_bytes=settings.max_body_bytes)
    install_docs(app)
    routers = (health, query, audit, documents, changes, staleness, report, report_views, report_actions)
    for router in (module.router for module in routers):
        app.include_router(router)
    app.router.routes.extend(mcp_routes)
    return app
