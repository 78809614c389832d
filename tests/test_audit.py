"""Answer audit: a draft checked against what is in force, history, other regions and the future."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import Service, write_doc
from mcp.client.client import Client

from kb.claims import changes, split_claims
from kb.embedder import Embedder
from kb.knowledge import KnowledgeBase
from kb.server.cli import cli
from kb.server.mcp_tools import build_mcp
from kb.settings import Settings

OLD = "Customers may return items within 30 days of delivery for a full refund."
NOW = "Customers may return items within 14 days of delivery for a full refund."
NEXT = "Customers may return items within 21 days of delivery for a full refund."
EU = "Customers in the EU may withdraw from a purchase within 45 days without giving any reason."
SHIPPING = "Standard shipping to a home address takes 3 to 5 business days."
OFF_TOPIC = "Our cafeteria serves pistachio ice cream to visitors every Friday afternoon."


def _corpus(docs: Path) -> None:
    (docs / "regions.yaml").write_text("EU: global\n", encoding="utf-8")
    for version, sentence, start in ((1, OLD, "2025-01-01"), (2, NOW, "2026-06-01"), (3, NEXT, "2027-03-01")):
        fee = f"A restocking fee of {'$70' if version == 1 else '$50'} applies to opened furniture."
        write_doc(docs, f"returns-v{version}.md", f"# Returns\n\n{sentence}\n\n## Restocking\n\n{fee}\n",
                  doc_id="returns", version=version, effective_from=start)  # fmt: skip
    write_doc(docs, "returns-eu.md", f"# Returns (EU)\n\n{EU}\n", doc_id="returns", region="EU",
              effective_from="2025-01-01")  # fmt: skip
    write_doc(docs, "shipping.md", f"# Shipping\n\n{SHIPPING}\n", doc_id="shipping", effective_from="2025-01-01")


@pytest.fixture
def audited(service: Service, docs: Path) -> Service:
    _corpus(docs)
    service.sync()
    return service


def _audit(service: Service, text: str, **body: Any) -> dict[str, Any]:
    response = service.http.post("/v1/audit", json={"text": text, **body})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _status(claim: dict[str, Any]) -> tuple[str, str | None, str | None, int | None]:
    doc = claim["support"]["doc"] if claim["support"] else None
    return claim["status"], doc and doc["doc_id"], doc and doc["region"], doc and doc["version"]


def test_each_claim_gets_its_status_and_the_verdict_the_most_serious(audited: Service) -> None:
    draft = f"Hi Anna,\n\n{NOW} {OLD}\n- {EU}\n- {NEXT}\n\n{OFF_TOPIC}\n{SHIPPING}"
    answer = _audit(audited, draft)
    assert answer["region_chain"] == ["global"]
    assert [_status(c) for c in answer["claims"]] == [
        ("current", "returns", "global", 2),
        ("outdated", "returns", "global", 1),
        ("other_region", "returns", "EU", 1),
        ("future", "returns", "global", 3),
        ("unsupported", None, None, None),
        ("current", "shipping", "global", 1),
    ]
    assert answer["verdict"] == "outdated"
    outdated = answer["claims"][1]
    assert outdated["in_force"]["text"].startswith(NOW)
    assert outdated["in_force"]["doc"]["version"] == 2
    assert outdated["changes"] == ['"30 days" -> "14 days"']
    assert answer["claims"][0]["in_force"] is None and answer["claims"][0]["changes"] == []


def test_what_changed_compares_amounts_exactly_also_on_the_history_page(audited: Service) -> None:
    fee = _audit(audited, "A restocking fee of $70 applies to opened furniture.")["claims"][0]
    assert fee["status"] == "outdated"
    assert fee["changes"] == ['"$70" -> "$50"']
    assert fee["in_force"]["text"] == "A restocking fee of $50 applies to opened furniture."
    eu = _audit(audited, f"{EU} {NOW}", region="EU")
    assert [c["status"] for c in eu["claims"]] == ["current", "other_region"]
    assert eu["claims"][1]["in_force"]["doc"]["region"] == "EU"
    past = _audit(audited, OLD, as_of="2025-06-01")
    assert past["verdict"] == "current"
    page = audited.http.get("/report/documents/returns").text
    assert "&#34;30 days&#34; -&gt; &#34;14 days&#34;; &#34;$70&#34; -&gt; &#34;$50&#34;" in page


def test_a_cited_chunk_no_longer_in_force_is_outdated_whatever_the_wording(audited: Service) -> None:
    old = audited.query("how long to return", as_of="2025-06-01", k=1)["results"][0]
    current = audited.query("how long to return", k=1)["results"][0]
    assert old["doc"]["version"] == 1
    cited = _audit(audited, f"{NOW} [chunk:{old['chunk_id'][:12]}] {NOW} [chunk:{current['chunk_id']}]")
    assert [c["status"] for c in cited["claims"]] == ["outdated", "current"]
    assert cited["claims"][0]["support"]["chunk_id"] == old["chunk_id"]
    assert "not in force" in cited["claims"][0]["reason"]
    versioned = _audit(audited, f"{NOW} (returns v1)\n{NOW} (returns v2)")
    assert [c["status"] for c in versioned["claims"]] == ["outdated", "current"]


def test_bad_drafts_are_client_errors(audited: Service) -> None:
    too_many = "Returns are fine. " * 101
    for body, status in (({"text": "   "}, 400), ({"text": "x" * 10_001}, 422), ({"text": too_many}, 400),
                         ({"text": NOW, "region": "no such"}, 400), ({"text": NOW, "as_of": "soon"}, 422)):  # fmt: skip
        response = audited.http.post("/v1/audit", json=body)
        assert response.status_code == status, (body, response.text)
        assert set(response.json()["error"]) == {"code", "message"}


def test_claims_keep_numbers_with_units_and_list_items_apart() -> None:
    drafted = split_claims(
        "Refunds take 1.5 business days. Fees are $7.50 per item!\n- First item here\n* Second one too"
    )
    assert [c.plain for c in drafted] == [
        "Refunds take 1.5 business days.", "Fees are $7.50 per item!", "First item here", "Second one too"
    ]  # fmt: skip
    assert [c.plain for c in split_claims("Thanks!")] == ["Thanks!"]
    assert changes("Pay 30 days after delivery.", "Pay 14 days after delivery.") == ['"30 days" -> "14 days"']


def test_cli_audits_text_and_files_and_exits_1_when_a_claim_is_not_current(
    docs: Path, tmp_path: Path, embedder: Embedder
) -> None:
    _corpus(docs)
    folders = ["--docs", str(docs), "--data", str(tmp_path / "data")]
    KnowledgeBase.open(Settings(docs=docs, data=tmp_path / "data"), embedder=embedder).close()
    result = CliRunner().invoke(cli, ["audit", OLD, *folders])
    assert result.exit_code == 1, result.output
    assert f"[outdated] {OLD}" in result.stdout
    assert 'changed: "30 days" -> "14 days"' in result.stdout
    draft = tmp_path / "draft.txt"
    draft.write_text(f"{NOW}\n{SHIPPING}\n", encoding="utf-8")
    ok = CliRunner().invoke(cli, ["audit", "--file", str(draft), *folders, "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["verdict"] == "current"


def test_mcp_tool_audit_answer_gives_the_route_s_answer(audited: Service) -> None:
    async def call() -> Any:
        async with Client(build_mcp(lambda: audited.kb)) as client:
            return (await client.call_tool("audit_answer", {"text": OLD})).structured_content

    answer = asyncio.run(call())
    assert answer == _audit(audited, OLD)
    assert answer["claims"][0]["status"] == "outdated"
