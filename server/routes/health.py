from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """200 once the folder is synced and what is in force is loaded; 503 before."""
    state = request.app.state.kb_state
    body: dict[str, object] = {"status": "ready" if state.ready else "loading"}
    # Without a key (when keys are set) a probe learns ready or not, nothing about the content.
    if state.ready and state.kb is not None and request.state.authorised:
        body["index"] = state.kb.stats()
        watcher = state.watcher
        body["watcher"] = watcher.mode if watcher is not None else "off"
        if watcher is not None and watcher.mode == "polling":
            body["warning"] = "native file events are unavailable; the folder is polled every second"
    return JSONResponse(body, status_code=200 if state.ready else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format."""
    state = request.app.state.kb_state
    text = state.metrics.render(state.kb if state.ready else None)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
