"""Hybrid retrieval: BM25 over exactly the chunks in force, fused with the vector ranking.

The vector-mode preconditions below pin why each case needs the words: they hold for the packaged
all-MiniLM-L6-v2, so a test that passes in hybrid mode is one that vector mode alone would fail.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import pytest
import Stemmer
from click.testing import CliRunner
from conftest import Service, write_doc

from kb.embedder import Embedder
from kb.lexical import LexicalIndex
from kb.retrieval import RetrievalMode
from kb.server.cli import cli
from kb.settings import Settings

BUNDLES = [
    ("QX-7713", "two spare jars", "Blender X1"),
    ("QX-1377", "a travel lid", "Kettle K2"),
    ("QX-3177", "four filters", "Kettle K1"),
    ("QX-7137", "a tamper and a spatula", "Blender X2"),
    ("QX-7731", "a spare blade", "Blender X1"),
    ("QX-3717", "a recipe book", "Blender X2"),
    ("QX-1737", "a cleaning brush", "Kettle K1"),
    ("QX-7371", "a lid seal", "Kettle K2"),
    ("QX-3771", "a jug", "Blender X1"),
]
WARRANTY = """# Warranty

## Coverage

Every blender and kettle part is covered for two years against defects.

## Claims

A covered part is replaced free of charge once the defect is confirmed by our service team.
"""
RETURNS = """# Returns

## Window

Items can be returned within 30 days of delivery.

## Restocking

Opened appliances carry a restocking fee of 15 percent.
"""


def bundles(replace: dict[str, str] | None = None) -> str:
    """A document of near-identical sections that differ only in a product code."""
    rows = [((replace or {}).get(code, code), holds, model) for code, holds, model in BUNDLES]
    return "# Bundles\n\n" + "\n\n".join(f"## {c}\n\nBundle {c} holds {h} for the {m}." for c, h, m in rows) + "\n"


def _corpus(docs: Path) -> None:
    write_doc(docs, "bundles.md", bundles(), doc_type="product_spec")
    write_doc(docs, "warranty.md", WARRANTY)
    write_doc(docs, "returns.md", RETURNS)


def rank_of(results: list[dict[str, Any]], word: str) -> int | None:
    return next((i for i, r in enumerate(results) if word in r["text"]), None)


def test_an_exact_code_the_vector_ranks_poorly_comes_first_in_hybrid(service: Service, docs: Path) -> None:
    _corpus(docs)
    assert service.sync().failed == {}
    for question, code in [("QX-3771", "QX-3771"), ("What is in bundle QX-7371?", "QX-7371")]:
        vector = service.query(question, k=10, mode="vector")["results"]
        vector_rank = rank_of(vector, code)
        assert vector_rank is None or vector_rank >= 3, "precondition: the embedding alone ranks the code poorly"
        hybrid = service.query(question, k=10, mode="hybrid")["results"]
        assert rank_of(hybrid, code) == 0, question
        # The score is the number the ranking used, in descending order; the cosine is kept beside it.
        assert [r["score"] for r in hybrid] == sorted((r["score"] for r in hybrid), reverse=True)
        cosine = {r["chunk_id"]: r["score"] for r in service.query(question, k=50, mode="vector")["results"]}
        assert all(r["cosine"] == cosine[r["chunk_id"]] for r in hybrid)


def test_a_query_that_matches_no_word_ranks_exactly_as_vector(service: Service, docs: Path) -> None:
    _corpus(docs)
    service.sync()
    question = "zzyzx qwfp"  # neither word is in any chunk
    hybrid = service.query(question, k=8, mode="hybrid", min_score=-1)["results"]
    vector = service.query(question, k=8, mode="vector", min_score=-1)["results"]
    assert [r["chunk_id"] for r in hybrid] == [r["chunk_id"] for r in vector]
    assert [r["cosine"] for r in hybrid] == [r["score"] for r in vector]


def test_the_retrieval_setting_is_the_mode_of_a_query_that_names_none(
    settings: Settings, embedder: Embedder, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from kb.server.app import create_app

    monkeypatch.setenv("KB_RETRIEVAL", "hybrid")
    hybrid_settings = Settings(docs=docs, data=settings.data, watch=False)
    assert hybrid_settings.retrieval is RetrievalMode.hybrid
    _corpus(docs)
    with TestClient(create_app(hybrid_settings, embedder=embedder)) as client:
        service = Service(client)
        service.sync()
        assert rank_of(service.query("QX-3771")["results"], "QX-3771") == 0
        assert rank_of(service.query("QX-3771", mode="vector")["results"], "QX-3771") != 0


def test_bm25_never_returns_a_chunk_that_is_not_in_force(service: Service, docs: Path) -> None:
    """A rare word sits in a superseded, a future, an expired version, another region's variant, a global
    document shadowed by its EU variant and a FAQ filtered out by doc_type; one policy in force has it."""
    (docs / "regions.yaml").write_text("EU: global\n")
    word = "zephyrine"
    text = f"Orders packed with {word} padding ship in a recycled box."
    write_doc(docs, "alpha/v1.md", f"# Packing\n\n{text}\n", doc_id="alpha", version=1, effective_from="2025-01-01")
    write_doc(docs, "alpha/v2.md", "# Packing\n\nOrders ship in a recycled box.\n", doc_id="alpha", version=2,
              effective_from="2026-01-01")  # fmt: skip
    write_doc(docs, "alpha/v3.md", f"# Packing\n\n{text}\n", doc_id="alpha", version=3, effective_from="2027-06-01")
    write_doc(docs, "beta.md", f"# Packing US\n\n{text}\n", doc_id="beta", region="US")
    write_doc(docs, "gamma.md", f"# Boxes\n\n{text}\n", doc_id="gamma")
    write_doc(docs, "gamma-eu.md", "# Boxes\n\nBoxes are recycled in the EU.\n", doc_id="gamma", region="EU")
    write_doc(docs, "delta.md", f"# Packing FAQ\n\n{text}\n", doc_id="delta", doc_type="faq")
    write_doc(docs, "zeta.md", f"# Old packing\n\n{text}\n", doc_id="zeta", effective_from="2025-01-01",
              effective_to="2026-01-01")  # fmt: skip
    write_doc(docs, "epsilon.md", f"# Padding\n\nFragile items get {word} padding on request.\n", doc_id="epsilon")
    write_doc(docs, "returns.md", RETURNS)
    assert service.sync().failed == {}
    in_force = {("alpha", "global", 2), ("gamma", "EU", 1), ("epsilon", "global", 1), ("returns", "global", 1)}

    body = {"k": 50, "region": "EU", "doc_types": ["policy"], "min_score": -1}
    hybrid = service.query(word, mode="hybrid", **body)["results"]
    assert {(r["doc"]["doc_id"], r["doc"]["region"], r["doc"]["version"]) for r in hybrid} == in_force
    assert [r["doc"]["doc_id"] for r in hybrid if word in r["text"]] == ["epsilon"]
    assert rank_of(hybrid, word) == 0
    vector = service.query(word, mode="vector", **body)["results"]
    assert {r["chunk_id"] for r in hybrid} == {r["chunk_id"] for r in vector}, "the same chunks, ranked otherwise"
    # Without the filter the FAQ in force is served too: the filter, not luck, kept it out above.
    unfiltered = service.query(word, mode="hybrid", k=50, region="EU")["results"]
    assert sorted(r["doc"]["doc_id"] for r in unfiltered if word in r["text"]) == ["delta", "epsilon"]


def test_as_of_in_the_past_ranks_by_the_old_versions_words(service: Service, docs: Path) -> None:
    write_doc(docs, "b/v1.md", bundles(), doc_id="bundles", version=1, effective_from="2025-01-01")
    write_doc(docs, "b/v2.md", bundles({"QX-3771": "QX-9902"}), doc_id="bundles", version=2,
              effective_from="2026-01-01")  # fmt: skip
    write_doc(docs, "warranty.md", WARRANTY, effective_from="2024-01-01")
    assert service.sync().failed == {}
    old = next(v for v, _ in service.kb.history("bundles") if v.record.version == 1)
    assert old.record.id not in service.kb.index, "history is read back on demand, words included"

    past = service.query("QX-3771", mode="hybrid", as_of="2025-06-01")["results"]
    assert rank_of(past, "QX-3771") == 0
    assert {r["doc"]["version"] for r in past if r["doc"]["doc_id"] == "bundles"} == {1}
    assert rank_of(service.query("QX-9902", mode="hybrid", k=50, as_of="2025-06-01")["results"], "QX-9902") is None
    assert rank_of(service.query("QX-9902", mode="hybrid")["results"], "QX-9902") == 0
    assert rank_of(service.query("QX-3771", mode="hybrid", k=50)["results"], "QX-3771") is None


@pytest.mark.parametrize("explicit_version", [True, False], ids=["correction", "new-version"])
def test_after_an_edit_the_new_words_are_found_and_the_old_are_gone(
    service: Service, docs: Path, explicit_version: bool
) -> None:
    front = {"doc_id": "bundles", "doc_type": "product_spec", **({"version": 1} if explicit_version else {})}
    write_doc(docs, "bundles.md", bundles(), **front)
    write_doc(docs, "warranty.md", WARRANTY)
    service.sync()
    assert rank_of(service.query("QX-3771", mode="hybrid")["results"], "QX-3771") == 0  # the view is cached now

    write_doc(docs, "bundles.md", bundles({"QX-3771": "QX-9902"}), **front)
    assert service.sync().failed == {}
    assert rank_of(service.query("QX-9902", mode="hybrid")["results"], "QX-9902") == 0
    assert rank_of(service.query("QX-3771", mode="hybrid", k=50)["results"], "QX-3771") is None


def test_an_unknown_mode_is_a_422_with_the_error_shape(service: Service) -> None:
    response = service.http.post("/v1/query", json={"query": "returns", "mode": "fuzzy"})
    assert response.status_code == 422
    assert set(response.json()["error"]) == {"code", "message"}


@pytest.mark.slow  # runs the model itself, outside the embedder fixture
def test_kb_query_takes_a_mode(docs: Path, tmp_path: Path) -> None:
    _corpus(docs)
    folders = ["--docs", str(docs), "--data", str(tmp_path / "cli-data")]
    hybrid = CliRunner().invoke(cli, ["query", "QX-3771", *folders, "-k", "1", "--mode", "hybrid"])
    assert hybrid.exit_code == 0, hybrid.output
    assert "Bundle QX-3771 holds a jug" in hybrid.stdout
    vector = CliRunner().invoke(cli, ["query", "QX-3771", *folders, "-k", "1", "--mode", "vector"])
    assert "QX-3771" not in vector.stdout
    wrong = CliRunner().invoke(cli, ["query", "QX-3771", *folders, "--mode", "fuzzy"])
    assert wrong.exit_code == 2 and "'fuzzy' is not one of 'hybrid', 'vector'" in wrong.output


# -- the lexical index alone -----------------------------------------------------------------------------

TEXTS = {
    1: ["Opened blenders carry a restocking fee.", "Refunds reach the card in five days.", "The Blender X2 jar."],
    2: ["Restocking restocking restocking fee fee for every kettle and every blender in every store."] * 3,
    3: ["Kettle K1 bundle QX-3771 holds a jug.", "Blender X2 warranty lasts two years; the fee is waived."],
    4: ["A restocking fee applies to opened kettles only.", "Kettle K2 ships free."],
}
QUESTIONS = ["restocking fee", "blender x2 jar", "QX-3771 kettle", "refunds of opened kettles", "warranty years"]


def reference(texts: list[str], question: str) -> np.ndarray:
    """bm25s (Lucene variant, its own tokenizer) over exactly these texts: the scores a view must give."""
    stemmer = Stemmer.Stemmer("english")
    model = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    model.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize([question], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)[0]
    known = [t for t in tokens if t in model.vocab_dict]
    return np.asarray(model.get_scores(known)) if known else np.zeros(len(texts))


def assert_view_matches(index: LexicalIndex, version_ids: list[int]) -> None:
    view = index.view(version_ids)
    texts = [t for vid in version_ids for t in TEXTS[vid]]
    for question in QUESTIONS:
        got, _ = view.scores(index.vocabulary.terms(question))
        np.testing.assert_allclose(got, reference(texts, question), rtol=1e-5, atol=1e-6, err_msg=question)


def test_a_views_bm25_counts_only_its_own_chunks_whether_merged_or_not() -> None:
    """Block 2 repeats the query words: were its counts in a view it is not part of, df and the average
    length would change and every score with them."""
    index = LexicalIndex(merge_at=10**9)
    for vid in (1, 2, 3):
        index.put(vid, TEXTS[vid])
    assert_view_matches(index, [1, 3])  # nothing merged yet
    index.merge()
    assert_view_matches(index, [1, 3])  # all from the merged segment
    index.put(4, TEXTS[4])
    index.drop(1)
    assert_view_matches(index, [3, 4])  # merged (3) beside fresh (4), with a dropped block still merged
    assert_view_matches(index, [2, 3, 4])
    index.put(2, TEXTS[2])  # put again: its merged rows are stale, its fresh rows count once
    assert_view_matches(index, [2, 3])
    index.merge()
    assert_view_matches(index, [4, 3])


def test_a_merge_starts_by_itself_once_enough_rows_are_unmerged() -> None:
    index = LexicalIndex(merge_at=4)
    index.put(1, TEXTS[1])
    index.settle()
    assert index.view([1])._segments[0][0].rows == 0, "3 rows: below merge_at, nothing merged"
    index.put(2, TEXTS[2])
    index.settle()  # 6 fresh rows against 0 merged: merged at once
    assert index.view([1, 2])._segments[0][0].rows == 6
    assert_view_matches(index, [1, 2])


def test_query_words_never_grow_the_vocabulary() -> None:
    index = LexicalIndex()
    index.put(1, TEXTS[1])
    vocabulary = index.vocabulary
    known = {*vocabulary.terms("restocking").tolist(), *vocabulary.terms("blenders").tolist()}
    size, words = len(vocabulary), len(vocabulary._word_ids)
    assert sorted(vocabulary.terms("Restocked zorblax of the blender").tolist()) == sorted(known)
    assert vocabulary.terms("the of zorblax").tolist() == []
    assert (len(vocabulary), len(vocabulary._word_ids)) == (size, words)


def test_blocks_are_counted_only_when_a_view_needs_them_or_in_the_background() -> None:
    """Counting every chunk at start-up delayed ready by seconds at 100k: a put keeps the texts, the first
    view of a block counts it, and a background pass counts the rest."""
    index = LexicalIndex(merge_at=10**9)
    for vid in (1, 2, 3):
        index.put(vid, TEXTS[vid])
    assert len(index.vocabulary) == 0, "nothing counted on put"
    assert_view_matches(index, [1])
    assert set(index._blocks) == {1}, "the view counted its own block only"
    index.drop(2)
    index.count_later()
    deadline = time.monotonic() + 10
    while index._counting or index._pending:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert set(index._blocks) == {1, 3}, "a dropped block is never counted"
    assert_view_matches(index, [1, 3])
