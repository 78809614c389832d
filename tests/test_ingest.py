"""Ingestion: idempotent, incremental, all-or-nothing, exclusive, and exact at query time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import Clock, copy_samples, write_doc

from kb.embedder import Embedder
from kb.errors import DataDirLocked
from kb.ingest.pipeline import chunker_for, parse_file, sync
from kb.knowledge import KnowledgeBase
from kb.retrieval import QueryRequest, RetrievalMode
from kb.settings import Settings
from kb.store import ChunkStore
from kb.timeline import Timeline


@pytest.fixture
def kb(settings: Settings, embedder: Embedder, clock: Clock) -> Iterator[KnowledgeBase]:
    base = KnowledgeBase.open(settings, embedder, clock)
    yield base
    base.close()


def sections(n: int, edited: int | None = None) -> str:
    parts = [
        f"## Topic {i}\n\nParagraph {i} explains rule number {i} of the store policy in plain words." for i in range(n)
    ]
    if edited is not None:
        parts[edited] += " It was clarified last week."
    return "# Store policy\n\n" + "\n\n".join(parts) + "\n"


def test_ingest_is_idempotent_and_only_changed_chunks_are_embedded(kb: KnowledgeBase, docs: Path) -> None:
    write_doc(docs, "policy.md", sections(6), doc_id="store", version=1)
    write_doc(docs, "copy.md", sections(6), doc_id="store-copy")
    first = sync(kb)
    assert (first.embedded, len(first.changes)) == (6, 2), "identical chunks of two documents are embedded once"
    stored = kb.store.count()
    again = sync(kb)
    assert (again.embedded, again.changes, again.unchanged) == (0, [], 2)
    assert kb.store.count() == stored
    write_doc(docs, "policy.md", sections(6, edited=3), doc_id="store", version=1)
    edit = sync(kb)
    assert edit.embedded == 1
    assert edit.changes == ["store v1 corrected: 6 chunks, 1 embedded, effective 2026-11-24"]


def test_sample_corpus_ingests_cleanly_with_every_case_the_demo_needs(
    settings: Settings, embedder: Embedder, docs: Path
) -> None:
    clock = Clock(dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC))
    base = KnowledgeBase.open(settings.model_copy(update={"docs": copy_samples(docs)}), embedder, clock)
    try:
        report = sync(base)
        assert report.failed == {}
        docs = base.documents(include_all=True)
        assert len({d.current.record.doc_id for d in docs}) >= 12
        statuses = {
            (v.record.doc_id, v.record.region, v.record.version): s.value for v, s in base.history("returns-policy")
        }
        assert statuses[("returns-policy", "global", 1)] == "superseded"
        assert statuses[("returns-policy", "global", 3)] == "future"
        assert {d.current.record.region for d in docs if d.current.record.doc_id == "returns-policy"} == {
            "global",
            "EU",
            "US",
        }
        reasons = {(row.doc_id, row.reason.value) for row in base.staleness()}
        assert {("blender-x1-spec", "expired"), ("price-match", "review_overdue")} <= reasons
    finally:
        base.close()


def test_a_crash_between_embedding_and_the_ledger_switch_leaves_the_old_version(
    settings: Settings, embedder: Embedder, clock: Clock, docs: Path
) -> None:
    write_doc(docs, "r.md", "# Returns\n\nReturns are accepted within 14 days.\n", doc_id="returns")
    kb = KnowledgeBase.open(settings, embedder, clock)
    sync(kb)
    write_doc(docs, "r.md", "# Returns\n\nReturns are accepted within 60 days.\n", doc_id="returns")
    parsed = parse_file(kb, chunker_for(kb), "r.md", (docs / "r.md").read_bytes(), None)
    kb.ensure_embedded(parsed.chunks)  # vectors written ... and the process dies before the ledger commit
    assert kb.store.count() == 2
    kb.close()

    reopened = KnowledgeBase.open(settings, embedder, clock)
    try:
        assert reopened.store.count() == 1, "start-up removed the vectors no version refers to"
        answer = reopened.query(QueryRequest("how long to return"))
        assert [r.text for r in answer.results] == ["Returns are accepted within 14 days."]
        sync(reopened)
        assert [r.text for r in reopened.query(QueryRequest("how long to return")).results] == [
            "Returns are accepted within 60 days."
        ]
    finally:
        reopened.close()


def test_a_second_process_on_the_same_data_folder_gets_a_clear_error(kb: KnowledgeBase, settings: Settings) -> None:
    with pytest.raises(DataDirLocked, match=r"is in use by another kb process \(pid \d+\)"):
        KnowledgeBase.open(settings, kb.embedder)


def test_an_index_built_by_another_model_is_re_embedded_not_mixed(
    settings: Settings, embedder: Embedder, clock: Clock, docs: Path
) -> None:
    write_doc(docs, "a.md", sections(3))
    kb = KnowledgeBase.open(settings, embedder, clock)
    sync(kb)
    kb.close()
    other = ChunkStore.open(settings.data, None, "some-other-model", 384)
    assert other.rebuilt and other.count() == 0

    reopened = KnowledgeBase.open(settings, embedder, clock)
    try:
        assert reopened.store.count() == 3, "every chunk of the ledger embedded again with the configured model"
        assert reopened.query(QueryRequest("rule number 2")).results[0].text.startswith("Paragraph 2")
    finally:
        reopened.close()


def test_a_store_reopens_when_a_future_version_shares_chunks_with_the_one_in_force(
    settings: Settings, embedder: Embedder, clock: Clock, docs: Path
) -> None:
    """Regression: start-up reads every version in force or future from the store in one call, and Chroma
    refuses a repeated id, so a future version that kept a chunk of the current one stopped kb from opening."""
    write_doc(docs, "r.md", sections(3), doc_id="returns", version=1, effective_from=dt.date(2026, 1, 1))
    write_doc(docs, "r-v2.md", sections(3, 1), doc_id="returns", version=2, effective_from=dt.date(2027, 1, 1))
    kb = KnowledgeBase.open(settings, embedder, clock)
    assert sync(kb).failed == {}
    kb.close()

    reopened = KnowledgeBase.open(settings, embedder, clock)
    try:
        assert (reopened.store.count(), reopened.stats()["chunks_resident"]) == (4, 6)
    finally:
        reopened.close()


def test_the_timeline_kept_by_writes_equals_one_rebuilt_from_the_ledger(
    settings: Settings, embedder: Embedder, clock: Clock, docs: Path
) -> None:
    """A write updates its series in memory from what it committed, instead of re-reading the series' whole
    history (which made each write slower as history grew); what it keeps must be what the ledger says."""
    write_doc(docs, "r.md", sections(3), doc_id="returns", version=1, effective_from=dt.date(2026, 1, 1))
    write_doc(docs, "r-v3.md", sections(3, 1), doc_id="returns", version=3, effective_from=dt.date(2027, 1, 1))
    kb = KnowledgeBase.open(settings, embedder, clock)
    sync(kb)
    write_doc(docs, "r.md", sections(3, 2), doc_id="returns", version=1, effective_from=dt.date(2026, 1, 1))
    write_doc(docs, "r-v2.md", sections(4), doc_id="returns", version=2, effective_from=dt.date(2026, 6, 1))
    assert sync(kb).failed == {}  # v1 corrected, v2 inserted before the future v3 and in force
    assert kb.timeline.series("returns", "global") == Timeline(kb.ledger.versions()).series("returns", "global")
    resident = {r.id for r in kb.ledger.versions() if r.id in kb.index}
    kb.close()

    reopened = KnowledgeBase.open(settings, embedder, clock)
    try:
        assert {r.id for r in reopened.ledger.versions() if r.id in reopened.index} == resident
        assert [v.record.version for v in reopened.timeline.series("returns", "global") if v.record.id in resident] == [
            2,
            3,
        ]
    finally:
        reopened.close()


# -- exactness -------------------------------------------------------------------------------------------

REGIONS = {"global": (20, 1), "EU": (6, 3), "DE": (3, 4)}  # versions, months between versions
TOPICS = ["refund timing", "restocking fees", "gift receipts", "damaged parcels"]


def _month(n: int) -> dt.date:
    return dt.date(2025 + n // 12, n % 12 + 1, 1)


def _history(docs: Path) -> None:
    (docs / "regions.yaml").write_text("EU: global\nDE: EU\n")
    for region, (count, step) in REGIONS.items():
        for v in range(1, count + 1):
            body = "# Returns\n\n" + "\n\n".join(
                f"## {topic.title()}\n\nIn {region} version {v}, {topic} follow rule {v * 7 % 11} with a limit "
                f"of {v * 3 + len(region)} days and {v % 4} exceptions."
                for topic in TOPICS
            )
            write_doc(docs, f"{region}/v{v}.md", body, doc_id="returns", region=region, version=v,
                      effective_from=_month((v - 1) * step))  # fmt: skip
    write_doc(docs, "shipping.md", "# Shipping\n\nParcels ship within two days; refunds for lost parcels in 5 days.\n",
              effective_from=dt.date(2024, 1, 1))  # fmt: skip


def _expected_versions(region_chain: list[str], at: dt.date) -> list[tuple[str, int]]:
    for region in region_chain:
        count, step = REGIONS[region]
        started = [v for v in range(1, count + 1) if _month((v - 1) * step) <= at]
        if started:
            return [(region, max(started))]
    return []


@pytest.mark.parametrize("region_chain", [["global"], ["EU", "global"], ["DE", "EU", "global"]])
def test_query_returns_the_exact_top_k_among_chunks_in_force(
    kb: KnowledgeBase, docs: Path, embedder: Embedder, region_chain: list[str]
) -> None:
    _history(docs)
    assert sync(kb).failed == {}
    texts = kb.ledger.embed_texts()
    question = "how many days for a refund on a damaged parcel"
    query_vector = embedder.encode_query(question)
    for at in (dt.date(2025, 2, 15), dt.date(2025, 9, 1), dt.date(2026, 4, 2), dt.date(2026, 11, 24)):
        in_force = [
            record.id
            for record in kb.ledger.versions()
            if (record.region, record.version) in _expected_versions(region_chain, at) or record.doc_id == "shipping"
        ]
        chunk_ids = [cid for vid in in_force for cid in kb.ledger.chunk_ids(vid)]
        brute = embedder.encode([texts[cid] for cid in chunk_ids]) @ query_vector
        expected = [chunk_ids[i] for i in np.argsort(-brute)[:8]]
        # Pinned to vector mode: the exact cosine top-k is the contract here, whatever the default ranking.
        answer = kb.query(QueryRequest(question, k=8, region=region_chain[0], as_of=at, mode=RetrievalMode.vector))
        assert [r.chunk_id for r in answer.results] == expected, f"as of {at}"
        assert [r.score for r in answer.results] == pytest.approx(sorted(brute, reverse=True)[:8], abs=1e-4)
