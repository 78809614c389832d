from __future__ import annotations

from fastapi import APIRouter

from kb.audit import audit as audit_draft
from kb.server.routes import KB, errors
from kb.server.schemas import AuditBody, AuditOut

router = APIRouter(prefix="/v1", tags=["retrieval"])


@router.post("/audit", response_model=AuditOut, responses=errors(400, 401, 413, 422, 503))  # type: ignore[arg-type]
def audit(body: AuditBody, kb: KB) -> AuditOut:
    """Check an agent's draft answer: each claim current, outdated, another region's, future or unsupported,
    with its support, the passage in force that replaced it, and what changed."""
    return AuditOut.of(audit_draft(kb, body.to_request()))
