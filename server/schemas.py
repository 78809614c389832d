"""The API's request and response models, kept apart from kb's domain objects."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kb.audit import MAX_AUDIT_CHARS, AuditReport, AuditRequest, ClaimStatus
from kb.documents import FIRST_YEAR, LAST_YEAR, REGION_CODE, YEAR_PATTERN, DocType, RiskTier, date_or_datetime
from kb.feed import ChangeKind, ChangePage, payload
from kb.knowledge import SeriesSummary
from kb.records import Event, StoredChunk, VersionRecord
from kb.retrieval import MAX_K, MAX_QUERY_CHARS, QueryAnswer, QueryRequest, QueryResult, RetrievalMode
from kb.staleness import Severity, StalenessReason, StalenessRow
from kb.timeline import Validity, VersionStatus

NOT_BLANK = r"[^\s\x1c-\x1f\x85]"
"""Not only white space, as Python's str.strip() sees it (which also strips the characters 0x1c-0x1f and 0x85)."""


class _AtRegionAndMoment(BaseModel):
    """What a question or a draft is asked against: a region's chain at a moment."""

    model_config = ConfigDict(extra="forbid")

    region: str = Field(
        "global",
        description="The agent's (or customer's) region; its chain falls back to global, e.g. DE -> EU -> global.",
        json_schema_extra={"pattern": f"^{REGION_CODE}$"},
    )
    as_of: datetime | date | None = Field(
        None,
        description=f"Another moment than now: a date means the start of that day in the service's zone; "
        f"years {FIRST_YEAR} to {LAST_YEAR}.",
        json_schema_extra={"pattern": YEAR_PATTERN},
    )

    @field_validator("as_of", mode="before")
    @classmethod
    def _when(cls, value: object) -> object:
        return date_or_datetime(value)


class QueryBody(_AtRegionAndMoment):
    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="The question, in plain words (not only spaces).",
        json_schema_extra={"pattern": NOT_BLANK},
    )
    k: int = Field(5, ge=1, le=MAX_K, description="How many chunks to return.")
    doc_types: list[DocType] | None = None
    products: list[str] | None = None
    max_risk_tier: RiskTier | None = None
    mode: RetrievalMode | None = Field(
        None, description="Ranking: hybrid (cosine combined with BM25 exact words) or vector; default KB_RETRIEVAL."
    )
    min_score: float | None = Field(
        None,
        ge=-1,
        le=1,
        description="Relevance floor: results scoring below it are left out, and when none clears it `results` "
        "is empty and `warnings` says nothing in force answers well. Default KB_MIN_SCORE; -1 serves everything.",
    )

    def to_request(self) -> QueryRequest:
        return QueryRequest(self.query, self.k, self.region, self.as_of, self.doc_types, self.products,
                            self.max_risk_tier, self.mode, self.min_score)  # fmt: skip


class DocOut(BaseModel):
    doc_id: str
    title: str
    doc_type: DocType
    region: str
    version: int
    effective_from: datetime
    effective_to: datetime | None = Field(description="Exclusive end of validity, from every rule; null while open.")
    source: str
    owner: str | None
    risk_tier: RiskTier
    products: list[str]

    @classmethod
    def of(cls, validity: Validity) -> DocOut:
        r = validity.record
        return cls(
            doc_id=r.doc_id, title=r.title, doc_type=r.doc_type, region=r.region, version=r.version,
            effective_from=r.effective_from, effective_to=validity.end, source=r.source, owner=r.owner,
            risk_tier=r.risk_tier, products=list(r.products),
        )  # fmt: skip


class ResultOut(BaseModel):
    chunk_id: str
    text: str
    score: float = Field(description="The number the ranking used; results come in descending score.")
    cosine: float = Field(description="Cosine similarity of the question's and the chunk's embeddings.")
    section: list[str]
    page: int | None = None
    """The PDF page the text comes from (cite it beside the source); null for files without pages."""
    doc: DocOut
    flags: list[str]


class QueryOut(BaseModel):
    as_of: datetime
    region_chain: list[str]
    results: list[ResultOut]
    warnings: list[str]

    @classmethod
    def of(cls, answer: QueryAnswer) -> QueryOut:
        return cls(
            as_of=answer.as_of,
            region_chain=list(answer.region_chain),
            results=[
                ResultOut(
                    chunk_id=r.chunk_id,
                    text=r.text,
                    score=r.score,
                    cosine=r.cosine,
                    section=list(r.section),
                    page=r.page,
                    doc=DocOut.of(r.validity),
                    flags=r.flags,
                )  # fmt: skip
                for r in answer.results
            ],
            warnings=answer.warnings,
        )


class DocumentSummaryOut(DocOut):
    status: VersionStatus
    versions: int

    @classmethod
    def summary(cls, item: SeriesSummary) -> DocumentSummaryOut:
        return cls(**DocOut.of(item.current).model_dump(), status=item.status, versions=item.versions)


class VersionOut(DocOut):
    revision: int
    status: VersionStatus
    review_due: datetime | None
    ingested_at: datetime
    corrected_at: datetime | None
    retired_at: datetime | None
    retracted_at: datetime | None

    @classmethod
    def of_version(cls, validity: Validity, status: VersionStatus) -> VersionOut:
        r = validity.record
        return cls(
            **DocOut.of(validity).model_dump(), revision=r.revision, status=status, review_due=r.review_due,
            ingested_at=r.ingested_at, corrected_at=r.replaced_at, retired_at=r.retired_at,
            retracted_at=r.retracted_at,
        )  # fmt: skip


class DocumentHistoryOut(BaseModel):
    doc_id: str
    regions: list[str]
    versions: list[VersionOut]


class ChunkOut(BaseModel):
    chunk_id: str
    section: list[str]
    page: int | None = None
    text: str

    @classmethod
    def of(cls, chunk: StoredChunk) -> ChunkOut:
        return cls(chunk_id=chunk.chunk_id, section=list(chunk.section), page=chunk.page, text=chunk.text)


class VersionDetailOut(VersionOut):
    chunks: list[ChunkOut]


class StalenessRowOut(BaseModel):
    doc_id: str | None
    region: str | None
    version: int | None
    title: str | None
    owner: str | None
    source: str
    reason: StalenessReason
    severity: Severity
    since: date
    detail: str

    @classmethod
    def of(cls, row: StalenessRow) -> StalenessRowOut:
        return cls(**row.__dict__)


class StalenessOut(BaseModel):
    generated_at: datetime
    counts: dict[str, int]
    rows: list[StalenessRowOut]


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class ChangeOut(BaseModel):
    cursor: str
    at: datetime
    kind: ChangeKind
    doc_id: str | None
    region: str | None
    version: int | None
    source: str
    summary: str

    @classmethod
    def of(cls, event: Event) -> ChangeOut:
        return cls.model_validate(payload(event))


class ChangesOut(BaseModel):
    changes: list[ChangeOut]
    next: str = Field(description="Pass it as `since` to continue exactly after the last change.")

    @classmethod
    def of(cls, page: ChangePage) -> ChangesOut:
        return cls(changes=[ChangeOut.of(e) for e in page.changes], next=str(page.next))


class AuditBody(_AtRegionAndMoment):
    text: str = Field(
        min_length=1,
        max_length=MAX_AUDIT_CHARS,
        description="The agent's draft answer: its sentences and list items are the claims checked.",
        json_schema_extra={"pattern": NOT_BLANK},
    )

    def to_request(self) -> AuditRequest:
        return AuditRequest(self.text, self.region, self.as_of)


def _result(r: QueryResult | None) -> ResultOut | None:
    if r is None:
        return None
    return ResultOut(chunk_id=r.chunk_id, text=r.text, score=r.score, cosine=r.cosine, section=list(r.section),
                     page=r.page, doc=DocOut.of(r.validity), flags=r.flags)  # fmt: skip


class ClaimOut(BaseModel):
    text: str
    status: ClaimStatus
    support: ResultOut | None = Field(description="The passage that best supports the claim, wherever it is.")
    in_force: ResultOut | None = Field(
        description="For a claim not current: the passage of the same document in force now, when there is one."
    )
    changes: list[str] = Field(
        description='What differs between the claim\'s source and today\'s passage: "30 days" -> "14 days".'
    )
    reason: str


class AuditOut(BaseModel):
    as_of: datetime
    region_chain: list[str]
    verdict: ClaimStatus = Field(description="current when every claim is, else the most serious status found.")
    claims: list[ClaimOut]

    @classmethod
    def of(cls, report: AuditReport) -> AuditOut:
        return cls(
            as_of=report.as_of,
            region_chain=list(report.region_chain),
            verdict=report.verdict,
            claims=[
                ClaimOut(
                    text=c.text,
                    status=c.status,
                    support=_result(c.support),
                    in_force=_result(c.in_force),
                    changes=c.changes,
                    reason=c.reason,
                )  # fmt: skip
                for c in report.claims
            ],
        )


_REGION_FIELD = Field(
    "global", description="The region of the variant.", json_schema_extra={"pattern": f"^{REGION_CODE}$"}
)
_HASH_FIELD = Field(
    None,
    max_length=80,
    description="The version's file_hash as the page or client last saw it: a file saved since is not overwritten "
    "(409). The If-Match header does the same.",
)


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region: str = _REGION_FIELD
    reviewed_by: str = Field(
        min_length=1,
        max_length=200,
        description="Who confirmed the text.",
        json_schema_extra={"pattern": NOT_BLANK},
    )
    note: str | None = Field(None, max_length=500, description="Written as review_note.")
    expected_hash: str | None = _HASH_FIELD


class AcknowledgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region: str = _REGION_FIELD
    base_version: int | None = Field(
        None, ge=1, description="The base version the person checked against; a base that moved on is a 409."
    )
    expected_hash: str | None = _HASH_FIELD


class EditedOut(BaseModel):
    """The version in force after the edit, and the file that was written."""

    doc_id: str
    region: str
    version: int
    revision: int
    source: str
    written: str
    file_hash: str
    review_due: datetime | None
    last_reviewed: str | None
    reviewed_by: str | None
    in_sync_with: int | None

    @classmethod
    def of(cls, record: VersionRecord, written: str) -> EditedOut:
        meta = record.meta
        return cls(
            doc_id=record.doc_id, region=record.region, version=record.version, revision=record.revision,
            source=record.source, written=written, file_hash=record.file_hash, review_due=record.review_due,
            last_reviewed=meta.get("last_reviewed"), reviewed_by=meta.get("reviewed_by"),
            in_sync_with=meta.get("in_sync_with"),
        )  # fmt: skip
