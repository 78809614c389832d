"""Content teams act: roles of keys, confirming a review, acknowledging a variant, the report's login.

Everything over HTTP against the real app; the files are read back byte by byte.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import CHROMIUM_FLAGS, Clock, Service, live_server, write_doc
from fastapi.testclient import TestClient
from playwright.sync_api import sync_playwright
from pydantic import ValidationError

from kb.embedder import Embedder
from kb.server.app import create_app
from kb.settings import Settings

D = dt.date
EDITOR = {"authorization": "Bearer ed1tor"}
AGENT = {"authorization": "Bearer ag3nt"}
BARE = {"x-api-key": "plain"}

GIFT_CARDS = """---
# Owned by finance; ask before changing the expiry.
doc_id: gift-cards
title: Gift cards
owner: Finance Team   # the team, not a person
effective_from: 2026-01-01
review_by: 2026-10-01
products:
  - gift-card
custom_note: keep me
---
# Gift cards

## Expiry

Gift cards never expire.
"""


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_keys": ["ed1tor:editor", "ag3nt:agent", "plain"]})


@pytest.fixture
def secured(keyed: Settings, docs: Path, embedder: Embedder, clock: Clock) -> Iterator[Service]:
    (docs / "gift-cards.md").write_text(GIFT_CARDS, encoding="utf-8")
    with TestClient(create_app(keyed, embedder=embedder, clock=clock)) as client:
        yield Service(client)


def _error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]


def test_roles_agents_read_editors_also_see_the_report_and_act(secured: Service) -> None:
    http = secured.http
    for headers in (AGENT, EDITOR, BARE):
        assert http.post("/v1/query", json={"query": "gift card expiry"}, headers=headers).status_code == 200
        assert http.get("/v1/documents", headers=headers).status_code == 200
        assert http.get("/v1/documents/gift-cards", headers=headers).status_code == 200
        assert http.get("/v1/changes", headers=headers).status_code == 200
        assert http.get("/openapi.json", headers=headers).status_code == 200
    for path in ("/v1/staleness", "/v1/staleness.csv", "/report", "/report/documents/gift-cards", "/metrics"):
        _error(http.get(path, headers=AGENT), 403, "forbidden")
        assert http.get(path, headers=EDITOR).status_code == 200
        assert http.get(path, headers=BARE).status_code == 200  # a bare key is an editor
    mcp = http.post("/mcp/", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=AGENT)
    assert mcp.status_code not in (401, 403)  # agents use the MCP tools
    review = {"region": "global", "reviewed_by": "Ann"}
    _error(http.post("/v1/documents/gift-cards/review", json=review, headers=AGENT), 403, "forbidden")
    _error(http.post("/v1/documents/gift-cards/acknowledge", json={"region": "EU"}, headers=AGENT), 403, "forbidden")
    assert "needs an editor key" in http.get("/v1/staleness", headers=AGENT).json()["error"]["message"]
    _error(http.get("/v1/staleness", headers={"x-api-key": "nope"}), 401, "unauthorized")
    assert http.get("/healthz").status_code == 200


def test_an_unknown_role_in_kb_api_keys_is_an_error() -> None:
    with pytest.raises(ValidationError, match="unknown role 'admin'"):
        Settings(api_keys="k1:admin")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="a role but no key"):
        Settings(api_keys=":agent")  # type: ignore[arg-type]
    assert Settings(api_keys="a:agent, b:editor, c").key_roles == {"a": "agent", "b": "editor", "c": "editor"}  # type: ignore[arg-type]


def _rows(http: TestClient, reason: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = http.get("/v1/staleness", params={"reason": reason}, headers=EDITOR).json()["rows"]
    return rows


def test_confirming_a_review_writes_three_keys_and_nothing_else(secured: Service, docs: Path) -> None:
    http = secured.http
    assert [r["doc_id"] for r in _rows(http, "review_overdue")] == ["gift-cards"]
    answer = http.post(
        "/v1/documents/gift-cards/review",
        json={"region": "global", "reviewed_by": "Ann Lee", "note": "Checked with legal."},
        headers=EDITOR,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["written"] == "gift-cards.md" and body["version"] == 1 and body["revision"] == 2
    assert body["last_reviewed"] == "2026-11-24" and body["reviewed_by"] == "Ann Lee"
    assert body["review_due"].startswith("2027-11-24")  # the default 365 days from the review
    # The edited lines in place, new keys at the end of the front matter; comments, order and body untouched.
    assert (docs / "gift-cards.md").read_text(encoding="utf-8") == GIFT_CARDS.replace(
        "review_by: 2026-10-01\n", "review_by: 2027-11-24\n"
    ).replace(
        "custom_note: keep me\n",
        "custom_note: keep me\nlast_reviewed: 2026-11-24\nreviewed_by: Ann Lee\nreview_note: Checked with legal.\n",
    )
    assert _rows(http, "review_overdue") == []
    # The correction is a front-matter edit: same text served, history keeps the revision before.
    assert http.get("/v1/documents/gift-cards", headers=EDITOR).json()["versions"][0]["status"] == "corrected"


def test_a_file_saved_since_the_page_was_made_is_not_overwritten(secured: Service, docs: Path) -> None:
    http = secured.http
    seen = secured.kb.in_force("gift-cards", "global").record.file_hash
    edited = GIFT_CARDS.replace("never expire", "expire after three years")
    (docs / "gift-cards.md").write_text(edited, encoding="utf-8")  # the owner saves; no watcher here yet
    review = {"region": "global", "reviewed_by": "Ann", "expected_hash": seen}
    _error(http.post("/v1/documents/gift-cards/review", json=review, headers=EDITOR), 409, "edit_conflict")
    _error(
        http.post("/v1/documents/gift-cards/review", json={"reviewed_by": "Ann"}, headers=EDITOR | {"if-match": seen}),
        409,
        "edit_conflict",
    )
    assert (docs / "gift-cards.md").read_text(encoding="utf-8") == edited
    _error(
        http.post("/v1/documents/nope/review", json={"reviewed_by": "Ann"}, headers=EDITOR), 404, "document_not_found"
    )
    _error(
        http.post("/v1/documents/gift-cards/review", json={"reviewed_by": " "}, headers=EDITOR), 400, "invalid_request"
    )


def test_a_review_cycle_counts_from_the_last_review(service: Service, docs: Path) -> None:
    write_doc(docs, "cycle.md", "# Cycle\n\n## Rule\n\nReviewed every quarter.\n", doc_id="cycle",
              effective_from=D(2026, 1, 1), review_every="90d")  # fmt: skip
    service.sync()
    assert [r["doc_id"] for r in service.http.get("/v1/staleness?reason=review_overdue").json()["rows"]] == ["cycle"]
    answer = service.http.post("/v1/documents/cycle/review", json={"reviewed_by": "Bo"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["review_due"].startswith("2027-02-22")  # 90 days from 2026-11-24, no review_by written
    text = (docs / "cycle.md").read_text(encoding="utf-8")
    assert "review_every: 90d" in text and "review_by" not in text and "last_reviewed: 2026-11-24" in text


def test_a_file_that_cannot_hold_front_matter_gets_a_sidecar(service: Service, docs: Path) -> None:
    html = b"<html><body><h1>Warranty</h1><h2>Term</h2><p>Two years on kettles.</p></body></html>"
    (docs / "warranty.html").write_bytes(html)
    (docs / "warranty.html.meta.yaml").write_text("doc_id: warranty\n# set by legal\nreview_by: 2026-11-01\n")
    service.sync()
    answer = service.http.post("/v1/documents/warranty/review", json={"reviewed_by": "Cy"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["written"] == "warranty.html.meta.yaml"
    assert (docs / "warranty.html").read_bytes() == html
    assert (docs / "warranty.html.meta.yaml").read_text() == (
        "doc_id: warranty\n# set by legal\nreview_by: 2027-11-24\nlast_reviewed: 2026-11-24\nreviewed_by: Cy\n"
    )
    assert service.http.get("/v1/staleness?reason=review_overdue").json()["rows"] == []


def _variants(docs: Path) -> None:
    write_doc(docs, "shipping.md", "# Shipping\n\n## Times\n\nOrders ship within two days.\n", doc_id="shipping",
              version=1, effective_from=D(2026, 6, 1), review_by=D(2027, 6, 1))  # fmt: skip
    write_doc(docs, "shipping-eu.md", "# Shipping (EU)\n\n## Times\n\nOrders ship within three days.\n",
              doc_id="shipping", region="EU", effective_from=D(2026, 2, 1), review_by=D(2027, 6, 1))  # fmt: skip


def test_acknowledging_a_variant_stops_the_flag_until_the_base_changes(service: Service, docs: Path) -> None:
    _variants(docs)
    service.sync()
    http = service.http
    assert [r["region"] for r in http.get("/v1/staleness?reason=variant_out_of_sync").json()["rows"]] == ["EU"]
    stale = http.post("/v1/documents/shipping/acknowledge", json={"region": "EU", "base_version": 2})
    _error(stale, 409, "edit_conflict")  # the person saw another base version
    answer = http.post("/v1/documents/shipping/acknowledge", json={"region": "EU", "base_version": 1})
    assert answer.status_code == 200, answer.text
    assert answer.json()["in_sync_with"] == 1
    assert "in_sync_with: 1\n---\n# Shipping (EU)" in (docs / "shipping-eu.md").read_text()
    assert http.get("/v1/staleness?reason=variant_out_of_sync").json()["rows"] == []
    flags = http.post("/v1/query", json={"query": "when do orders ship", "region": "EU"}).json()["results"][0]["flags"]
    assert "variant_out_of_sync" not in flags
    _error(http.post("/v1/documents/shipping/acknowledge", json={"region": "EU"}), 422, "cannot_edit")

    write_doc(docs, "shipping.md", "# Shipping\n\n## Times\n\nOrders ship the next day.\n", doc_id="shipping",
              version=2, effective_from=D(2026, 11, 20), review_by=D(2027, 6, 1))  # fmt: skip
    service.sync()
    rows = http.get("/v1/staleness?reason=variant_out_of_sync").json()["rows"]
    assert [(r["region"], r["detail"].split(" (")[0]) for r in rows] == [("EU", "The global version 2")]


def test_the_report_takes_the_key_once_through_a_login_form(secured: Service) -> None:
    http = secured.http
    to_login = http.get("/report?owner=Finance+Team", headers={"accept": "text/html"}, follow_redirects=False)
    assert to_login.status_code == 303
    assert to_login.headers["location"] == "/report/login?next=%2Freport%3Fowner%3DFinance%2BTeam"
    form = http.get("/report/login")
    assert form.status_code == 200 and 'name="key"' in form.text
    wrong = http.post("/report/login", data={"key": "ag3nt", "next": "/report"}, follow_redirects=False)
    assert wrong.status_code == 403 and "needs an editor key" in wrong.text and "set-cookie" not in wrong.headers
    assert http.post("/report/login", data={"key": "nope"}, follow_redirects=False).status_code == 401
    signed = http.post("/report/login", data={"key": "ed1tor", "next": "https://evil.example/"}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/report"  # never an open redirect
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith("kb_session=") and "ed1tor" not in cookie
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert attribute.lower() in cookie.lower()
    token = cookie.split(";")[0].split("=", 1)[1]
    page = http.get("/report", headers={"cookie": f"kb_session={token}"})
    assert page.status_code == 200 and "Confirm review" in page.text
    assert (
        http.get("/v1/staleness", headers={"cookie": f"kb_session={token}"}).status_code == 200
    )  # the page's JSON link
    assert http.get("/report", headers={"cookie": "kb_session=forged"}).status_code == 401


def _shots() -> Path | None:
    """``SCREENSHOT_DIR=docs`` saves the browser test's screenshots for the README (docs/report-*.png)."""
    folder = os.environ.get("SCREENSHOT_DIR")
    return Path(folder) if folder else None


def test_review_and_acknowledge_in_a_real_browser(docs: Path, tmp_path: Path, embedder: Embedder, clock: Clock) -> None:
    """Headless Debian chromium with JavaScript off: sign in once, confirm a review, acknowledge a variant, and
    meet a conflict; each time the file on disk is what changed and the row goes."""
    (docs / "gift-cards.md").write_text(GIFT_CARDS, encoding="utf-8")
    write_doc(docs, "loyalty.md", "# Loyalty\n\n## Points\n\nOne point per euro.\n", doc_id="loyalty",
              owner="Marketing", effective_from=D(2026, 1, 1), review_by=D(2026, 11, 1))  # fmt: skip
    _variants(docs)
    _outlook(docs)
    settings = Settings(docs=docs, data=tmp_path / "data", api_keys=["ed1tor:editor", "ag3nt:agent"])
    chromium = shutil.which("chromium")
    assert chromium, "the browser test needs Debian's chromium: apt-get install chromium (.ci/run installs it)"
    shots = _shots() or tmp_path
    with live_server(create_app(settings, embedder=embedder, clock=clock)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, java_script_enabled=False)
        page.goto(f"{url}/report?sort=document")
        assert "/report/login" in page.url
        page.fill("input[name=key]", "ag3nt")
        page.click("button[type=submit]")
        assert "needs an editor key" in page.locator("#problem").inner_text()
        page.fill("input[name=key]", "ed1tor")
        page.screenshot(path=str(shots / "report-login.png"))
        page.click("button[type=submit]")
        assert page.url == f"{url}/report?sort=document"

        def row(reason: str, doc: str) -> Any:
            return page.locator("#staleness tbody tr", has_text=reason).filter(has_text=doc)

        assert row("review_overdue", "Gift cards").count() == 1
        assert row("variant_out_of_sync", "Shipping (EU)").count() == 1
        page.screenshot(path=str(shots / "report-actions.png"), full_page=True)

        gift = row("review_overdue", "Gift cards")
        gift.locator("input[name=reviewed_by]").fill("Ann Lee")
        gift.locator("input[name=note]").fill("Checked with legal.")
        gift.locator("button", has_text="Confirm review").click()
        assert page.url == f"{url}/report?sort=document"  # back where the person was, filters kept
        assert row("review_overdue", "Gift cards").count() == 0
        text = (docs / "gift-cards.md").read_text(encoding="utf-8")
        assert "review_by: 2027-11-24\n" in text and "reviewed_by: Ann Lee\n" in text
        assert text.endswith("---\n# Gift cards\n\n## Expiry\n\nGift cards never expire.\n")

        row("variant_out_of_sync", "Shipping (EU)").locator("button", has_text="Deliberately different").click()
        assert row("variant_out_of_sync", "Shipping (EU)").count() == 0
        assert "in_sync_with: 1\n" in (docs / "shipping-eu.md").read_text(encoding="utf-8")

        # The owner saves the file while the page is open: the button must not overwrite that save.
        saved = (docs / "loyalty.md").read_text(encoding="utf-8").replace("One point", "Two points")
        (docs / "loyalty.md").write_text(saved, encoding="utf-8")
        row("review_overdue", "Loyalty").locator("button", has_text="Confirm review").click()
        assert "changed on disk since the page was made" in page.locator("#refused").inner_text()
        assert (docs / "loyalty.md").read_text(encoding="utf-8") == saved
        page.click("text=Back to the report")
        page.screenshot(path=str(shots / "report-after.png"), full_page=True)

        page.click("nav >> text=Upcoming")
        page.click("text=90 days")
        assert page.locator("#upcoming tbody tr td:nth-child(5)").all_inner_texts() == [
            "takes effect", "last day in force; nothing follows it"]  # fmt: skip
        page.screenshot(path=str(shots / "report-upcoming.png"), full_page=True)
        page.click("nav >> text=Coverage")
        shipping = page.locator("#coverage tbody tr", has_text="shipping").locator("td").all_inner_texts()
        assert shipping[1:] == ["global v1", "EU v1", "EU v1"]  # DE falls back to EU
        page.screenshot(path=str(shots / "report-coverage.png"), full_page=True)
        page.click("nav >> text=Needs attention")

        # The saved loyalty text became version 2: its page shows the change side by side, the changed word marked.
        # The watcher ingests the save on its own time: on a loaded machine, after the clicks above.
        changed = page.locator("table.diff tr.changed")
        deadline = time.monotonic() + 15
        page.goto(f"{url}/report/documents/loyalty")
        while changed.count() == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
            page.reload()
        assert changed.locator("del").all_inner_texts() == ["One point"]
        assert "Two points" in changed.locator("td").nth(1).inner_text()
        page.screenshot(path=str(shots / "report-diff.png"), full_page=True)
        page.goto(f"{url}/report")
        page.click("text=Sign out")
        assert "/report/login" in page.url
        page.goto(f"{url}/report")
        assert "/report/login" in page.url
        browser.close()


def _outlook(docs: Path) -> None:
    """A sale scheduled for December and a region tree DE -> EU -> global."""
    write_doc(docs, "winter-sale.md", "# Winter sale\n\n## Terms\n\nTen percent off heaters.\n", doc_id="winter-sale",
              owner="Marketing", effective_from=D(2026, 12, 1), effective_to=D(2026, 12, 31))  # fmt: skip
    (docs / "regions.yaml").write_text("DE: EU\nEU: global\n")


def test_upcoming_and_coverage_views(service: Service, docs: Path) -> None:
    _variants(docs)
    _outlook(docs)
    write_doc(docs, "shipping-v2.md", "# Shipping\n\n## Times\n\nOrders ship the next day.\n", doc_id="shipping",
              version=2, effective_from=D(2026, 12, 10), review_by=D(2027, 6, 1))  # fmt: skip
    service.sync()
    http = service.http

    def events(**params: Any) -> list[tuple[str, ...]]:
        page = http.get("/report/upcoming", params=params)
        assert page.status_code == 200, page.text
        return [(row[0], row[1], row[3], row[4]) for row in table_rows(page.text, "upcoming") if len(row) > 1]

    assert events(days=30) == [
        ("2026-12-01", "global", "1", "takes effect"),
        ("2026-12-10", "global", "2", "takes effect, replacing version 1"),
    ]
    assert events(days=45)[-1] == ("2026-12-31", "global", "1", "last day in force; nothing follows it")
    assert events(days=45, region="EU") == []
    assert http.get("/report/upcoming", params={"days": 0}).status_code == 422

    page = http.get("/report/coverage")
    assert page.status_code == 200
    rows = {row[0].split()[-1]: row[1:] for row in table_rows(page.text, "coverage")}
    assert 'id="coverage">\n<thead><tr><th>Document</th><th>global</th><th>DE</th><th>EU</th>' in page.text
    assert rows["shipping"] == ["global v1", "EU v1", "EU v1"]  # DE falls back to EU's own variant
    assert '<td class="fallback">EU v1</td>' in page.text
    assert "winter-sale" not in rows  # not in force anywhere today

    assert http.get("/report/coverage", params={"format": "csv"}).text.splitlines()[:2] == [
        "doc_id,title,global,DE,EU", "shipping,Shipping,global v1,EU v1,EU v1"]  # fmt: skip
    upcoming_csv = http.get("/report/upcoming", params={"days": 45, "format": "csv"})
    assert upcoming_csv.headers["content-type"].startswith("text/csv")
    assert (
        upcoming_csv.text.splitlines()[-1]
        == "2026-12-31,ends,global,winter-sale,Winter sale,1,,Marketing,winter-sale.md"
    )


class _Cells(HTMLParser):
    """The text of each cell of each body row of the table with ``id``."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.inside, self.body = table_id, False, False
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.inside = ("id", self.table_id) in attrs
        elif self.inside and tag == "tbody":
            self.body = True
        elif self.body and tag == "tr":
            self.rows.append([])
        elif self.body and tag == "td":
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = self.body = False

    def handle_data(self, data: str) -> None:
        if self.body and self.rows and self.rows[-1]:
            self.rows[-1][-1] = " ".join((self.rows[-1][-1] + " " + data).split())


def table_rows(html: str, table_id: str) -> list[list[str]]:
    parser = _Cells(table_id)
    parser.feed(html)
    return parser.rows


def test_the_history_page_compares_versions_side_by_side_with_changed_words_marked(
    service: Service, docs: Path
) -> None:
    long = "Refunds are paid to the original payment method within " + "fourteen days of the return, " * 8
    write_doc(docs, "refunds.md", f"# Refunds\n\n## Timing\n\n{long}4 EUR fee.\n\nKeep the receipt.\n",
              doc_id="refunds", version=1, effective_from=D(2026, 1, 1))  # fmt: skip
    service.sync()
    write_doc(docs, "refunds.md", f"# Refunds\n\n## Timing\n\n{long}5 EUR fee.\n\nKeep the receipt.\n",
              doc_id="refunds", version=2, effective_from=D(2026, 6, 1))  # fmt: skip
    service.sync()
    page = service.http.get("/report/documents/refunds").text
    row = page.split('<tr class="changed">')[1].split("</tr>")[0]
    assert "<del>4</del>" in row and "<ins>5</ins>" in row  # only the figure is marked, not the long line
    assert row.count("<del>") == row.count("<ins>") == 1 and "fourteen days of the return" in row
    assert '<tr class="same"><td>## Timing</td><td>## Timing</td></tr>' in page  # context around the change
