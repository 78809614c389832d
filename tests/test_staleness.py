"""Every staleness reason, provoked from real files and seen in the JSON, the CSV, the page and the CLI.

One folder provokes all reasons at once (one file per reason, plus a clean one that must stay out of the
report). It is ingested once per module at a fixed moment; the CLI reads the same data folder before the
HTTP server takes it over.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from conftest import CHROMIUM_FLAGS, Clock, live_server, write_doc
from playwright.sync_api import sync_playwright

from kb.embedder import Embedder
from kb.ingest.pipeline import sync
from kb.knowledge import KnowledgeBase
from kb.server.app import create_app
from kb.server.cli import cli
from kb.settings import Settings

D = dt.date


def _scenario(docs: Path) -> None:
    """The files as they are after the orphan's file was deleted (see ``scenario``)."""
    write_doc(
        docs,
        "clean.md",
        "# Clean\n\n## Scope\n\nKettles are covered for two years.\n",
        doc_id="clean",
        effective_from=D(2026, 6, 1),
        owner="Care Team",
        review_by=D(2027, 6, 1),
    )
    write_doc(
        docs,
        "overdue.md",
        "# Gift cards\n\n## Expiry\n\nGift cards never expire.\n",
        doc_id="gift-cards",
        effective_from=D(2026, 1, 1),
        owner="Finance Team",
        review_by=D(2026, 10, 1),
    )
    write_doc(
        docs,
        "due-soon.md",
        "# Loyalty\n\n## Points\n\nOne point per euro spent.\n",
        doc_id="loyalty",
        effective_from=D(2026, 1, 1),
        owner="Marketing",
        review_by=D(2026, 12, 1),
    )
    write_doc(
        docs,
        "ended.md",
        "# Summer sale\n\n## Terms\n\nTwenty percent off fans.\n",
        doc_id="summer-sale",
        effective_from=D(2026, 6, 1),
        effective_to=D(2026, 8, 31),
        owner="Marketing",
        review_by=D(2027, 1, 1),
    )
    write_doc(
        docs,
        "ending.md",
        "# Winter sale\n\n## Terms\n\nTen percent off heaters.\n",
        doc_id="winter-sale",
        effective_from=D(2026, 11, 1),
        effective_to=D(2026, 11, 30),
        owner="Marketing",
        review_by=D(2027, 1, 1),
    )
    (docs / "broken.md").write_text("---\nversion: two\n---\n# Broken\n\nText.\n")
    write_doc(
        docs,
        "dup-a.md",
        "# Repairs\n\n## Booking\n\nBook a repair online.\n",
        doc_id="repairs",
        version=1,
        effective_from=D(2026, 1, 1),
        owner="Care Team",
        review_by=D(2027, 6, 1),
    )
    write_doc(
        docs,
        "dup-b.md",
        "# Repairs\n\n## Booking\n\nBook a repair by phone.\n",
        doc_id="repairs",
        version=1,
        effective_from=D(2026, 1, 1),
        owner="Care Team",
        review_by=D(2027, 6, 1),
    )
    write_doc(
        docs,
        "overlap-1.md",
        "# Delivery fees\n\n## Standard\n\nStandard delivery costs 4 EUR.\n",
        doc_id="delivery-fees",
        version=1,
        effective_from=D(2026, 1, 1),
        effective_to=D(2027, 3, 31),
        owner="Logistics",
        review_by=D(2027, 6, 1),
    )
    write_doc(
        docs,
        "overlap-2.md",
        "# Delivery fees\n\n## Standard\n\nStandard delivery costs 5 EUR.\n",
        doc_id="delivery-fees",
        version=2,
        effective_from=D(2026, 12, 1),
        owner="Logistics",
        review_by=D(2027, 6, 1),
    )
    write_doc(
        docs,
        "shipping.md",
        "# Shipping\n\n## Times\n\nOrders ship within two days.\n",
        doc_id="shipping",
        effective_from=D(2026, 6, 1),
        owner="Logistics",
        review_by=D(2027, 6, 1),
    )
    write_doc(
        docs,
        "shipping-eu.md",
        "# Shipping (EU)\n\n## Times\n\nOrders ship within three days.\n",
        doc_id="shipping",
        region="EU",
        effective_from=D(2026, 2, 1),
        owner="Logistics EU",
        review_by=D(2027, 6, 1),
    )
    write_doc(
        docs,
        "faq.md",
        "# FAQ\n\n## Returns\n\nSee the [returns terms](old-terms.md) and the [shipping times](shipping.md).\n",
        doc_id="faq",
        see=["warranty-2019"],
        effective_from=D(2026, 6, 1),
        owner="Care Team",
        review_by=D(2027, 6, 1),
    )
    write_doc(
        docs,
        "contact.md",
        "# Contact\n\n## Escalation\n\nWrite to support@shop.example. Customer "
        "jane.doe@example.com complained twice.\n",
        doc_id="contact",
        effective_from=D(2026, 6, 1),
        owner="Care Team",
        review_by=D(2027, 6, 1),
    )
    write_doc(docs, "ancient.md", "# Store hours\n\n## Weekdays\n\nStores open at nine.\n", doc_id="store-hours",
              effective_from=D(2025, 3, 1), owner="Retail", review_by=D(2027, 6, 1))  # fmt: skip


@dataclass(frozen=True)
class Expected:
    reason: str
    doc_id: str | None
    source: str
    severity: str
    detail: str
    region: str = "global"


EXPECTED = [
    Expected("review_overdue", "gift-cards", "overdue.md", "medium",
             "Review was due on 2026-10-01; confirm or update the text and set a new review_by."),
    Expected("review_due_soon", "loyalty", "due-soon.md", "low",
             "Review is due on 2026-12-01; confirm or update the text before then and set a new review_by."),
    Expected("expired", "summer-sale", "ended.md", "medium",
             "Expired after 2026-08-31 with no successor; agents get nothing for this document now. "
             "Publish a new version or confirm the retirement."),
    Expected("expiring_soon", "winter-sale", "ending.md", "low",
             "Ends after 2026-11-30 with no successor; publish a new version or extend effective_to."),
    Expected("orphaned", "returns", "returns.md", "high",
             "The file returns.md was deleted on 2026-11-24; agents get nothing for this document now. "
             "Restore the file or publish a successor."),
    Expected("parse_error", None, "broken.md", "high",
             "front matter key 'version': expected a whole number from 1 up (got 'two'). Fix the file; until "
             "then nothing from this file is served.", region=""),
    Expected("conflict", "repairs", "dup-b.md", "high",
             "version 1 of repairs (global) is already defined by dup-a.md; give one of the files another version "
             "or doc_id. Fix the file; until then nothing from this file is served.", region=""),
    Expected("conflict", "delivery-fees", "overlap-2.md", "high",
             "Version 1 declares effective_to 2027-03-31 but version 2 starts 2026-12-01; agents get version 2 "
             "from then. Shorten version 1's effective_to or move version 2's date."),
    Expected("variant_out_of_sync", "shipping", "shipping-eu.md", "medium",
             "The global version 1 (effective 2026-06-01) is newer than this EU variant (effective 2026-02-01); "
             "check whether the EU text needs the same change and publish a new version of it.", region="EU"),
    Expected("broken_reference", "faq", "faq.md", "low",
             "Refers to warranty-2019, which is not in force for global; point the reference at a current "
             "document or publish one."),
    Expected("broken_reference", "faq", "faq.md", "low",
             "Links to old-terms.md, which is not a policy file in the folder; fix the link or restore the file."),
    Expected("pii_detected", "contact", "contact.md", "high",
             "The text served to agents holds 1 e-mail address; remove it from contact.md, or list a team's own "
             "address in KB_PII_ALLOW."),
    Expected("stale_age", "store-hours", "ancient.md", "low",
             "Unchanged since 2025-03-01; check it still holds and publish a new version or retire it."),
]  # fmt: skip


@dataclass
class Scenario:
    settings: Settings
    clock: Clock
    cli_json: list[dict[str, Any]]
    cli_csv: str
    cli_table: str
    cli_exit: int


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Scenario:
    root = tmp_path_factory.mktemp("staleness")
    docs = root / "policies"
    docs.mkdir()
    settings = Settings(docs=docs, data=root / "data", watch=False, pii_allow=["support@shop.example"])
    clock = Clock(dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC))
    kb = KnowledgeBase.open(settings, embedder, clock)
    try:
        write_doc(docs, "returns.md", "# Returns\n\n## Window\n\nThirty days to return.\n", doc_id="returns",
                  effective_from=D(2026, 1, 1), owner="Care Team", review_by=D(2027, 6, 1))  # fmt: skip
        sync(kb)
        clock.set("2026-11-24T12:00:00")
        (docs / "returns.md").unlink()
        _scenario(docs)
        sync(kb)
    finally:
        kb.close()
    folders = ["--docs", str(docs), "--data", str(settings.data)]
    with pytest.MonkeyPatch.context() as patch:
        # The CLI's only difference from production: the test's clock and the model already in memory.
        opened = KnowledgeBase.open
        patch.setattr(KnowledgeBase, "open", lambda s, e=None, c=None: opened(s, embedder, clock))
        patch.setenv("KB_PII_ALLOW", "support@shop.example")
        runner = CliRunner()
        as_json = runner.invoke(cli, ["report", *folders, "--format", "json"])
        as_csv = runner.invoke(cli, ["report", *folders, "--format", "csv"])
        patch.setenv("COLUMNS", "250")
        as_table = runner.invoke(cli, ["report", *folders])
    assert as_json.exit_code == as_csv.exit_code == as_table.exit_code
    return Scenario(settings, clock, json.loads(as_json.stdout), as_csv.stdout, as_table.stdout, as_json.exit_code)


@pytest.fixture(scope="module")
def server(scenario: Scenario, embedder: Embedder) -> Iterator[str]:
    with live_server(create_app(scenario.settings, embedder=embedder, clock=scenario.clock)) as url:
        yield url


def _fields(expected: Expected) -> dict[str, Any]:
    return {"reason": expected.reason, "doc_id": expected.doc_id, "source": expected.source,
            "severity": expected.severity, "detail": expected.detail}  # fmt: skip


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda e: f"{e.reason}-{e.source}")
def test_each_reason_is_reported_in_json_csv_page_and_cli(scenario: Scenario, server: str, expected: Expected) -> None:
    wanted = _fields(expected)

    api = httpx.get(f"{server}/v1/staleness", params={"reason": expected.reason}).json()
    assert wanted in [{key: row[key] for key in wanted} for row in api["rows"]]
    assert all(row["reason"] == expected.reason for row in api["rows"])

    table = csv.DictReader(
        io.StringIO(httpx.get(f"{server}/v1/staleness.csv", params={"reason": expected.reason}).text)
    )
    assert wanted in [{key: row[key] or None for key in wanted} for row in table]

    page = httpx.get(f"{server}/report", params={"reason": expected.reason}).text
    assert expected.detail.replace("'", "&#39;") in page and expected.source in page
    if expected.doc_id:
        assert f'href="/report/documents/{expected.doc_id}"' in page

    assert wanted in [{key: row[key] for key in wanted} for row in scenario.cli_json]
    assert any(expected.source in line and expected.reason in line for line in scenario.cli_csv.splitlines())
    named = expected.doc_id or expected.source
    assert any(f"│ {expected.reason} " in line and f"│ {named} " in line for line in scenario.cli_table.splitlines())


def test_nothing_else_is_reported_and_a_high_row_makes_the_cli_exit_1(scenario: Scenario, server: str) -> None:
    rows = httpx.get(f"{server}/v1/staleness").json()["rows"]
    assert sorted((r["reason"], r["source"]) for r in rows) == sorted((e.reason, e.source) for e in EXPECTED)
    assert [r["severity"] for r in rows] == sorted((r["severity"] for r in rows), key=["high", "medium", "low"].index)
    assert scenario.cli_exit == 1
    assert len(scenario.cli_json) == len(EXPECTED)


def test_filters_by_reason_owner_region_and_severity(server: str) -> None:
    def picked(**params: Any) -> list[tuple[str, str]]:
        rows = httpx.get(f"{server}/v1/staleness", params=params).json()["rows"]
        return sorted((r["reason"], r["source"]) for r in rows)

    assert picked(owner="marketing") == [("expired", "ended.md"), ("expiring_soon", "ending.md"),
                                         ("review_due_soon", "due-soon.md")]  # fmt: skip
    assert picked(region="eu") == [("variant_out_of_sync", "shipping-eu.md")]
    assert picked(severity="high", reason="conflict,orphaned") == [
        ("conflict", "dup-b.md"), ("conflict", "overlap-2.md"), ("orphaned", "returns.md")]  # fmt: skip
    assert picked(reason=["stale_age", "pii_detected"]) == [("pii_detected", "contact.md"), ("stale_age", "ancient.md")]
    assert httpx.get(f"{server}/v1/staleness", params={"owner": "Logistics"}).json()["counts"] == {"conflict": 1}
    csv_rows = httpx.get(f"{server}/v1/staleness.csv", params={"severity": "low"}).text.splitlines()[1:]
    assert csv_rows and all(",low," in line for line in csv_rows)
    bad = httpx.get(f"{server}/v1/staleness", params={"reason": "mouldy"})
    assert bad.status_code == 400
    assert bad.json()["error"]["message"].startswith("reason must be one of review_overdue, review_due_soon,")
    assert httpx.get(f"{server}/v1/staleness", params={"region": "not a region"}).status_code == 400


def test_metrics_gauge_every_reason(server: str) -> None:
    metrics = httpx.get(f"{server}/metrics").text
    assert 'kb_staleness_rows{reason="conflict"} 2' in metrics
    assert 'kb_staleness_rows{reason="broken_reference"} 2' in metrics
    assert 'kb_staleness_rows{reason="orphaned"} 1' in metrics


def test_document_page_shows_versions_validity_regions_and_what_changed(server: str, scenario: Scenario) -> None:
    page = httpx.get(f"{server}/report/documents/delivery-fees")
    assert page.status_code == 200
    text = page.text
    assert "Version 1 declares effective_to 2027-03-31" in text  # its own rows first
    assert "2026-01-01 &ndash; 2026-12-01" in text and "(then superseded)" in text  # v1 ends when v2 starts
    assert "future" in text and "changed: Standard" in text
    assert "-Standard delivery costs 4 EUR." in text and "+Standard delivery costs 5 EUR." in text
    shipping = httpx.get(f"{server}/report/documents/shipping").text
    assert 'id="history-global"' in shipping and 'id="history-EU"' in shipping
    assert httpx.get(f"{server}/report/documents/nope").status_code == 404


def test_report_page_in_a_real_browser(server: str, tmp_path: Path) -> None:
    """Headless Debian chromium: the table, its filters and sorting work without JavaScript."""
    chromium = shutil.which("chromium")
    assert chromium, "the browser test needs Debian's chromium: apt-get install chromium (.ci/run installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, java_script_enabled=False)
        page.goto(f"{server}/report")
        rows = page.locator("#staleness tbody tr")
        assert rows.count() == len(EXPECTED)
        assert "conflict 2" in page.locator("#by-reason").inner_text()
        assert "Marketing 3" in page.locator("#by-owner").inner_text()
        screenshot = tmp_path / "report.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"screenshot of /report: {screenshot}")

        page.select_option("select[name=reason]", "conflict")
        page.click("button[type=submit]")
        assert "reason=conflict" in page.url
        assert rows.count() == 2
        assert rows.locator("td:nth-child(2)").all_inner_texts() == ["conflict", "conflict"]
        assert page.locator("#shown").inner_text() == f"Showing 2 of {len(EXPECTED)} rows."

        page.goto(f"{server}/report")
        page.click("#staleness th >> text=Since")
        since = rows.locator("td:nth-child(7)").all_inner_texts()
        assert since == sorted(since) and len(since) == len(EXPECTED)
        page.click("#staleness th >> text=Since")  # again: newest first
        assert rows.locator("td:nth-child(7)").all_inner_texts() == sorted(since, reverse=True)

        page.select_option("select[name=owner]", "Logistics")
        page.click("button[type=submit]")
        assert rows.locator("td:nth-child(3) a").all_inner_texts() == ["Delivery fees"]
        page.click("text=Delivery fees")
        assert page.url.endswith("/report/documents/delivery-fees")
        assert page.locator("h1").inner_text() == "delivery-fees"
        assert "changed: Standard" in page.locator("#history-global").inner_text()
        browser.close()
