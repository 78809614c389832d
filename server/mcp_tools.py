"""kb as an MCP server: the tools an agent framework discovers by itself, over stdio or streamable HTTP.

Each tool calls the same ``KnowledgeBase`` method as its HTTP route and returns the route's own schema, so an
agent gets the same citation, validity and flags whichever door it comes through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field
from starlette.routing import BaseRoute

from kb.audit import MAX_AUDIT_CHARS, audit
from kb.documents import DocType, RiskTier
from kb.errors import KBError
from kb.feed import MAX_LIMIT
from kb.knowledge import KnowledgeBase
from kb.retrieval import MAX_K, MAX_QUERY_CHARS
from kb.server.schemas import (
    AuditBody,
    AuditOut,
    ChangesOut,
    DocumentHistoryOut,
    DocumentSummaryOut,
    QueryBody,
    QueryOut,
    VersionOut,
)
from kb.settings import Settings

INSTRUCTIONS = """\
kb holds a company's policies (returns, refunds, shipping, warranty, product specs) as versioned,
effective-dated documents. It only ever answers from the text in force for your region at the moment asked.
Quote or paraphrase what search_policies returns, cite doc_id, version and source, and respect each result's
risk_tier and flags. If a search returns nothing or a warning, say you do not know rather than guessing.
Before you send an answer about policy, pass your draft to audit_answer and fix every claim it does not call
current."""

_REGION = (
    "Your customer's region or locale code, e.g. global, EU, DE, US, US-CA. kb resolves each document to the most "
    "specific variant on the region's chain (DE -> EU -> global) and never returns another region's variant. "
    "Default: global."
)
_AS_OF = (
    "Another moment than now, as an ISO date (2027-01-01, the start of that day in the service's zone) or "
    "datetime. Use it only when the customer asks about a past or future date (an order placed last March, a "
    "rule that starts next month); leave it out for what applies today."
)
_DOC_TYPES = "Only these kinds of document: policy, product_spec, procedure, faq or reference."

SEARCH_DESCRIPTION = f"""\
Search the policies in force and return the best-matching passages, best first.

Each result has `text` (the passage), `score` (cosine similarity, higher is closer), `section` (heading path),
and `doc` with the citation: doc_id, title, doc_type, region, version, source (the file), owner,
effective_from and effective_to (validity: the passage is in force on [effective_from, effective_to); null
effective_to means open-ended), and risk_tier:
- low: you may act on it alone;
- medium: you may quote it, but exceptions go to a person;
- regulated: legal or regulatory text: quote it exactly and never improvise around it.
`flags` name staleness that does not stop a passage being served: review_overdue (its owner has not confirmed
it on time: answer but mention it may be checked), review_due_soon, expiring_soon (it ends soon: check
effective_to before promising anything after that date), variant_out_of_sync (a regional variant older than
its base), pii_detected (the passage holds personal data: never repeat it). `warnings` say when nothing in force
answers the question well, or when a region fell back to its parent; do not pass weak matches off as answers.
Region: {_REGION} as_of: {_AS_OF}"""


@contextmanager
def _as_tool_error() -> Iterator[None]:
    """A kb error becomes the tool's error answer, with the code the API's error body would carry."""
    try:
        yield
    except KBError as exc:
        raise ToolError(f"{exc.code}: {exc.message}") from exc


def build_mcp(get_kb: Callable[[], KnowledgeBase]) -> MCPServer:
    """The MCP server over whatever knowledge base ``get_kb`` returns when a tool is called."""
    server: MCPServer = MCPServer("kb", instructions=INSTRUCTIONS, version="0.1.0")

    @server.tool(description=SEARCH_DESCRIPTION)
    def search_policies(
        query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS, description="The question.")],
        k: Annotated[int, Field(ge=1, le=MAX_K, description="How many passages to return.")] = 5,
        region: Annotated[str, Field(description=_REGION)] = "global",
        as_of: Annotated[date | datetime | None, Field(description=_AS_OF)] = None,
        doc_types: Annotated[list[DocType] | None, Field(description=_DOC_TYPES)] = None,
        products: Annotated[
            list[str] | None, Field(description="Only documents that apply to one of these product ids (or to all).")
        ] = None,
        max_risk_tier: Annotated[
            RiskTier | None,
            Field(description="Leave out documents above this tier, e.g. low to get only what you may act on alone."),
        ] = None,
        min_score: Annotated[
            float | None,
            Field(
                ge=-1,
                le=1,
                description="Relevance floor; leave it unset for the service's default. When no "
                "passage clears it, results are empty and a warning says so: tell the customer you do not know.",
            ),
        ] = None,
    ) -> QueryOut:
        body = QueryBody(
            query=query, k=k, region=region, as_of=as_of, doc_types=doc_types, products=products,
            max_risk_tier=max_risk_tier, mode=None, min_score=min_score,
        )  # fmt: skip
        with _as_tool_error():
            return QueryOut.of(get_kb().query(body.to_request()))

    @server.tool(
        description="Every version of one document in every region, with validity (effective_from, effective_to), "
        "status (in_force, future, superseded, expired, retired, retracted, corrected), risk_tier and source. "
        "Use it to check when a rule changed or what replaces it; only versions with status in_force apply now."
    )
    def get_document(
        doc_id: Annotated[str, Field(description="The doc_id of a search result or of list_documents.")],
    ) -> DocumentHistoryOut:
        with _as_tool_error():
            history = get_kb().history(doc_id)
        versions = [VersionOut.of_version(validity, status) for validity, status in history]
        return DocumentHistoryOut(doc_id=doc_id, regions=sorted({v.region for v in versions}), versions=versions)

    @server.tool(
        description="The documents kb holds: for each doc_id and region, the version in force now with its "
        "validity, risk_tier and source. status=all adds documents with nothing in force (expired, retired, or "
        "only a future version)."
    )
    def list_documents(status: Literal["current", "all"] = "current") -> list[DocumentSummaryOut]:
        with _as_tool_error():
            return [DocumentSummaryOut.summary(item) for item in get_kb().documents(include_all=status == "all")]

    @server.tool(
        description="What changed in the policies, oldest first: kind is published (a new version; it may take "
        "effect later), corrected (a version's text was fixed), took_effect (a dated version came into force), "
        "ended (a version expired or was superseded on its date), retired (its file was deleted: no longer "
        "served), retracted (a future version withdrawn before its date) or rejected (a broken file; what was in "
        "force stays). Pass the answer's `next` as `since` to get only newer changes. Region: only changes on "
        "that region's chain (DE sees DE, EU and global). Use it to refresh what you cached or told customers."
    )
    def recent_changes(
        since: Annotated[str | None, Field(description="The `next` of an earlier call; leave out for all.")] = None,
        region: Annotated[str | None, Field(description=_REGION)] = None,
        limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 100,
    ) -> ChangesOut:
        with _as_tool_error():
            return ChangesOut.of(get_kb().changes(since, region, limit))

    @server.tool(
        description="Check your draft answer before the customer reads it. Each sentence or list item is a claim, "
        "given a status: current (in force for the region now), outdated (it matches a superseded, expired, "
        "retired or retracted version: `in_force` is the passage that replaced it and `changes` says what changed, "
        'e.g. "30 days" -> "14 days"), other_region (another region\'s variant), future (a version not yet in '
        "force) or unsupported (kb holds nothing that says it). Citations like [chunk:ID] or (doc_id v2) are "
        "checked too. Fix or drop every claim that is not current; `verdict` is current only when all are. "
        f"Region: {_REGION} as_of: {_AS_OF}"
    )
    def audit_answer(
        text: Annotated[str, Field(min_length=1, max_length=MAX_AUDIT_CHARS, description="Your draft answer.")],
        region: Annotated[str, Field(description=_REGION)] = "global",
        as_of: Annotated[date | datetime | None, Field(description=_AS_OF)] = None,
    ) -> AuditOut:
        body = AuditBody(text=text, region=region, as_of=as_of)
        with _as_tool_error():
            return AuditOut.of(audit(get_kb(), body.to_request()))

    return server


def http_routes(server: MCPServer, settings: Settings) -> list[BaseRoute]:
    """The streamable HTTP endpoint at /mcp, to add to the FastAPI app's routes (server/guard.py checks the key).

    DNS-rebinding protection stays on when kb listens on loopback (a browser page cannot reach it); on
    another address the API keys guard it instead.
    """
    security = None
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = server.streamable_http_app(streamable_http_path="/mcp", transport_security=security, host=settings.host)
    return list(app.routes)
