"""A query's shape and the filters that decide which versions in force it may see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from kb.documents import DocType, RiskTier, start_of
from kb.errors import InvalidRequest
from kb.timeline import Validity

MAX_K = 50
MAX_QUERY_CHARS = 2_000


class RetrievalMode(StrEnum):
    """How the chunks in force are ranked for a query; a result's ``score`` is the number the mode ranks by."""

    hybrid = "hybrid"
    """Cosine similarity combined with BM25 over the same chunks, on one 0-1 scale: exact words such as a SKU
    or "restocking fee" count, and a passage the embedding clearly prefers keeps its lead."""
    vector = "vector"
    """Cosine similarity of the query's embedding alone."""


@dataclass(frozen=True)
class QueryRequest:
    query: str
    k: int = 5
    region: str = "global"
    as_of: datetime | date | None = None
    doc_types: Sequence[DocType] | None = None
    products: Sequence[str] | None = None
    max_risk_tier: RiskTier | None = None
    mode: RetrievalMode | None = None
    """None: the service's ``retrieval`` setting."""
    min_score: float | None = None
    """Results scoring below it are not served; None: the service's ``min_score`` setting."""

    def check(self) -> None:
        if not self.query.strip():
            raise InvalidRequest("query must not be empty")
        if len(self.query) > MAX_QUERY_CHARS:
            raise InvalidRequest(f"query is longer than {MAX_QUERY_CHARS} characters")
        if not 1 <= self.k <= MAX_K:
            raise InvalidRequest(f"k must be between 1 and {MAX_K}, got {self.k}")
        if self.min_score is not None and not -1 <= self.min_score <= 1:
            raise InvalidRequest(f"min_score must be between -1 and 1, got {self.min_score}")

    def moment(self, now: datetime, zone: object) -> datetime:
        """``as_of`` as a UTC moment: a date means the start of that day in the service's zone."""
        if self.as_of is None:
            return now
        try:
            return start_of(self.as_of, zone)  # type: ignore[arg-type]
        except ValueError as exc:
            raise InvalidRequest(f"as_of: {exc}") from None

    def admits(self, validity: Validity) -> bool:
        record = validity.record
        if self.doc_types and record.doc_type not in self.doc_types:
            return False
        if self.products and record.products and not set(self.products) & set(record.products):
            return False
        return self.max_risk_tier is None or record.risk_tier.rank <= self.max_risk_tier.rank


@dataclass(frozen=True)
class QueryResult:
    chunk_id: str
    text: str
    score: float
    """The number the ranking used (see :class:`RetrievalMode`)."""
    cosine: float
    """The query's cosine similarity to the chunk, whatever the ranking."""
    section: tuple[str, ...]
    validity: Validity
    flags: list[str]
    page: int | None = None
    """The PDF page the text comes from; None for files without pages."""


@dataclass(frozen=True)
class QueryAnswer:
    as_of: datetime
    region_chain: tuple[str, ...]
    results: list[QueryResult]
    warnings: list[str] = field(default_factory=list)
