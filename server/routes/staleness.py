from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from kb.knowledge import KnowledgeBase
from kb.staleness import to_csv
from server.routes import knowledge_base
from server.schemas import ErrorOut, StalenessOut, StalenessRowOut

router = APIRouter(prefix="/v1", tags=["staleness"])
_ERRORS = {code: {"model": ErrorOut} for code in (401, 503)}
KB = Annotated[KnowledgeBase, Depends(knowledge_base)]


@router.get("/staleness", response_model=StalenessOut, responses=_ERRORS)  # type: ignore[arg-type]
def staleness(kb: KB) -> StalenessOut:
    """What content teams must look at: overdue reviews, expired or orphaned documents, rejected files."""
    rows = kb.staleness()
    return StalenessOut(
        generated_at=kb.now(),
        counts=dict(Counter(row.reason.value for row in rows)),
        rows=[StalenessRowOut.of(row) for row in rows],
    )


@router.get("/staleness.csv", response_class=PlainTextResponse, responses=_ERRORS)  # type: ignore[arg-type]
def staleness_csv(kb: KB) -> PlainTextResponse:
    return PlainTextResponse(to_csv(kb.staleness()), media_type="text/csv; charset=utf-8")
