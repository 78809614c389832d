"""What an agent is told beside what it is served: flags per chunk, warnings per answer, and KB_PII."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Clock, Service, write_doc
from fastapi.testclient import TestClient

from kb.embedder import Embedder
from kb.pii import PiiPolicy
from kb.server.app import create_app
from kb.settings import Settings

D = dt.date
CONTACT = (
    "# Contact\n\n## Escalation\n\nCustomer jane.doe@example.com asked for a refund to DE89 3704 0044 0532 0130 00.\n"
)
CONTACT += "\n## Opening hours\n\nThe care team answers from nine to five on weekdays.\n"


def _flags(service: Service, query: str, **body: object) -> dict[str, list[str]]:
    """First result's doc_id -> its flags, for every result."""
    return {
        f"{r['doc']['doc_id']}/{r['doc']['region']}/{'.'.join(r['section'])}": r["flags"]
        for r in service.query(query, k=10, **body)["results"]
    }


def test_served_flags_name_doubt_without_stopping_service(service: Service, docs: Path) -> None:
    write_doc(
        docs,
        "loyalty.md",
        "# Loyalty\n\n## Points\n\nOne point per euro spent.\n",
        doc_id="loyalty",
        effective_from=D(2026, 1, 1),
        review_by=D(2026, 12, 1),
    )
    write_doc(
        docs,
        "sale.md",
        "# Winter sale\n\n## Terms\n\nTen percent off heaters.\n",
        doc_id="sale",
        effective_from=D(2026, 11, 1),
        effective_to=D(2026, 11, 30),
        review_by=D(2027, 6, 1),
    )
    write_doc(
        docs,
        "ship.md",
        "# Shipping\n\n## Times\n\nOrders ship within two days.\n",
        doc_id="shipping",
        effective_from=D(2026, 6, 1),
        review_by=D(2027, 6, 1),
    )
    write_doc(
        docs,
        "ship-eu.md",
        "# Shipping EU\n\n## Times\n\nOrders ship within three days.\n",
        doc_id="shipping",
        region="EU",
        effective_from=D(2026, 2, 1),
        review_by=D(2027, 6, 1),
    )
    write_doc(docs, "contact.md", CONTACT, doc_id="contact", effective_from=D(2026, 1, 1), review_by=D(2027, 6, 1))
    service.sync()  # fmt: skip

    assert _flags(service, "loyalty points")["loyalty/global/Points"] == ["review_due_soon"]
    assert _flags(service, "heater sale")["sale/global/Terms"] == ["expiring_soon"]
    assert _flags(service, "how fast do orders ship", region="EU")["shipping/EU/Times"] == ["variant_out_of_sync"]
    assert _flags(service, "how fast do orders ship")["shipping/global/Times"] == []
    contact = _flags(service, "refund escalation and opening hours")
    assert contact["contact/global/Escalation"] == ["pii_detected"]
    assert contact["contact/global/Opening hours"] == []  # only the chunk that holds the data
    # A month on, the review is overdue and the sale is over: served flags follow the moment asked.
    later = _flags(service, "loyalty points", as_of="2026-12-15")
    assert later["loyalty/global/Points"] == ["review_overdue"]


def test_warnings_say_when_a_region_fell_back_because_its_variant_ended(
    service: Service, docs: Path, clock: Clock
) -> None:
    write_doc(
        docs,
        "warranty.md",
        "# Warranty\n\n## Term\n\nTwo years on every kettle.\n",
        doc_id="warranty",
        effective_from=D(2026, 1, 1),
        review_by=D(2027, 6, 1),
    )
    write_doc(
        docs,
        "warranty-de.md",
        "# Garantie\n\n## Term\n\nThree years on every kettle in Germany.\n",
        doc_id="warranty",
        region="DE",
        effective_from=D(2026, 1, 1),
        effective_to=D(2026, 10, 31),
        review_by=D(2027, 6, 1),
    )
    write_doc(
        docs,
        "warranty-fr.md",
        "# Garantie FR\n\n## Term\n\nTwo and a half years on kettles in France.\n",
        doc_id="warranty",
        region="FR",
        effective_from=D(2026, 1, 1),
        review_by=D(2027, 6, 1),
    )
    service.sync()  # fmt: skip
    assert service.query("kettle warranty term", region="FR")["warnings"] == []
    (docs / "warranty-fr.md").unlink()
    service.sync()

    de = service.query("kettle warranty term", region="DE")
    assert [r["doc"]["region"] for r in de["results"]] == ["global"]
    assert de["warnings"] == ["warranty: the DE variant expired after 2026-10-31; serving the global version 1 instead"]
    fr = service.query("kettle warranty term", region="FR")
    assert fr["warnings"] == [
        "warranty: the FR variant was retired on 2026-11-24 (its file was deleted); serving the global version 1 "
        "instead"
    ]
    # Before the DE variant ended there was nothing to warn about.
    assert service.query("kettle warranty term", region="DE", as_of="2026-10-01")["warnings"] == []


@pytest.fixture
def redacting(settings: Settings, embedder: Embedder, clock: Clock) -> Iterator[Service]:
    redact = settings.model_copy(update={"pii": PiiPolicy.redact, "pii_allow": ["@shop.example"]})
    with TestClient(create_app(redact, embedder=embedder, clock=clock)) as client:
        yield Service(client)


def test_pii_redact_serves_placeholders_and_lists_the_file(redacting: Service, docs: Path) -> None:
    write_doc(docs, "contact.md", CONTACT + "\nWrite to care@shop.example any time.\n", doc_id="contact")
    redacting.sync()
    text = " ".join(redacting.texts("refund escalation", k=3, min_score=-1))
    assert "[e-mail address removed]" in text and "[IBAN removed]" in text
    assert "jane.doe" not in text and "DE89" not in text
    assert "care@shop.example" in text  # the team's own address is allowed
    row = redacting.http.get("/v1/staleness", params={"reason": "pii_detected"}).json()["rows"][0]
    assert (row["doc_id"], row["severity"]) == ("contact", "medium")
    assert row["detail"] == (
        "The file holds 1 e-mail address and 1 IBAN; they are redacted before serving. Remove them from contact.md."
    )
    assert all("pii_detected" not in r["flags"] for r in redacting.query("refund escalation")["results"])


@pytest.fixture
def rejecting(settings: Settings, embedder: Embedder, clock: Clock) -> Iterator[Service]:
    with TestClient(
        create_app(settings.model_copy(update={"pii": PiiPolicy.reject}), embedder=embedder, clock=clock)
    ) as c:
        yield Service(c)


def test_pii_reject_keeps_the_previous_version_and_reports_why(rejecting: Service, docs: Path) -> None:
    write_doc(docs, "contact.md", "# Contact\n\n## Escalation\n\nEscalate refunds to a team lead.\n", doc_id="contact")
    rejecting.sync()
    write_doc(docs, "contact.md", CONTACT, doc_id="contact")
    report = rejecting.sync()
    assert report.failed["contact.md"] == (
        "holds 1 e-mail address and 1 IBAN (the first on line 8); agents must not be fed customer data: remove "
        "them, or list a team's own address in KB_PII_ALLOW"
    )
    assert rejecting.texts("escalation", k=1) == ["Escalate refunds to a team lead."]
    row = rejecting.http.get("/v1/staleness").json()["rows"][0]
    assert (row["reason"], row["severity"], row["version"]) == ("pii_detected", "high", 1)
    assert row["detail"].endswith("Fix the file; until then version 1 stays in force.")
