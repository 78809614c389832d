from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query

from kb.ingest.actions import acknowledge_variant, confirm_review
from kb.server.routes import KB, errors
from kb.server.schemas import (
    AcknowledgeBody,
    ChunkOut,
    DocumentHistoryOut,
    DocumentSummaryOut,
    EditedOut,
    ReviewBody,
    VersionDetailOut,
    VersionOut,
)

router = APIRouter(prefix="/v1/documents", tags=["documents"])
IfMatch = Annotated[str | None, Header(max_length=80, description="The file_hash last seen, like expected_hash.")]


@router.post("/{doc_id:path}/review", response_model=EditedOut, responses=errors(400, 401, 403, 404, 409, 422, 503))  # type: ignore[arg-type]
def review(doc_id: str, body: ReviewBody, kb: KB, if_match: IfMatch = None) -> EditedOut:
    """Confirm a review (editors): last_reviewed, reviewed_by and the next review_by are written into the file."""
    edited = confirm_review(kb, doc_id, body.region, body.reviewed_by, body.note, body.expected_hash or if_match)
    return EditedOut.of(edited.record, edited.written)


@router.post(
    "/{doc_id:path}/acknowledge", response_model=EditedOut, responses=errors(400, 401, 403, 404, 409, 422, 503)
)  # type: ignore[arg-type]
def acknowledge(doc_id: str, body: AcknowledgeBody, kb: KB, if_match: IfMatch = None) -> EditedOut:
    """Mark a regional variant as deliberately different from its newer base (editors): writes in_sync_with."""
    edited = acknowledge_variant(kb, doc_id, body.region, body.base_version, body.expected_hash or if_match)
    return EditedOut.of(edited.record, edited.written)


@router.get("", response_model=list[DocumentSummaryOut], responses=errors(400, 401, 404, 422, 503))  # type: ignore[arg-type]
def list_documents(kb: KB, status: Literal["current", "all"] = "current") -> list[DocumentSummaryOut]:
    """Each series with a version in force now; ``?status=all`` adds expired, retired and future-only ones."""
    return [DocumentSummaryOut.summary(item) for item in kb.documents(include_all=status == "all")]


@router.get(
    "/{doc_id:path}/versions/{number}", response_model=VersionDetailOut, responses=errors(400, 401, 404, 422, 503)
)  # type: ignore[arg-type]
def get_version(
    doc_id: str, number: int, kb: KB, region: Annotated[str | None, Query(max_length=40)] = None
) -> VersionDetailOut:
    """One version with its chunks; ``region`` is needed when several regions have that number."""
    validity, status, chunks = kb.version(doc_id, number, region)
    return VersionDetailOut(
        **VersionOut.of_version(validity, status).model_dump(), chunks=[ChunkOut.of(c) for c in chunks]
    )


@router.get("/{doc_id:path}", response_model=DocumentHistoryOut, responses=errors(400, 401, 404, 422, 503))  # type: ignore[arg-type]
def get_document(doc_id: str, kb: KB) -> DocumentHistoryOut:
    """Every version of every region, with validity and status (history included)."""
    versions = [VersionOut.of_version(validity, status) for validity, status in kb.history(doc_id)]
    return DocumentHistoryOut(doc_id=doc_id, regions=sorted({v.region for v in versions}), versions=versions)
