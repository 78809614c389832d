"""The report's other views: what changes in the next days, and which variant each region is served."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from kb.outlook import MAX_DAYS, coverage_csv, upcoming_csv
from kb.server.routes import KB
from kb.server.routes.report import ERRORS, page
from kb.server.routes.staleness import CsvResponse

router = APIRouter(tags=["report"])
# The page, or with ?format=csv the same rows as CSV.
_RESPONSES = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **ERRORS}


@router.get("/report/upcoming", response_class=HTMLResponse, responses=_RESPONSES)  # type: ignore[arg-type]
def upcoming(
    kb: KB,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="How far ahead to look.")] = 30,
    region: Annotated[str | None, Query(max_length=40, description="Only this region's versions.")] = None,
    format: Literal["html", "csv"] = "html",
) -> Response:
    """Versions that take effect or end (with nothing after them) in the next ``days`` days, by date."""
    items = kb.upcoming(days, region or None)
    if format == "csv":
        return CsvResponse(upcoming_csv(items))
    regions = sorted({u.record.region for u in kb.upcoming(days)}, key=lambda r: (r != "global", r))
    return page("upcoming.html", now=kb.now(), items=items, days=days, region=region, regions=regions, view="upcoming")


@router.get("/report/coverage", response_class=HTMLResponse, responses=_RESPONSES)  # type: ignore[arg-type]
def coverage(kb: KB, format: Literal["html", "csv"] = "html") -> Response:
    """Each document by region: the variant (region and version) each region's agents are served today."""
    regions, rows = kb.coverage()
    if format == "csv":
        return CsvResponse(coverage_csv(regions, rows))
    return page("coverage.html", now=kb.now(), regions=regions, rows=rows, view="coverage")
