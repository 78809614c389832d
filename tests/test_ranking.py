"""Ranking: the passage that answers comes first, scores are the numbers the ranking used, and a question
nothing in force answers well gets a warning instead of weak matches."""

from __future__ import annotations

from pathlib import Path

from conftest import Service, copy_samples, write_doc
from fastapi.testclient import TestClient

from kb.embedder import Embedder
from kb.server.app import create_app
from kb.settings import Settings

WITHDRAWAL = """# Returns Policy (European Union)

This policy applies to customers who buy online in a member state of the European Union.

## Statutory right of withdrawal (14 days)

Consumers who buy online, by phone or by any other distance channel may withdraw from the contract within
14 days without giving any reason. The period ends 14 days after the customer takes physical possession of
the goods.

## Goodwill return period (30 days)

In addition to the statutory right, we voluntarily accept returns of online and in-store purchases for 30 days
from delivery or purchase, provided the product is clean and complete.

## Refund timeline

We refund all payments, including the standard delivery charge, no later than 14 days after the day we are
informed of the withdrawal. The refund uses the same payment method as the original transaction.
"""
FAQ = """# Order FAQ

## Refunds and problems

### An item arrived damaged. What should I do?

A customer who receives a damaged item should report it within 48 hours with a photo. We then send a
replacement or refund the item.
"""
WARRANTY = """# Warranty

## Warranty period

Small kitchen appliances such as blenders and kettles carry a two-year warranty from the date of purchase.

## Repairs in store

Book a repair appointment for a blender or a kettle at the service counter; warranty repairs are free and
out-of-warranty repairs carry a diagnostic fee.
"""


def _corpus(docs: Path) -> None:
    (docs / "regions.yaml").write_text("DE: EU\nEU: global\n")
    write_doc(docs, "returns-eu.md", WITHDRAWAL, doc_id="returns-policy", region="EU")
    write_doc(docs, "faq.md", FAQ, doc_id="order-faq", doc_type="faq")
    write_doc(docs, "warranty.md", WARRANTY, doc_id="warranty")


def test_words_never_bury_the_passage_the_embedding_ranks_first(service: Service, docs: Path) -> None:
    """Words that other passages repeat ("customer", "item", "days") do not push the embedding's clear pick
    down the list: scores are combined, not ranks."""
    _corpus(docs)
    assert service.sync().failed == {}
    question = "How many days does a customer have to return an item?"
    vector = service.query(question, region="DE", k=5, mode="vector")["results"]
    assert vector[0]["doc"]["doc_id"] == "returns-policy", "precondition: the embedding's pick answers"
    hybrid = service.query(question, region="DE", k=5)["results"]
    assert vector[0]["chunk_id"] in [r["chunk_id"] for r in hybrid[:2]]
    assert [r["doc"]["doc_id"] for r in hybrid[:3]].count("returns-policy") >= 2


def test_results_come_in_descending_score_and_the_cosine_is_kept_beside_it(service: Service, docs: Path) -> None:
    _corpus(docs)
    service.sync()
    for mode in ("hybrid", "vector"):
        results = service.query("two-year warranty blender", k=6, mode=mode, min_score=-1)["results"]
        scores = [r["score"] for r in results]
        assert scores == sorted(scores, reverse=True), mode
        assert all(-1 <= r["cosine"] <= 1 for r in results)
    vector = service.query("two-year warranty blender", k=6, mode="vector", min_score=-1)["results"]
    assert all(r["score"] == r["cosine"] for r in vector), "vector mode ranks by the cosine alone"


def test_a_question_nothing_in_force_answers_gets_a_warning_not_weak_matches(service: Service, docs: Path) -> None:
    _corpus(docs)
    service.sync()
    answer = service.query("What is the capital of Mongolia and its population?", region="DE")
    assert answer["results"] == []
    assert any("nothing in force answers this well" in w for w in answer["warnings"])
    # The agent can lower the floor and look at the weak matches itself.
    weak = service.query("What is the capital of Mongolia and its population?", region="DE", min_score=-1)
    assert weak["results"] and not any("answers this well" in w for w in weak["warnings"])
    answered = service.query("How long is the warranty on a kettle?")
    assert answered["results"][0]["section"] == ["Warranty period"]
    assert not answered["warnings"]


def test_min_score_drops_only_the_results_below_it(service: Service, docs: Path) -> None:
    _corpus(docs)
    service.sync()
    everything = service.query("refund of a damaged item", k=8, min_score=-1)["results"]
    floor = everything[2]["score"]
    kept = service.query("refund of a damaged item", k=8, min_score=floor)["results"]
    assert [r["chunk_id"] for r in kept] == [r["chunk_id"] for r in everything if r["score"] >= floor]


def test_min_score_out_of_range_is_a_422(service: Service) -> None:
    response = service.http.post("/v1/query", json={"query": "returns", "min_score": 2})
    assert response.status_code == 422
    assert set(response.json()["error"]) == {"code", "message"}


def test_changing_the_chunk_size_cuts_every_file_anew_at_the_next_start(
    settings: Settings, embedder: Embedder, docs: Path
) -> None:
    """The same file cut by another chunk size keeps its version number and dates; only its chunks change."""
    long_section = "\n\n".join(f"Rule {i}: parcels over {i} kg ship by freight within {i + 2} days." for i in range(40))
    write_doc(docs, "shipping.md", f"# Shipping\n\n## Freight\n\n{long_section}\n", doc_id="shipping", version=1)
    with TestClient(create_app(settings, embedder=embedder)) as client:
        assert Service(client).sync().failed == {}
        before = Service(client).query("parcels over 30 kg", k=50, min_score=-1)["results"]
    smaller = settings.model_copy(update={"chunk_tokens": 48})
    with TestClient(create_app(smaller, embedder=embedder)) as client:
        after = Service(client).query("parcels over 30 kg", k=50, min_score=-1)["results"]  # cut at start-up
        assert Service(client).sync().changes == [], "once cut anew, a sync finds nothing to do"
    assert len(after) > len(before)
    assert {(r["doc"]["doc_id"], r["doc"]["version"]) for r in after} == {("shipping", 1)}
    assert "parcels over 30 kg" in after[0]["text"]


def test_the_readme_example_answers_with_the_statutory_withdrawal_passage_first(
    settings: Settings, embedder: Embedder, docs: Path
) -> None:
    """The README's own example, on a copy of the sample folder it documents (regenerate the README's answer
    when the sample returns policies change). Reciprocal rank fusion put this passage 9th of 10."""
    copy_samples(docs)
    with TestClient(create_app(settings, embedder=embedder)) as client:
        service = Service(client)
        assert service.sync().failed == {}
        answer = service.query("How many days does a customer have to return an item?", region="DE", k=2)
    top = answer["results"][0]
    assert (top["doc"]["doc_id"], top["doc"]["region"]) == ("returns-policy", "EU")
    assert top["section"] == ["Statutory right of withdrawal (14 days)"]
    assert answer["region_chain"] == ["DE", "EU", "global"]
