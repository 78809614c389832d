from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from kb.audit import audit as audit_draft
from kb.knowledge import KnowledgeBase
from server.routes import knowledge_base
from server.schemas import AuditBody, AuditOut, ErrorOut

router = APIRouter(prefix="/v1", tags=["retrieval"])
_ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 413, 422, 503)}


@router.post("/audit", response_model=AuditOut, responses=_ERRORS)  # type: ignore[arg-type]
def audit(body: AuditBody, kb: Annotated[KnowledgeBase, Depends(knowledge_base)]) -> AuditOut:
    """Check an agent's draft answer: each claim current, outdated, another region's, future or unsupported,
    with its support, the passage in force that replaced it, and what changed."""
    return AuditOut.of(audit_draft(kb, body.to_request()))
