"""Files other than Markdown (the README, "Files other than Markdown"): real DOCX, PDF, HTML and text files made
in each test, their metadata from sidecars and folder defaults, and every way such a file can fail."""

from __future__ import annotations

import io
import logging
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import Clock, Service, write_doc
from fastapi.testclient import TestClient
from test_watcher import Live, eventually

from kb.embedder import Embedder
from kb.ingest.convert import Format, _markitdown, _slim_docx, to_markdown
from kb.ingest.markdown import parse_sections
from kb.pii import PiiPolicy
from kb.server.app import create_app
from kb.server.cli import cli
from kb.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.office import (  # noqa: E402
    Outline,
    Section,
    long_outline,
    write_blank_pdf,
    write_docx,
    write_html,
    write_pdf,
)

RECALLS = Outline(
    "Product Recalls",
    (
        Section(
            "When a recall applies",
            "A recall applies when a kettle batch is found unsafe by the safety regulator.",
            bullets=("Stop selling the batch", "Tell buyers within 2 working days"),
        ),
        Section(
            "Remedies",
            "Owners of a recalled product get a free repair, a replacement or a refund.",
            table=(("Remedy", "Deadline"), ("Repair", "30 days"), ("Refund", "14 days")),
        ),
        Section(
            "Collection",
            "Collection of a recalled appliance by courier is always free of charge.",
            steps=("Ask for the batch number", "Book the courier"),
        ),
    ),
)


def outline(title: str, heading: str, text: str) -> Outline:
    return Outline(title, (Section(heading, text),))


def rows(service: Service, reason: str) -> list[dict[str, Any]]:
    return [r for r in service.http.get("/v1/staleness").json()["rows"] if r["reason"] == reason]


def top(service: Service, query: str, **body: Any) -> dict[str, Any]:
    results = service.query(query, **body)["results"]
    assert results, f"nothing served for {query!r}"
    first: dict[str, Any] = results[0]
    return first


# -- conversion ------------------------------------------------------------------------------------------


def test_a_docx_is_read_with_only_the_styles_its_text_uses_and_reads_the_same(tmp_path: Path) -> None:
    """Word's hundreds of unused styles cost mammoth ten times the rest of the conversion."""
    data = write_docx(tmp_path / "r.docx", RECALLS).read_bytes()
    slim = _slim_docx(data)

    def style_ids(package: bytes) -> set[str]:
        styles = zipfile.ZipFile(io.BytesIO(package)).read("word/styles.xml").decode("utf-8")
        return set(re.findall(r'w:styleId="([^"]+)"', styles))

    kept, every = style_ids(slim), style_ids(data)
    assert {"Heading1", "Heading2", "ListBullet", "ListNumber", "Normal"} <= kept and len(kept) < len(every) / 4
    assert _markitdown("r.docx", slim, Format.docx, ".docx") == _markitdown("r.docx", data, Format.docx, ".docx")


def test_each_format_keeps_headings_lists_and_tables(tmp_path: Path) -> None:
    files = {
        Format.docx: write_docx(tmp_path / "r.docx", RECALLS),
        Format.pdf: write_pdf(tmp_path / "r.pdf", RECALLS),
        Format.html: write_html(tmp_path / "r.html", RECALLS),
    }
    for fmt, path in files.items():
        markdown = to_markdown(path.name, path.read_bytes(), fmt, 1 << 30)
        title, sections = parse_sections(markdown)
        assert title == "Product Recalls", fmt
        assert [s.path for s in sections] == [("When a recall applies",), ("Remedies",), ("Collection",)], fmt
        kinds = {b.kind for s in sections for b in s.blocks}
        assert {"bullet_list", "ordered_list", "table"} <= kinds, fmt
        table = next(b for s in sections for b in s.blocks if b.kind == "table")
        assert table.parts[0].startswith("| Remedy | Deadline |") and "| Refund | 14 days |" in table.parts, fmt
        pages = [b.page for s in sections for b in s.blocks]
        assert pages == ([1, 1, 2, 2, 3, 3] if fmt is Format.pdf else [None] * 6), fmt


def test_docx_pdf_html_and_text_are_served_with_their_citations(service: Service, docs: Path) -> None:
    write_pdf(docs / "recalls.pdf", RECALLS)
    write_docx(docs / "b2b.docx", outline("Business Accounts", "Payment terms", "Business accounts pay by invoice "
                                          "within 30 days of delivery."))  # fmt: skip
    write_html(docs / "gift.html", outline("Gift Cards", "Validity", "Gift cards are valid for three years."))
    (docs / "pickup.txt").write_text("Store pickup orders are held for seven days at the service desk.\n")
    report = service.sync()
    assert report.failed == {} and len(report.changes) == 4

    pdf = top(service, "is collection of a recalled appliance free")
    assert (pdf["doc"]["source"], pdf["page"], pdf["section"]) == ("recalls.pdf", 3, ["Collection"])
    docx = top(service, "how do business accounts pay invoices")
    assert (docx["doc"]["doc_id"], docx["doc"]["title"], docx["section"], docx["page"]) == (
        "b2b", "Business Accounts", ["Payment terms"], None,
    )  # fmt: skip
    html = top(service, "how long are gift cards valid")
    assert (html["doc"]["source"], html["section"]) == ("gift.html", ["Validity"])
    text = top(service, "how long is a store pickup order held")
    assert (text["doc"]["doc_id"], text["doc"]["title"]) == ("pickup", "Pickup")

    version = service.http.get("/v1/documents/recalls/versions/1").json()
    assert [c["page"] for c in version["chunks"]] == [1, 2, 3]
    assert service.sync().changes == [], "running ingest twice changes nothing the second time"


def test_a_pdf_whose_text_moves_to_another_page_cites_the_new_page(service: Service, docs: Path) -> None:
    write_pdf(docs / "recalls.pdf", RECALLS)
    service.sync()
    assert top(service, "is collection of a recalled appliance free")["page"] == 3
    write_pdf(docs / "recalls.pdf", RECALLS, page_per_section=False)  # the same text, now on one page
    service.sync()
    assert top(service, "is collection of a recalled appliance free")["page"] == 1


# -- metadata: own front matter, then sidecar, then the nearest defaults ----------------------------------


def test_own_front_matter_then_sidecar_then_nearest_defaults(service: Service, docs: Path) -> None:
    (docs / "_defaults.yaml").write_text("owner: Customer Care\ndoc_type: faq\nrisk_tier: medium\n")
    (docs / "eu").mkdir()
    (docs / "eu/_defaults.yaml").write_text("region: EU\nowner: Legal EU\n")
    write_pdf(docs / "eu/recalls.pdf", RECALLS)
    write_docx(docs / "eu/b2b.docx", outline("Business Accounts", "Terms", "Business invoices are due in 30 days."))
    (docs / "eu/b2b.docx.meta.yaml").write_text("doc_id: business-accounts\nowner: B2B Sales\nrisk_tier: low\n")
    write_doc(docs, "eu/gift.md", "# Gift cards\n\nGift cards are valid for three years.\n", owner="Gift Team")
    (docs / "eu/gift.md.meta.yaml").write_text("owner: Sidecar Team\ndoc_type: policy\n")
    assert service.sync().failed == {}

    def doc(doc_id: str) -> dict[str, Any]:
        versions: list[dict[str, Any]] = service.http.get(f"/v1/documents/{doc_id}").json()["versions"]
        return versions[0]

    recalls = doc("eu/recalls")  # defaults only: the nearer folder's keys win over the top folder's
    assert (recalls["region"], recalls["owner"], recalls["doc_type"], recalls["risk_tier"]) == (
        "EU", "Legal EU", "faq", "medium",
    )  # fmt: skip
    b2b = doc("business-accounts")  # the sidecar beats the defaults
    assert (b2b["region"], b2b["owner"], b2b["doc_type"], b2b["risk_tier"]) == ("EU", "B2B Sales", "faq", "low")
    gift = doc("eu/gift")  # the file's own front matter beats the sidecar
    assert (gift["region"], gift["owner"], gift["doc_type"]) == ("EU", "Gift Team", "policy")


def test_bad_metadata_is_a_parse_error_naming_the_metadata_file(service: Service, docs: Path) -> None:
    write_html(docs / "gift.html", outline("Gift Cards", "Validity", "Gift cards are valid for three years."))
    (docs / "gift.html.meta.yaml").write_text("risk_tier: extreme\n")
    (docs / "eu").mkdir()
    (docs / "eu/_defaults.yaml").write_text("region: EU\nversion: 2\n")
    write_html(docs / "eu/terms.html", outline("Terms", "Scope", "These terms apply to every order."))
    failed = service.sync().failed
    assert failed["gift.html"].startswith("its metadata file gift.html.meta.yaml: front matter key 'risk_tier'")
    assert failed["eu/terms.html"].startswith("eu/_defaults.yaml sets version, which name one document")
    assert {r["source"] for r in rows(service, "parse_error")} == {"gift.html", "eu/terms.html"}


# -- failures: the version in force stays ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "breaks", "reason"),
    [
        ("r.docx", lambda p: p.write_bytes(b"PK\x03\x04 not really a zip"), "cannot convert this DOCX file"),
        ("r.pdf", lambda p: p.write_bytes(b"%PDF-1.4\nbroken"), "cannot read this PDF"),
        ("r.pdf", lambda p: write_pdf(p, RECALLS, password="secret"), "the PDF is encrypted with a password"),
        ("r.pdf", lambda p: write_blank_pdf(p, pages=2), "the PDF has 2 page(s) but no text layer (a scan?)"),
        ("r.pdf", lambda p: write_pdf(p, long_outline("Big", 80)), "over the limit of 50,000 for PDF files"),
    ],
    ids=["corrupt-docx", "corrupt-pdf", "encrypted-pdf", "scanned-pdf", "too-large"],
)
def test_a_file_that_cannot_be_converted_keeps_the_version_in_force(
    settings: Settings, embedder: Embedder, clock: Clock, docs: Path, name: str, breaks: Any, reason: str
) -> None:
    small = settings.model_copy(update={"max_converted_bytes": 50_000})
    with TestClient(create_app(small, embedder=embedder, clock=clock)) as client:
        service = Service(client)
        path = docs / name
        (write_docx if name.endswith(".docx") else write_pdf)(path, RECALLS)
        assert service.sync().failed == {}
        assert path.stat().st_size < 50_000
        breaks(path)
        failed = service.sync().failed
        assert reason in failed[name]
        [row] = rows(service, "parse_error")
        assert row["source"] == name and row["version"] == 1 and "version 1 stays in force" in row["detail"]
        assert top(service, "is collection of a recalled appliance free")["doc"]["version"] == 1


def test_an_unsupported_file_is_one_report_row_and_one_log_line(
    service: Service, docs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (docs / "prices.xlsx").write_bytes(b"PK\x03\x04 a spreadsheet")
    (docs / "~$draft.docx").write_bytes(b"Word's lock file")
    (docs / "notes.md.swp").write_bytes(b"vim's swap file")
    with caplog.at_level(logging.WARNING, logger="kb.ingest"):
        assert service.sync().unsupported == ["prices.xlsx"]
        assert service.sync().unsupported == []
    assert [r.getMessage() for r in caplog.records] == [
        "prices.xlsx ignored: kb cannot read .xlsx files, so nothing from it is served; use one of .md, .markdown, "
        ".txt, .docx, .pdf, .html, .htm"
    ]
    [row] = rows(service, "unsupported_file")
    assert (row["source"], row["severity"]) == ("prices.xlsx", "medium")
    (docs / "prices.xlsx").unlink()
    service.sync()
    assert rows(service, "unsupported_file") == []


# -- live: a save, and an edited sidecar or defaults file --------------------------------------------------


@pytest.fixture
def live(settings: Settings, embedder: Embedder, clock: Clock) -> Iterator[Live]:
    live_settings = settings.model_copy(update={"watch": True, "debounce_ms": 50})
    with TestClient(create_app(live_settings, embedder=embedder, clock=clock)) as client:
        yield Live(client)


def owners(live: Live) -> dict[str, str | None]:
    return {d["doc_id"]: d["owner"] for d in live.http.get("/v1/documents").json()}


def test_editing_a_sidecar_or_defaults_file_reingests_exactly_the_files_it_governs(live: Live, docs: Path) -> None:
    (docs / "eu").mkdir()
    (docs / "eu/_defaults.yaml").write_text("owner: Legal EU\n")
    write_docx(docs / "eu/b2b.docx", outline("Business Accounts", "Terms", "Business invoices are due in 30 days."))
    write_pdf(docs / "eu/recalls.pdf", RECALLS)
    write_html(docs / "gift.html", outline("Gift Cards", "Validity", "Gift cards are valid for three years."))
    expected = {"eu/b2b": "Legal EU", "eu/recalls": "Legal EU", "gift": None}
    eventually(lambda: owners(live) == expected, what="first ingest")
    live.settle()
    versions = {doc_id: live.versions(doc_id) for doc_id in expected}

    (docs / "eu/b2b.docx.meta.yaml").write_text("owner: B2B Sales\n")
    eventually(lambda: owners(live)["eu/b2b"] == "B2B Sales", what="sidecar served")
    live.settle()
    assert live.versions("eu/b2b") == [(1, "corrected"), (1, "in_force")], "new keys, same text: a correction"
    assert {d: live.versions(d) for d in ("eu/recalls", "gift")} == {d: versions[d] for d in ("eu/recalls", "gift")}

    (docs / "eu/_defaults.yaml").write_text("owner: Legal Europe\n")
    eventually(lambda: owners(live)["eu/recalls"] == "Legal Europe", what="defaults served")
    live.settle()
    assert owners(live) == {"eu/b2b": "B2B Sales", "eu/recalls": "Legal Europe", "gift": None}
    assert live.versions("gift") == versions["gift"], "a file outside the folder is not touched"

    (docs / "eu/b2b.docx.meta.yaml").unlink()
    eventually(lambda: owners(live)["eu/b2b"] == "Legal Europe", what="sidecar removed")


def test_personal_data_in_a_pdf_is_cited_by_page(
    settings: Settings, embedder: Embedder, clock: Clock, docs: Path
) -> None:
    rejecting = settings.model_copy(update={"pii": PiiPolicy.reject})
    leaky = Outline("Recalls", (*RECALLS.sections[:1], Section("Contact", "Write to jane.doe@example.com for help.")))
    with TestClient(create_app(rejecting, embedder=embedder, clock=clock)) as client:
        write_pdf(docs / "recalls.pdf", leaky)
        failed = Service(client).sync().failed
    assert failed["recalls.pdf"].startswith("holds 1 e-mail address (the first on page 2)")


def test_kb_ingest_names_files_it_does_not_read(docs: Path, tmp_path: Path, embedder: Embedder) -> None:
    write_html(docs / "gift.html", outline("Gift Cards", "Validity", "Gift cards are valid for three years."))
    (docs / "prices.xlsx").write_bytes(b"PK\x03\x04 a spreadsheet")
    result = CliRunner().invoke(cli, ["ingest", "--docs", str(docs), "--data", str(tmp_path / "data")])
    assert result.exit_code == 0, "a file kb does not read is listed, not a failure"
    assert result.stdout == (
        "gift v1 ingested: 1 chunks, 1 embedded, effective 2026-12-01\n1 changes, 0 unchanged, 1 chunks embedded\n"
    )
    assert result.stderr == "NOT READ prices.xlsx: kb does not read this file type (listed as unsupported_file)\n"
