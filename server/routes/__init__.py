"""HTTP routes, one module per resource; each parses, calls one kb function and returns a schema."""

from __future__ import annotations

from fastapi import Request

from kb.errors import NotReady
from kb.knowledge import KnowledgeBase


def knowledge_base(request: Request) -> KnowledgeBase:
    state = request.app.state.kb_state
    if state.kb is None or not state.ready:
        raise NotReady("the index is still loading; retry shortly")
    kb: KnowledgeBase = state.kb
    return kb
