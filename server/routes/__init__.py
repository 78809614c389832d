"""HTTP routes, one module per resource; each parses, calls one kb function and returns a schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from kb.knowledge import KnowledgeBase
from kb.server.schemas import ErrorOut


async def knowledge_base(request: Request) -> KnowledgeBase:
    # async: a plain function would be run in a worker thread, one more hand-over per request for a lookup.
    kb: KnowledgeBase = request.app.state.kb_state.serving_kb()
    return kb


KB = Annotated[KnowledgeBase, Depends(knowledge_base)]
"""The knowledge base a route works on, once it is ready (503 until then)."""


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a JSON route documents: each has the shape ``{"error": {"code", "message"}}``."""
    return {code: {"model": ErrorOut} for code in codes}
