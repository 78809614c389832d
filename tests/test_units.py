"""The fast tier: pure parts of the core (validity, region resolution, ranking arithmetic, personal data), with
no model, no Chroma and no server. Each runs in milliseconds."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from itertools import count

import numpy as np
import pytest

from kb import feed, pii
from kb.documents import DocType, Document, RiskTier
from kb.errors import ConfigError
from kb.index import VectorIndex
from kb.records import VersionRecord
from kb.regions import RegionTree
from kb.timeline import Timeline, VersionStatus, series_validity
from kb.writes import Write, plan_write

_ids = count(1)


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def record(version: int, start: str, end: str | None = None, region: str = "global", doc_id: str = "returns",
           **changes: object) -> VersionRecord:  # fmt: skip
    fields: dict[str, object] = dict(
        id=next(_ids), doc_id=doc_id, region=region, version=version, revision=1, title=doc_id,
        doc_type=DocType.policy, products=(), owner=None, risk_tier=RiskTier.low, meta={},
        effective_from=day(start), effective_to=day(end) if end else None, review_due=None, source=f"{doc_id}.md",
        content_hash="c", file_hash="f", explicit_version=True, ingested_at=day("2026-01-01"), replaced_at=None,
        retracted_at=None, retired_at=None,
    )  # fmt: skip
    fields.update(changes)
    return VersionRecord(**fields)  # type: ignore[arg-type]


def test_rule1_a_version_ends_at_the_earlier_of_its_effective_to_and_the_next_versions_start() -> None:
    v1, v2 = series_validity([record(1, "2026-01-01", "2026-09-01"), record(2, "2026-06-01")])
    assert v1.end == day("2026-06-01") and v1.ended_by is VersionStatus.superseded
    assert v2.end is None
    short = series_validity([record(1, "2026-01-01", "2026-03-01"), record(2, "2026-06-01")])[0]
    assert short.end == day("2026-03-01") and short.ended_by is VersionStatus.expired
    assert short.status(day("2026-04-01")) is VersionStatus.expired


def test_rule2_a_future_version_takes_over_on_its_date_without_a_scheduler() -> None:
    v1, v2 = series_validity([record(1, "2026-01-01"), record(2, "2026-12-01")])
    assert v1.in_force(day("2026-11-30")) and v2.status(day("2026-11-30")) is VersionStatus.future
    assert v2.in_force(day("2026-12-01")) and v1.status(day("2026-12-01")) is VersionStatus.superseded


def test_a_retracted_future_version_ends_nothing() -> None:
    v1, v2 = series_validity([record(1, "2026-01-01"), record(2, "2026-12-01", retracted_at=day("2026-11-01"))])
    assert v1.in_force(day("2027-01-01"))
    assert v2.status(day("2027-01-01")) is VersionStatus.retracted


def test_rule6_resolution_takes_the_most_specific_series_in_force_on_the_chain() -> None:
    timeline = Timeline([
        record(1, "2026-01-01"),
        record(1, "2026-01-01", region="EU"),
        record(1, "2026-01-01", region="US"),
        record(1, "2026-01-01", doc_id="warranty"),
        record(1, "2026-01-01", "2026-06-01", region="DE", doc_id="warranty"),
    ])  # fmt: skip
    served = timeline.resolve(("DE", "EU", "global"), day("2026-03-01")).by_version_id.values()
    assert sorted((v.record.doc_id, v.record.region) for v in served) == [("returns", "EU"), ("warranty", "DE")]
    later = timeline.resolve(("DE", "EU", "global"), day("2026-07-01")).by_version_id.values()
    assert sorted((v.record.doc_id, v.record.region) for v in later) == [("returns", "EU"), ("warranty", "global")]


def test_the_region_tree_falls_back_to_global_and_refuses_cycles() -> None:
    tree = RegionTree({"DE": "EU", "EU": "global"})
    assert tree.chain("DE") == ("DE", "EU", "global")
    assert tree.chain("FR") == ("FR", "global")
    assert tree.chain("global") == ("global",)
    with pytest.raises(ConfigError):
        RegionTree({"A": "B", "B": "A"})


def _stored(vectors: dict[str, np.ndarray]) -> Callable[[Sequence[str]], np.ndarray]:
    """The store's float32 vectors by chunk id, which the index scores its candidates with."""
    return lambda ids: np.stack([vectors[cid] for cid in ids])


def _index(texts: dict[int, list[str]], vectors: dict[int, np.ndarray]) -> VectorIndex:
    by_id = {f"{vid}-{i}": v for vid, rows in vectors.items() for i, v in enumerate(rows)}
    index = VectorIndex(2, lambda ids: {}, _stored(by_id))
    for vid, chunk_texts in texts.items():
        index.put(vid, [f"{vid}-{i}" for i in range(len(chunk_texts))], vectors[vid], chunk_texts)
    return index


def test_hybrid_scores_combine_cosine_and_normalised_bm25_and_come_best_first() -> None:
    """Toy 2-d vectors: the words decide between chunks the cosine cannot tell apart, and never push the
    clear cosine winner below a chunk that merely repeats one query word."""
    near = np.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    index = _index({1: ["restocking fee applies", "opened boxes are fine", "fee fee fee fee"]}, {1: near})
    query = np.array([1.0, 0.0], dtype=np.float32)
    hits = index.search(query, frozenset({1}), 3, text="restocking fee")
    assert [h.chunk_id for h in hits] == ["1-0", "1-1", "1-2"]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].cosine == pytest.approx(1.0) and hits[0].score <= 1.0
    vector = index.search(query, frozenset({1}), 3)
    assert [h.score for h in vector] == [h.cosine for h in vector]


def test_a_search_does_not_wait_while_another_reads_history_back() -> None:
    """An ``as_of`` query reads old versions from the ledger and the store; a query over what is resident goes on
    meanwhile."""
    reading, release = threading.Event(), threading.Event()

    def slow_history(ids: Collection[int]) -> dict[int, tuple[list[str], np.ndarray, list[str]]]:
        reading.set()
        assert release.wait(5)
        return {vid: ([f"{vid}-0"], np.array([[0.0, 1.0]], np.float32), ["old text"]) for vid in ids}

    index = VectorIndex(2, slow_history, _stored({"1-0": np.array([1.0, 0.0], np.float32),
                                                  "2-0": np.array([0.0, 1.0], np.float32)}))  # fmt: skip
    index.put(1, ["1-0"], np.array([[1.0, 0.0]], np.float32), ["current text"])
    query = np.array([1.0, 0.0], np.float32)
    old = threading.Thread(target=index.search, args=(query, frozenset({2}), 1))
    old.start()
    assert reading.wait(5)
    try:
        assert [h.chunk_id for h in index.search(query, frozenset({1}), 1)] == ["1-0"]
    finally:
        release.set()
        old.join(5)
    assert [h.chunk_id for h in index.search(query, frozenset({2}), 1)] == ["2-0"]


def test_a_search_sees_only_the_versions_it_is_given() -> None:
    vectors = {1: np.array([[1.0, 0.0]], np.float32), 2: np.array([[0.9, 0.1]], np.float32)}
    index = _index({1: ["the old rule"], 2: ["the new rule"]}, vectors)
    hits = index.search(np.array([1.0, 0.0], np.float32), frozenset({2}), 5, text="rule")
    assert [h.version_id for h in hits] == [2]


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("Write to jane.doe@example.com today.", ["email"]),
        ("Card 4111 1111 1111 1111 was charged.", ["card"]),
        ("Refund to DE89 3704 0044 0532 0130 00 please.", ["iban"]),
        ("SKU 4111-2222, price 49.99, on 2026-01-01.", []),
    ],
)
def test_personal_data_is_found_by_its_checks_and_skus_prices_and_dates_are_not(text: str, kinds: list[str]) -> None:
    assert [f.kind.value for f in pii.scan(text)] == kinds


def document(version: int | None, body: str = "c") -> Document:
    return Document(
        doc_id="returns", region="global", title="Returns", doc_type=DocType.policy, products=(), version=version,
        effective_from=None, effective_to=None, review_by=None, review_every=None, owner=None,
        risk_tier=RiskTier.low, source="returns.md", content_hash=body,
    )  # fmt: skip


def test_rule3_the_write_plan_corrects_a_kept_version_and_numbers_a_new_one() -> None:
    v1, v2 = record(1, "2026-01-01"), record(2, "2026-06-01")
    stored = {v1.id: ["a"], v2.id: ["b"]}.__getitem__

    def plan(doc: Document, previous: int | None, file: str = "f", chunks: tuple[str, ...] = ("b",)) -> tuple:
        result = plan_write(doc, [v1, v2], previous, file, chunks, stored)
        return result.write, result.same.id if result.same else None, result.number

    assert plan(document(2), v2.id) == (Write.unchanged, v2.id, 2)
    assert plan(document(2), v2.id, file="edited") == (Write.correct, v2.id, 2)
    assert plan(document(2), v2.id, chunks=("b1", "b2")) == (Write.correct, v2.id, 2), "cut anew: a correction"
    assert plan(document(None, body="c"), v2.id, file="keys only") == (Write.correct, v2.id, 2)
    assert plan(document(None, body="new text"), v2.id, file="edited") == (Write.new, None, 3)
    assert plan(document(7), None) == (Write.new, None, 7)
    gone = record(3, "2026-01-01", retired_at=day("2026-03-01"))
    back = plan_write(document(3), [gone], gone.id, "f", ["c"], {gone.id: ["c"]}.__getitem__)
    assert (back.write, back.number) == (Write.restore, 3)


def test_the_feed_dates_each_start_and_end_once_and_says_why_a_version_ended() -> None:
    v1, v2 = record(1, "2026-01-01"), record(2, "2026-06-01", "2026-09-01")
    gone = record(1, "2026-01-01", doc_id="gone", retired_at=day("2026-03-01"))
    never = record(1, "2026-04-01", doc_id="never", retracted_at=day("2026-02-01"))
    series = [series_validity([v1, v2]), series_validity([gone]), series_validity([never])]
    events = feed.date_events(series, day("2026-01-01"), day("2026-12-31"))
    assert [(e.kind, e.doc_id, e.version, e.at) for e in events] == [
        ("ended", "returns", 1, day("2026-06-01")),
        ("took_effect", "returns", 2, day("2026-06-01")),
        ("ended", "returns", 2, day("2026-09-01")),
    ], "a start at the mark was the news of its write; a retirement is the event of its deletion; retracted: nothing"
    assert [e.summary.split(": ")[-1] for e in events if e.kind == "ended"] == ["superseded by v2", "expired"]
    assert "replaces v1" in events[1].summary
    assert feed.date_events(series, day("2026-06-01"), day("2026-08-31")) == []
