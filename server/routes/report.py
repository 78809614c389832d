from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from kb.knowledge import KnowledgeBase
from server.routes import knowledge_base

router = APIRouter(tags=["report"])
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


@router.get("/report", response_class=HTMLResponse)
def report(request: Request, kb: Annotated[KnowledgeBase, Depends(knowledge_base)]) -> HTMLResponse:
    """The staleness report and the documents in force, as a page for people."""
    rows = kb.staleness()
    page = _templates.get_template("report.html").render(
        now=kb.now(),
        rows=rows,
        counts=sorted(Counter(row.reason.value for row in rows).items()),
        documents=kb.documents(include_all=True),
    )
    return HTMLResponse(page)
