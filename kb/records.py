"""The records the ledger holds, as the rest of kb sees them: versions, files, chunks, change events and
webhook receivers. Plain values: reading and writing them is kb/ledger.py's business."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kb.documents import DocType, RiskTier


@dataclass(frozen=True)
class VersionRecord:
    id: int
    doc_id: str
    region: str
    version: int
    revision: int
    title: str
    doc_type: DocType
    products: tuple[str, ...]
    owner: str | None
    risk_tier: RiskTier
    meta: dict[str, Any]
    effective_from: datetime
    effective_to: datetime | None
    """Declared exclusive end; the end that applies also depends on the next version (kb.timeline)."""
    review_due: datetime | None
    source: str
    content_hash: str
    """Hash of the body alone: equal bodies mean an edit touched only front matter."""
    file_hash: str
    explicit_version: bool
    ingested_at: datetime
    replaced_at: datetime | None
    retracted_at: datetime | None
    retired_at: datetime | None
    references: tuple[str, ...] = ()
    """``doc:<doc_id>`` (a ``see:`` key) and ``file:<path>`` (a Markdown link to another policy file)."""
    pii: dict[str, int] = field(default_factory=dict)
    """Personal data found in the file, by kind (before any redaction)."""

    @property
    def series(self) -> tuple[str, str]:
        return (self.doc_id, self.region)


@dataclass(frozen=True)
class FileRecord:
    path: str
    content_hash: str
    doc_id: str | None
    version_id: int | None
    error: str | None
    error_since: datetime | None
    error_kind: str | None = None
    """The staleness reason of the error: parse_error, conflict or pii_detected."""


@dataclass(frozen=True)
class StoredChunk:
    chunk_id: str
    section: tuple[str, ...]
    text: str
    page: int | None = None
    """The PDF page the chunk comes from."""


@dataclass(frozen=True)
class Event:
    """One entry of the change feed (kb.feed); ``cursor`` is its position, 0 until it is stored."""

    at: datetime
    kind: str
    doc_id: str | None
    region: str | None
    version: int | None
    source: str
    summary: str
    cursor: int = 0


@dataclass(frozen=True)
class WebhookState:
    url: str
    cursor: int
    """The last event delivered to this receiver."""
    attempts: int
    """Failed attempts at the next event since its last success."""
    next_attempt_at: datetime | None
    last_error: str | None
