"""HTTP routes, one module per resource; each parses, calls one kb function and returns a schema."""

from __future__ import annotations

from fastapi import Request

from kb.knowledge import KnowledgeBase


def knowledge_base(request: Request) -> KnowledgeBase:
    kb: KnowledgeBase = request.app.state.kb_state.serving_kb()
    return kb
