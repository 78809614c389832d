from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from kb.documents import REGION_CODE
from kb.feed import MAX_LIMIT
from kb.server.routes import KB, errors
from kb.server.schemas import ChangesOut

router = APIRouter(prefix="/v1", tags=["changes"])


@router.get("/changes", response_model=ChangesOut, responses=errors(400, 401, 422, 503))  # type: ignore[arg-type]
def changes(
    kb: KB,
    since: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{0,18}$", description="The `next` of an earlier answer; none: from the start."),
    ] = None,
    region: Annotated[
        str | None,
        Query(
            max_length=40,
            description="Only events on this region's chain.",
            json_schema_extra={"pattern": f"^{REGION_CODE}$"},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> ChangesOut:
    """Every change to what agents are served, oldest first; date-driven ones (took_effect, ended) at their moment."""
    return ChangesOut.of(kb.changes(since, region, limit))
