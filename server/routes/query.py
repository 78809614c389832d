from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from kb.knowledge import KnowledgeBase
from server.routes import knowledge_base
from server.schemas import ErrorOut, QueryBody, QueryOut

router = APIRouter(prefix="/v1", tags=["retrieval"])
_ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 413, 422, 503)}


@router.post("/query", response_model=QueryOut, responses=_ERRORS)  # type: ignore[arg-type]
def query(body: QueryBody, request: Request, kb: Annotated[KnowledgeBase, Depends(knowledge_base)]) -> QueryOut:
    """The chunks in force for the region (and moment) asked, best first, with citations and flags."""
    started = time.perf_counter()
    answer = QueryOut.of(kb.query(body.to_request()))
    request.app.state.kb_state.metrics.observe_query(time.perf_counter() - started)
    return answer
