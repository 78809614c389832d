"""Write the sample corpus's DOCX, PDF and HTML policies, their sidecars and a folder defaults file.

Nothing binary in policies/ is made by hand: run this after changing the texts below, and commit what it
writes. The files show what policy owners bring besides Markdown:

    policies/b2b/business-accounts.docx            Word, keys from its sidecar (.docx.meta.yaml)
    policies/eu/_defaults.yaml                     region EU, owner Legal EU for every file below policies/eu/
    policies/eu/product-recalls.pdf                a 3-page PDF: results cite their page
    policies/eu/product-recalls.pdf.meta.yaml      doc_id, version and dates; region and owner come from defaults
    policies/gift-cards/gift-cards.html            an exported wiki page, keys from its sidecar

    python scripts/make_sample_files.py [--docs policies]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.office import Outline, Section, write_docx, write_html, write_pdf  # noqa: E402

BUSINESS_ACCOUNTS = Outline(
    "Business Accounts",
    (
        Section(
            "Who can open a business account",
            "Companies, public bodies and registered charities can open a Northwind Home business account. "
            "Sole traders qualify when they give a VAT or tax registration number.",
            bullets=("A registered company name and address", "A purchasing contact with a company e-mail domain"),
        ),
        Section(
            "Payment terms",
            "Business accounts pay by invoice. Credit limits are set by the finance team after a credit check.",
            table=(
                ("Annual spend", "Invoice terms", "Credit limit"),
                ("Under 10,000 EUR", "Net 14 days", "2,500 EUR"),
                ("10,000 to 100,000 EUR", "Net 30 days", "15,000 EUR"),
                ("Over 100,000 EUR", "Net 45 days", "By agreement"),
            ),
        ),
        Section(
            "Volume discounts",
            "Orders of 20 or more units of one product get a volume discount on the list price.",
            steps=(
                "Check that the account is in good standing",
                "Apply 5% for 20 to 49 units, 8% for 50 to 199 units",
                "Send orders of 200 units or more to the key account manager",
            ),
        ),
    ),
)

PRODUCT_RECALLS = Outline(
    "Product Recalls (European Union)",
    (
        Section(
            "When a recall applies",
            "A recall applies when a product sold in the European Union is found to be unsafe under the General "
            "Product Safety Regulation. Customers are told through the Safety Gate notice, e-mail and the website.",
            bullets=("Stop selling the affected batch at once", "Tell customers who bought it within 2 working days"),
        ),
        Section(
            "What customers get",
            "Customers who own a recalled product get a free repair, a replacement or a full refund, whichever is "
            "possible, and never pay for collection. A refund covers the price paid and the original delivery cost.",
            table=(
                ("Remedy", "When", "Deadline"),
                ("Repair", "A safe fix exists", "30 days"),
                ("Replacement", "Stock is available", "30 days"),
                ("Refund", "Otherwise", "14 days"),
            ),
        ),  # fmt: skip
        Section(
            "How agents handle a recall contact",
            "Agents confirm the batch number printed on the product label before offering a remedy.",
            steps=(
                "Ask for the batch number and the order number",
                "Check the batch against the recall list",
                "Book a free collection and log the remedy chosen",
            ),
        ),
    ),
)

GIFT_CARDS = Outline(
    "Gift Cards",
    (
        Section(
            "Validity",
            "Northwind Home gift cards are valid for 3 years from the date of purchase and cannot be exchanged "
            "for cash.",
            bullets=("Physical cards are sold in stores", "E-gift cards are delivered by e-mail within one hour"),
        ),
        Section(
            "Lost or stolen cards",
            "A lost card can be blocked and its balance moved to a new card when the customer has the receipt.",
            steps=("Verify the receipt", "Block the old card number", "Issue a new card with the remaining balance"),
        ),
    ),
)

SIDECARS = {
    "b2b/business-accounts.docx.meta.yaml": """\
doc_id: business-accounts
doc_type: policy
version: 1
effective_from: 2026-03-01
review_by: 2027-03-01
owner: B2B Sales
risk_tier: medium
""",
    "eu/product-recalls.pdf.meta.yaml": """\
doc_id: product-recalls
doc_type: procedure
version: 1
effective_from: 2026-06-01
review_by: 2027-06-01
""",
    "eu/_defaults.yaml": """\
# Every file below policies/eu/ is an EU variant owned by Legal EU, unless its own keys say otherwise.
region: EU
owner: Legal EU
risk_tier: regulated
""",
    "gift-cards/gift-cards.html.meta.yaml": """\
doc_id: gift-cards
doc_type: faq
version: 1
effective_from: 2026-01-15
review_by: 2027-01-15
owner: Customer Care Policy Team
""",
}


def write_samples(docs: Path) -> list[Path]:
    written = [
        write_docx(docs / "b2b/business-accounts.docx", BUSINESS_ACCOUNTS),
        write_pdf(docs / "eu/product-recalls.pdf", PRODUCT_RECALLS),
        write_html(docs / "gift-cards/gift-cards.html", GIFT_CARDS),
    ]
    for rel, text in SIDECARS.items():
        (docs / rel).write_text(text, encoding="utf-8")
        written.append(docs / rel)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=Path(__file__).resolve().parents[1] / "policies")
    for path in write_samples(parser.parse_args().docs):
        print(path)


if __name__ == "__main__":
    main()
