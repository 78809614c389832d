from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse

from kb.documents import REGION_CODE, normalize_region
from kb.errors import InvalidRequest
from kb.server.routes import KB, errors
from kb.server.schemas import StalenessOut, StalenessRowOut
from kb.staleness import Severity, StalenessReason, StalenessRow, select, to_csv

router = APIRouter(prefix="/v1", tags=["staleness"])
E = TypeVar("E", bound=StrEnum)


def _values(given: Iterable[str] | None) -> list[str]:
    """Repeated parameters and comma-separated lists alike; an empty value (a form's "all") is no filter."""
    return [part.strip() for value in given or () for part in value.split(",") if part.strip()]


def _members(kind: type[E], name: str, given: list[str] | None) -> list[E]:
    try:
        return [kind(value) for value in _values(given)]
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidRequest(f"{name} must be one of {allowed}; got {', '.join(_values(given))}") from None


@dataclass(frozen=True)
class StalenessFilter:
    """The filters of the JSON, the CSV and the page, parsed once."""

    reasons: list[StalenessReason]
    owners: list[str]
    regions: list[str]
    severities: list[Severity]

    def apply(self, rows: Iterable[StalenessRow]) -> list[StalenessRow]:
        return select(rows, self.reasons, self.owners, self.regions, self.severities)


def _listed(item: str) -> dict[str, object]:
    """The schema of a parameter that takes ``item``s, repeated or comma-separated, empty parts ignored."""
    return {"items": {"type": "string", "pattern": rf"^\s*({item}\s*)?(,\s*({item}\s*)?)*$"}}


def _one_of(kind: type[StrEnum]) -> str:
    return "(" + "|".join(member.value for member in kind) + ")"


def staleness_filter(
    reason: Annotated[
        list[str] | None,
        Query(
            description="Reasons to keep (repeat or comma-separate).",
            json_schema_extra=_listed(_one_of(StalenessReason)),
        ),
    ] = None,
    owner: Annotated[list[str] | None, Query(description="Owners to keep, compared case-insensitively.")] = None,
    region: Annotated[
        list[str] | None,
        Query(description="Regions to keep, e.g. global, EU.", json_schema_extra=_listed(f"({REGION_CODE})")),
    ] = None,
    severity: Annotated[
        list[str] | None,
        Query(description="Severities to keep: low, medium, high.", json_schema_extra=_listed(_one_of(Severity))),
    ] = None,
) -> StalenessFilter:
    try:
        regions = [normalize_region(value) for value in _values(region)]
    except ValueError as exc:
        raise InvalidRequest(f"region: {exc}") from None
    return StalenessFilter(
        _members(StalenessReason, "reason", reason), _values(owner), regions, _members(Severity, "severity", severity)
    )


Filter = Annotated[StalenessFilter, Depends(staleness_filter)]


@router.get("/staleness", response_model=StalenessOut, responses=errors(400, 401, 503))  # type: ignore[arg-type]
def staleness(kb: KB, wanted: Filter) -> StalenessOut:
    """What content teams must look at, most severe first; ``counts`` are of the rows returned."""
    rows = wanted.apply(kb.staleness())
    return StalenessOut(
        generated_at=kb.now(),
        counts=dict(Counter(row.reason.value for row in rows)),
        rows=[StalenessRowOut.of(row) for row in rows],
    )


class CsvResponse(PlainTextResponse):
    media_type = "text/csv"


@router.get("/staleness.csv", response_class=CsvResponse, responses=errors(400, 401, 503))  # type: ignore[arg-type]
def staleness_csv(kb: KB, wanted: Filter) -> CsvResponse:
    """The same rows as CSV, for a spreadsheet; takes the same filters."""
    return CsvResponse(to_csv(wanted.apply(kb.staleness())))
