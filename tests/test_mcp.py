"""MCP: the SDK's own client over stdio (a `kb mcp` subprocess) and streamable HTTP (uvicorn)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import httpx2
from conftest import Clock, live_server, write_doc
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from kb.embedder import Embedder
from kb.server.app import create_app
from kb.server.schemas import QueryBody
from kb.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_TOOLS = {"search_policies", "get_document", "list_documents", "recent_changes", "audit_answer"}

Session = Callable[[ClientSession], Awaitable[Any]]


def _corpus(docs: Path) -> None:
    (docs / "regions.yaml").write_text("EU: global\nDE: EU\nUS: global\n", encoding="utf-8")
    write_doc(docs, "returns.md", "# Returns\n\nCustomers may return items within 30 days of delivery.\n",
              doc_id="returns", effective_from="2026-01-01", owner="CS")  # fmt: skip
    write_doc(docs, "returns-eu.md", "# Returns EU\n\nEU consumers may withdraw within 14 days without reason.\n",
              doc_id="returns", region="EU", effective_from="2026-01-01", risk_tier="regulated")  # fmt: skip
    write_doc(docs, "returns-us.md", "# Returns US\n\nUS customers may return items within 45 days.\n",
              doc_id="returns", region="US", effective_from="2026-01-01")  # fmt: skip


async def _over_http(url: str, key: str | None, body: Session) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as client,
        streamable_http_client(f"{url}/mcp", http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return await body(session)


async def _tools_and_search(session: ClientSession) -> tuple[set[str], dict[str, Any], Any, dict[str, Any]]:
    tools = await session.list_tools()
    found = await session.call_tool("search_policies", {"query": "how long to return an item", "region": "DE"})
    missing = await session.call_tool("get_document", {"doc_id": "no-such-doc"})
    changes = await session.call_tool("recent_changes", {"region": "DE"})
    return {t.name for t in tools.tools}, found.structured_content, missing, changes.structured_content


def test_mcp_over_streamable_http_serves_what_v1_query_serves(
    docs: Path, tmp_path: Path, embedder: Embedder, clock: Clock
) -> None:
    _corpus(docs)
    settings = Settings(docs=docs, data=tmp_path / "data", watch=False, api_keys=["secret"])
    with live_server(create_app(settings, embedder=embedder, clock=clock)) as url:
        names, found, missing, changes = asyncio.run(_over_http(url, "secret", _tools_and_search))
        feed = httpx.get(f"{url}/v1/changes", params={"region": "DE"}, headers={"X-API-Key": "secret"}).json()
        direct = httpx.post(
            f"{url}/v1/query", json={"query": "how long to return an item", "region": "DE"},
            headers={"X-API-Key": "secret"},
        ).json()  # fmt: skip
        refused = httpx.post(f"{url}/mcp", json={}, headers={"accept": "application/json, text/event-stream"})
    assert names == EXPECTED_TOOLS
    assert found == direct
    top = found["results"][0]
    assert (top["doc"]["region"], top["doc"]["risk_tier"], top["doc"]["source"]) == ("EU", "regulated", "returns-eu.md")
    assert {r["doc"]["region"] for r in found["results"]} == {"EU"}
    assert "flags" in top and top["doc"]["effective_from"] == "2026-01-01T00:00:00Z"
    assert missing.is_error and "document_not_found" in missing.content[0].text
    # For DE, the global returns policy is shadowed by the EU variant: its publication changes nothing served.
    assert changes == feed and [(c["kind"], c["region"]) for c in changes["changes"]] == [("published", "EU")]
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


def test_tool_descriptions_explain_region_as_of_risk_tiers_and_flags(
    docs: Path, settings: Settings, embedder: Embedder, clock: Clock
) -> None:
    async def describe(session: ClientSession) -> dict[str, Any]:
        return {t.name: t for t in (await session.list_tools()).tools}

    with live_server(create_app(settings, embedder=embedder, clock=clock)) as url:
        tools = asyncio.run(_over_http(url, None, describe))
    search = tools["search_policies"]
    for words in ("DE -> EU -> global", "as_of", "regulated", "review_overdue", "expiring_soon", "effective_to"):
        assert words in (search.description or "") + str(search.input_schema), words
    # The arguments of /v1/query, but for the ranking mode (an operator's choice, not an agent's).
    assert set(search.input_schema["properties"]) == set(QueryBody.model_fields) - {"mode"}


def test_kb_mcp_over_stdio_answers_from_the_folder(docs: Path, tmp_path: Path, model_cache: Path) -> None:
    _corpus(docs)
    data = tmp_path / "data"
    shutil.copytree(model_cache, data / "models")  # the session's model export, not a second one
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "KB_DOCS": str(docs), "KB_DATA": str(data), "KB_WATCH": "false",
        "ORT_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
    }  # fmt: skip
    params = StdioServerParameters(
        command=sys.executable, args=["-c", "from kb.server.cli import main; main()", "mcp"], env=env, cwd=str(ROOT)
    )

    async def run() -> tuple[set[str], dict[str, Any], list[Any], Any]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            names, found, _, _ = await _tools_and_search(session)
            listed = await session.call_tool("list_documents", {})
            history = await session.call_tool("get_document", {"doc_id": "returns"})
            return names, found, listed.structured_content["result"], history.structured_content

    names, found, listed, history = asyncio.run(run())
    assert names == EXPECTED_TOOLS
    assert found["region_chain"] == ["DE", "EU", "global"]
    assert found["results"][0]["doc"]["source"] == "returns-eu.md"
    assert sorted((d["doc_id"], d["region"], d["status"]) for d in listed) == [
        ("returns", "EU", "in_force"), ("returns", "US", "in_force"), ("returns", "global", "in_force")
    ]  # fmt: skip
    assert history["regions"] == ["EU", "US", "global"]
