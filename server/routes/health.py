from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from kb.server.startup import AppState, Phase

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    """The process is alive: 200 from the moment the port is open, 503 once start-up has failed (or a writer
    lost its lease). With a shared ledger it also gives the role, the state (``standby`` for a writer waiting
    for the lease) and, for a replica, how far behind the writer it is."""
    state: AppState = request.app.state.kb_state
    if state.phase is Phase.failed:
        return JSONResponse({"status": "failed", **state.role()}, status_code=503)
    return JSONResponse({"status": "ok", **state.role()})


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """200 once the folder is synced and what is in force is loaded; 503 with progress before. A standby
    writer answers 503 ``standby``: a load balancer sends queries to the writer and the replicas, not to it.

    ``degraded`` (still 200: what is in force is served) when the watcher's last batch failed (a full disk, a
    read-only store). Without a key, when keys are set, only ``status`` is given."""
    state: AppState = request.app.state.kb_state
    status = {Phase.ready: "ready", Phase.failed: "failed", Phase.standby: "standby"}.get(state.phase, "loading")
    body: dict[str, object] = {}
    if request.state.authorised:
        body.update(state.progress())
        watcher = state.watcher
        if state.ready and state.kb is not None:
            body["index"] = state.kb.stats()
            body["watcher"] = watcher.mode if watcher is not None else "off"
            if watcher is not None and watcher.mode == "polling":
                body["warning"] = "native file events are unavailable; the folder is polled every second"
        if watcher is not None and watcher.health.failing:
            status = "degraded" if state.ready else status
            body["ingest"] = watcher.health.describe()
    return JSONResponse({"status": status, **body}, status_code=200 if state.ready else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format."""
    state: AppState = request.app.state.kb_state
    text = state.metrics.render(state.kb if state.ready else None, state.watcher, state.startup)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
