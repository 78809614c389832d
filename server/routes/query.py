from __future__ import annotations

import time

from fastapi import APIRouter, Request

from kb.server.routes import KB, errors
from kb.server.schemas import QueryBody, QueryOut

router = APIRouter(prefix="/v1", tags=["retrieval"])


@router.post("/query", response_model=QueryOut, responses=errors(400, 401, 413, 422, 503))  # type: ignore[arg-type]
def query(body: QueryBody, request: Request, kb: KB) -> QueryOut:
    """The chunks in force for the region (and moment) asked, best first, with citations and flags."""
    started = time.perf_counter()
    answer = QueryOut.of(kb.query(body.to_request()))
    request.app.state.kb_state.metrics.observe_query(time.perf_counter() - started)
    return answer
