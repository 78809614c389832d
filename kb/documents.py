"""The document model: the front-matter schema and the vocabularies shared by API, report and docs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kb.durations import parse_duration
from kb.errors import InvalidFrontMatter


class DocType(StrEnum):
    policy = "policy"
    """A rule the company applies (returns, refunds, warranty)."""
    product_spec = "product_spec"
    """Facts about one product or a family of products."""
    procedure = "procedure"
    """Steps an agent or employee follows."""
    faq = "faq"
    """Questions and answers as customers ask them."""
    reference = "reference"
    """Background material: tables, glossaries, contacts."""


class RiskTier(StrEnum):
    low = "low"
    """An agent may act on it alone."""
    medium = "medium"
    """An agent may quote it; exceptions go to a person."""
    regulated = "regulated"
    """Legal or regulatory text: quote it exactly, never improvise around it."""

    @property
    def rank(self) -> int:
        return list(RiskTier).index(self)


GLOBAL = "global"
_REGION = re.compile(r"^[A-Z]{2,3}(-[A-Z0-9]{1,8})*$")
REGION_CODE = r"\s*([Gg][Ll][Oo][Bb][Aa][Ll]|[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*)\s*"
"""What ``normalize_region`` accepts, as a regular expression for the OpenAPI schema."""


def normalize_region(value: str) -> str:
    """Region codes are case-insensitive: ``global`` stays lower case, ``eu``/``us-ca`` become upper."""
    text = str(value).strip()
    if text.lower() == GLOBAL:
        return GLOBAL
    upper = text.upper()
    if not _REGION.match(upper):
        raise ValueError(f"expected a region code like global, EU, DE or US-CA, got {value!r}")
    return upper


class FrontMatter(BaseModel):
    """The front-matter keys of the README; unknown keys are kept in ``model_extra`` as metadata."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    doc_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", max_length=200)
    title: str | None = Field(None, min_length=1, max_length=300)
    doc_type: DocType = DocType.policy
    region: str = GLOBAL
    products: list[str] = Field(default_factory=list)
    version: int | None = Field(None, ge=1, strict=True)
    effective_from: datetime | date | None = None
    effective_to: datetime | date | None = None
    review_by: datetime | date | None = None
    review_every: str | None = None
    owner: str | None = None
    risk_tier: RiskTier = RiskTier.low
    see: list[str] = Field(default_factory=list)
    last_reviewed: datetime | date | None = None
    """When the owner last confirmed the text: a review cycle (review_every, the default) counts from it."""
    reviewed_by: str | None = None
    in_sync_with: int | None = Field(None, ge=1, strict=True)
    """The parent region's version this variant was checked against: not out of sync until the base changes."""

    @field_validator("effective_from", "effective_to", "review_by", "last_reviewed", mode="before")
    @classmethod
    def _when(cls, value: object) -> object:
        return date_or_datetime(value)

    @field_validator("region", mode="before")
    @classmethod
    def _region(cls, value: object) -> str:
        return normalize_region(str(value))

    @field_validator("products", "see", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        if isinstance(value, str):
            return [value]
        return value

    @field_validator("review_every")
    @classmethod
    def _review_every(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("owner", "title", "doc_id", "reviewed_by", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        # YAML turns `owner: 2026` or `title: yes` into non-strings; people meant the text.
        return value if value is None or isinstance(value, str) else str(value)


_DATE = "expected an ISO date like 2026-12-01 or a datetime like 2026-12-01T09:00:00+01:00"
_EXPECTED = {
    "effective_from": _DATE,
    "effective_to": _DATE,
    "review_by": _DATE,
    "last_reviewed": _DATE,
    "in_sync_with": "expected the parent region's version number, a whole number from 1 up",
    "doc_type": "expected one of " + ", ".join(t.value for t in DocType),
    "risk_tier": "expected one of " + ", ".join(t.value for t in RiskTier),
    "version": "expected a whole number from 1 up",
    "products": "expected a list of product ids",
    "see": "expected a doc_id or a list of doc_ids",
}


def validate_front_matter(raw: dict[str, Any], path: str) -> FrontMatter:
    """Validate raw YAML keys, naming the file, the key and what was expected on failure."""
    try:
        front = FrontMatter.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else "front matter"
        expected = _EXPECTED.get(key, error["msg"])
        raise InvalidFrontMatter(path, key, f"{expected} (got {error.get('input')!r})") from None
    if front.review_by is not None and front.review_every is not None:
        raise InvalidFrontMatter(path, "review_every", "set review_by or review_every, not both")
    return front


FIRST_YEAR, LAST_YEAR = 1900, 8999
"""Years kb accepts in a date or moment: far enough from 1 and 9999 that an offset, a review cycle or a day
added never overflows (``9999-12-31T23:59:59-12:00`` once gave a 500)."""
YEAR_PATTERN = r"^(19|[2-8][0-9])[0-9][0-9]-"
"""The same range, for the OpenAPI schema of a date or datetime string."""
_ISO_DATE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


def date_or_datetime(value: object) -> object:
    """A text that is a bare ISO date is that date, whatever the YAML or JSON quoting: ``"2027-06-30"`` must not
    become midnight (a day earlier as an inclusive end), and a datetime with an offset keeps its offset."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text) if _ISO_DATE.match(text) else datetime.fromisoformat(text)
        except ValueError:
            return value  # the model's own validation names the key and what was expected
    return value


def start_of(value: date | datetime, zone: ZoneInfo) -> datetime:
    """The UTC moment a date (midnight in ``zone``) or a datetime (naive ones read in ``zone``) begins.

    Raises ValueError for a year outside FIRST_YEAR..LAST_YEAR."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"{value.isoformat()} is out of range: use a year from {FIRST_YEAR} to {LAST_YEAR}")
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=zone)
    else:
        moment = datetime.combine(value, time.min, tzinfo=zone)
    return moment.astimezone(UTC)


def end_of(value: date | datetime, zone: ZoneInfo) -> datetime:
    """Exclusive end: a date is the last day in force (inclusive), a datetime the moment it stops."""
    if isinstance(value, datetime):
        return start_of(value, zone)
    return start_of(value, zone) + timedelta(days=1)


@dataclass(frozen=True)
class Document:
    """A validated policy file with every default resolved, ready to become a version."""

    doc_id: str
    region: str
    title: str
    doc_type: DocType
    products: tuple[str, ...]
    version: int | None
    effective_from: datetime | None
    effective_to: datetime | None
    review_by: datetime | None
    review_every: timedelta | None
    owner: str | None
    risk_tier: RiskTier
    source: str
    content_hash: str
    meta: dict[str, Any] = field(default_factory=dict)
    references: tuple[str, ...] = ()
    """``doc:<doc_id>`` for each ``see:`` entry, ``file:<path>`` for each link to another policy file."""
    pii: dict[str, int] = field(default_factory=dict)
    """Personal data found in the body by kind, counted before any redaction."""
    last_reviewed: datetime | None = None


@dataclass(frozen=True)
class Chunk:
    """One retrievable piece of a version: its heading path and text, addressed by content."""

    chunk_id: str
    section: tuple[str, ...]
    text: str
    embed_text: str
    """What the encoder sees: the document title and heading path before the text."""
    page: int | None = None
    """The PDF page the chunk comes from; None for files without pages."""
