"""The pages for people: the staleness report and one document's history. Plain HTML, no JavaScript."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from kb.changes import compare
from kb.documents import GLOBAL
from kb.errors import KBError
from kb.knowledge import KnowledgeBase
from kb.server.guard import SESSION_COOKIE
from kb.server.routes import KB
from kb.server.routes.staleness import Filter
from kb.server.schemas import ErrorOut
from kb.staleness import Severity, StalenessReason, StalenessRow
from kb.timeline import VersionStatus

router = APIRouter(tags=["report"])
# The pages are HTML, their errors JSON: a "model" here would be documented as text/html.
ERRORS = {
    code: {"description": "Error", "content": {"application/json": {"schema": ErrorOut.model_json_schema()}}}
    for code in (400, 401, 404, 503)
}
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
)

_SEVERITY_ORDER = list(Severity)
SORTS: dict[str, Callable[[StalenessRow], Any]] = {
    "severity": lambda r: (-_SEVERITY_ORDER.index(r.severity), r.reason.value),
    "reason": lambda r: (r.reason.value, -_SEVERITY_ORDER.index(r.severity)),
    "document": lambda r: ((r.title or r.doc_id or r.source).casefold(), r.region or ""),
    "region": lambda r: (r.region or "", r.doc_id or ""),
    "owner": lambda r: ((r.owner or "~").casefold(), r.doc_id or ""),
    "since": lambda r: (r.since, r.doc_id or ""),
}


def _ingest_problem(request: Request) -> dict[str, object] | None:
    """What the watcher's failing batches say (a full disk, a store down), for a banner above the report."""
    watcher = request.app.state.kb_state.watcher
    return watcher.health.describe() if watcher is not None and watcher.health.failing else None


def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(template).render(**context), status_code=status)


ACTIONS = {StalenessReason.review_overdue: "review", StalenessReason.review_due_soon: "review",
           StalenessReason.variant_out_of_sync: "acknowledge"}  # fmt: skip
"""The rows a button on the report settles."""


@dataclass(frozen=True)
class RowAction:
    kind: str
    """``review`` or ``acknowledge``: the form the row gets."""
    file_hash: str
    """The version's file as the page saw it: a save since makes the action a conflict."""
    base_version: int | None


def _actions(kb: KnowledgeBase, rows: list[StalenessRow]) -> dict[tuple[str, str], RowAction]:
    out = {}
    for row in rows:
        if row.reason not in ACTIONS or row.doc_id is None or row.region is None:
            continue
        try:
            record = kb.in_force(row.doc_id, row.region).record
        except KBError:
            continue  # it changed while the page was being made: no button rather than a wrong one
        base = kb.newer_base(record) if ACTIONS[row.reason] == "acknowledge" else None
        out[(row.doc_id, row.region)] = RowAction(ACTIONS[row.reason], record.file_hash,
                                                   base.record.version if base else None)  # fmt: skip
    return out


@router.get("/report", response_class=HTMLResponse, responses=ERRORS)  # type: ignore[arg-type]
def report(
    request: Request,
    kb: KB,
    wanted: Filter,
    sort: Literal["severity", "reason", "document", "region", "owner", "since"] = "severity",
    order: Literal["asc", "desc"] = "asc",
) -> HTMLResponse:
    """The staleness report and the documents in force; filter and sort with the query string."""
    everything = kb.staleness()
    rows = sorted(wanted.apply(everything), key=SORTS[sort], reverse=order == "desc")
    filters: dict[str, list[str]] = {
        "reason": [str(r) for r in wanted.reasons], "owner": wanted.owners, "region": wanted.regions,
        "severity": [str(s) for s in wanted.severities],
    }  # fmt: skip

    def link(**change: str) -> str:
        """This page's address with some parameters changed (an empty value drops the filter)."""
        params = {key: ",".join(values) for key, values in filters.items() if values}
        params |= {"sort": sort, "order": order} | change
        return "/report?" + urlencode({key: value for key, value in params.items() if value})

    return page(
        "report.html",
        view="report",
        actions=_actions(kb, rows),
        here=str(request.url.path) + ("?" + str(request.url.query) if request.url.query else ""),
        signed_in=request.cookies.get(SESSION_COOKIE) is not None,
        now=kb.now(),
        rows=rows,
        total=len(everything),
        by_reason=sorted(Counter(row.reason.value for row in everything).items()),
        by_owner=sorted(Counter(row.owner or "(no owner)" for row in everything).items()),
        reasons=[reason.value for reason in StalenessReason],
        severities=[severity.value for severity in Severity],
        owners=sorted({row.owner for row in everything if row.owner}, key=str.casefold),
        regions=sorted({row.region for row in everything if row.region}),
        selected=filters,
        sort=sort,
        order=order,
        link=link,
        ingest=_ingest_problem(request),
        query=str(request.url.query),
        documents=kb.documents(include_all=True),
    )


@router.get("/report/documents/{doc_id:path}", response_class=HTMLResponse, responses=ERRORS)  # type: ignore[arg-type]
def document_page(doc_id: str, kb: KB) -> HTMLResponse:
    """Every version of one document in every region: validity, status and what changed from the one before."""
    history = kb.history(doc_id)
    texts = kb.texts([validity.record.id for validity, _ in history])
    regions: dict[str, list[dict[str, Any]]] = {}
    for validity, status in history:
        versions = regions.setdefault(validity.record.region, [])
        before = versions[-1]["validity"].record.id if versions else None
        versions.append(
            {
                "validity": validity,
                "status": status,
                "changes": compare(texts[before], texts[validity.record.id]) if before is not None else None,
                "before": versions[-1]["validity"].record.version if versions else None,
            }
        )
    return page(
        "document.html",
        doc_id=doc_id,
        now=kb.now(),
        regions=dict(sorted(regions.items(), key=lambda item: (item[0] != GLOBAL, item[0]))),
        rows=[row for row in kb.staleness() if row.doc_id == doc_id],
        in_force=VersionStatus.in_force,
    )
