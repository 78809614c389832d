"""The local vector cache: it serves exactly the vectors it was given, and is never served when it cannot be
trusted (a crash mid-write, a truncated or altered file, another encoder or collection)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import Clock, write_doc

from kb.embedder import Embedder
from kb.ingest.pipeline import sync
from kb.knowledge import KnowledgeBase
from kb.retrieval import QueryRequest, RetrievalMode
from kb.settings import Settings
from kb.vectorcache import MANIFEST, Signature, VectorCache

SIGNATURE = Signature("model-a", 8, "collection-1")


def _ids(n: int, salt: str = "") -> list[str]:
    return [hashlib.sha256(f"{salt}{i}".encode()).hexdigest()[:32] for i in range(n)]


def _vectors(n: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)


def _written(folder: Path, n: int = 50) -> tuple[list[str], np.ndarray]:
    ids, vectors = _ids(n), _vectors(n)
    cache = VectorCache(folder, SIGNATURE)
    cache.add(ids, vectors)
    cache.flush()
    return ids, vectors


def test_rows_come_back_by_id_in_any_order_pending_or_written_and_across_opens(tmp_path: Path) -> None:
    ids, vectors = _ids(300), _vectors(300)
    cache = VectorCache(tmp_path, SIGNATURE, flush_at=100)
    cache.add(ids[:50], vectors[:50])  # pending
    got, found = cache.get([ids[40], ids[3], "not-a-hex-id", _ids(1, "x")[0]])
    assert found.tolist() == [True, True, False, False]
    assert np.array_equal(got[:2], vectors[[40, 3]]) and not got[2:].any()
    cache.add(ids, vectors)  # crosses flush_at: written, the first 50 once
    cache.add(ids[:10], vectors[:10] + 1)  # a content address's vector never changes: the first one stays
    cache.flush()
    assert len(cache) == 300
    again = VectorCache(tmp_path, SIGNATURE)
    order = [299, 0, 150, 150, 7]
    got, found = again.get([ids[i] for i in order])
    assert found.all() and np.array_equal(got, vectors[order])
    assert again.covers(ids) and not again.covers([*ids, _ids(1, "y")[0]])
    assert again.has([ids[0], "short"]).tolist() == [True, False]


def test_forget_drops_rows_and_keeps_the_others(tmp_path: Path) -> None:
    ids, vectors = _written(tmp_path)
    cache = VectorCache(tmp_path, SIGNATURE)
    cache.forget(ids[:10])
    reopened = VectorCache(tmp_path, SIGNATURE)
    assert not reopened.has(ids[:10]).any() and reopened.covers(ids[10:])
    assert np.array_equal(reopened.get(ids[10:])[0], vectors[10:])
    assert {p.name for p in tmp_path.iterdir()} == {MANIFEST, f"ids-{reopened._token}.bin",
                                                     f"vectors-{reopened._token}.f32"}  # fmt: skip


@pytest.mark.parametrize(
    "damage",
    ["truncated vectors", "truncated ids", "altered ids", "other encoder", "other collection", "garbage manifest",
     "missing file"],
)  # fmt: skip
def test_an_untrustworthy_cache_is_discarded_not_served(tmp_path: Path, damage: str) -> None:
    ids, _ = _written(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    ids_file, vectors_file = tmp_path / f"ids-{manifest['token']}.bin", tmp_path / f"vectors-{manifest['token']}.f32"
    signature = SIGNATURE
    if damage == "truncated vectors":
        vectors_file.write_bytes(vectors_file.read_bytes()[:-4])
    elif damage == "truncated ids":
        ids_file.write_bytes(ids_file.read_bytes()[:-1])
    elif damage == "altered ids":
        raw = bytearray(ids_file.read_bytes())
        raw[5] ^= 0xFF
        ids_file.write_bytes(bytes(raw))
    elif damage == "other encoder":
        signature = Signature("model-b", 8, "collection-1")
    elif damage == "other collection":
        signature = Signature("model-a", 8, "collection-2")
    elif damage == "garbage manifest":
        (tmp_path / MANIFEST).write_text("{not json")
    else:
        vectors_file.unlink()
    cache = VectorCache(tmp_path, signature)
    assert len(cache) == 0 and not cache.has(ids).any()


def test_a_crash_after_appending_rows_before_the_manifest_keeps_the_old_rows_only(tmp_path: Path) -> None:
    ids, vectors = _written(tmp_path, 20)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    # What a crash between the append and the manifest's rename leaves: rows past the count, half a row even.
    with open(tmp_path / f"vectors-{manifest['token']}.f32", "ab") as handle:
        handle.write(b"\x01" * 50)
    with open(tmp_path / f"ids-{manifest['token']}.bin", "ab") as handle:
        handle.write(b"\x02" * 16)
    cache = VectorCache(tmp_path, SIGNATURE)
    assert len(cache) == 20 and np.array_equal(cache.get(ids)[0], vectors)
    more, extra = _ids(5, "more"), _vectors(5, seed=9)
    cache.add(more, extra)
    cache.flush()  # writes over what the crash left
    reopened = VectorCache(tmp_path, SIGNATURE)
    assert np.array_equal(reopened.get([*ids, *more])[0], np.concatenate([vectors, extra]))


QUESTION = QueryRequest("How many days to return a blender?", k=3, mode=RetrievalMode.vector, min_score=-1)


def _served(kb: KnowledgeBase) -> list[str]:
    return [r.text for r in kb.query(QUESTION).results]


def test_kb_serves_the_same_from_a_good_cache_and_never_from_a_stale_or_corrupt_one(
    settings: Settings, embedder: Embedder, clock: Clock
) -> None:
    write_doc(settings.docs, "returns.md", "# Returns\n\nBlenders may be returned within 30 days.\n\n"
              "# Fees\n\nOpened items carry a 10% restocking fee.", doc_id="returns", version=1)  # fmt: skip
    write_doc(settings.docs, "warranty.md", "# Warranty\n\nThe Kettle K1 has a two-year warranty.", doc_id="warranty",
              version=1)  # fmt: skip
    kb = KnowledgeBase.open(settings, embedder, clock)
    sync(kb)
    truth = _served(kb)
    scores = [r.score for r in kb.query(QUESTION).results]
    kb.close()
    folder = settings.data / "vectors"
    assert json.loads((folder / MANIFEST).read_text())["rows"] >= 3

    # A good cache: the same answer, and start-up does not list the store.
    kb = KnowledgeBase.open(settings, embedder, clock)
    assert _served(kb) == truth and [r.score for r in kb.query(QUESTION).results] == scores
    kb.close()

    # Corrupt it: every vector row overwritten with another chunk's numbers, then the ids altered so the checksum
    # fails; and separately a truncated vector file. Each is discarded and rebuilt from Chroma.
    token = json.loads((folder / MANIFEST).read_text())["token"]
    vectors_file, ids_file = folder / f"vectors-{token}.f32", folder / f"ids-{token}.bin"
    raw = vectors_file.read_bytes()
    vectors_file.write_bytes(raw[len(raw) // 2 :] + raw[: len(raw) // 2])
    ids = bytearray(ids_file.read_bytes())
    ids[0] ^= 0x01
    ids_file.write_bytes(bytes(ids))
    kb = KnowledgeBase.open(settings, embedder, clock)
    assert _served(kb) == truth and [r.score for r in kb.query(QUESTION).results] == scores
    kb.close()
    token = json.loads((folder / MANIFEST).read_text())["token"]
    (folder / f"vectors-{token}.f32").write_bytes((folder / f"vectors-{token}.f32").read_bytes()[:-8])
    kb = KnowledgeBase.open(settings, embedder, clock)
    assert _served(kb) == truth
    kb.close()

    # A cache made for another collection (the store was rebuilt): not one of its rows is used.
    manifest = json.loads((folder / MANIFEST).read_text())
    token = manifest["token"]
    (folder / f"vectors-{token}.f32").write_bytes(bytes(len((folder / f"vectors-{token}.f32").read_bytes())))
    (folder / MANIFEST).write_text(json.dumps(manifest | {"collection": "another"}))
    kb = KnowledgeBase.open(settings, embedder, clock)
    assert _served(kb) == truth
    kb.close()


def _synced(settings: Settings, embedder: Embedder, clock: Clock, body: str) -> KnowledgeBase:
    """A kb that has ingested one returns policy with this body."""
    write_doc(settings.docs, "returns.md", body, doc_id="returns", version=1)
    kb = KnowledgeBase.open(settings, embedder, clock)
    sync(kb)
    return kb


def test_a_running_kb_answers_the_same_when_its_cache_files_are_cut_or_removed(
    settings: Settings, embedder: Embedder, clock: Clock
) -> None:
    """Every query reads its last few rows back in float32 from the cache (kb/index.py); a cache file cut short or
    gone under a running kb sends those reads to Chroma, and the answer does not change."""
    kb = _synced(settings, embedder, clock, "# Returns\n\nBlenders may be returned within 30 days.\n\n"
                 "# Fees\n\nOpened items carry a 10% restocking fee.")  # fmt: skip
    try:
        kb.store._cache.flush()
        answer = [(r.text, r.score) for r in kb.query(QUESTION).results]
        folder = settings.data / "vectors"
        vectors_file = folder / f"vectors-{json.loads((folder / MANIFEST).read_text())['token']}.f32"
        vectors_file.write_bytes(vectors_file.read_bytes()[:100])
        assert [(r.text, r.score) for r in kb.query(QUESTION).results] == answer
        vectors_file.unlink()
        assert [(r.text, r.score) for r in kb.query(QUESTION).results] == answer
    finally:
        kb.close()


def test_a_vector_the_store_lost_is_stored_again_once_the_cache_no_longer_vouches_for_it(
    settings: Settings, embedder: Embedder, clock: Clock
) -> None:
    kb = _synced(settings, embedder, clock, "# Returns\n\nBlenders may be returned within 30 days.")
    truth = _served(kb)
    lost = kb.query(QUESTION).results[0].chunk_id
    kb.store._collection.delete(ids=[lost])  # Chroma lost it behind kb's back, and the cache was wiped
    kb.close()
    shutil.rmtree(settings.data / "vectors")
    kb = KnowledgeBase.open(settings, embedder, clock)
    assert kb.store.ids() >= {lost} and _served(kb) == truth
    kb.close()


def test_start_up_skips_the_store_check_only_while_the_cache_holds_exactly_the_ledgers_ids(
    settings: Settings, embedder: Embedder, clock: Clock
) -> None:
    kb = _synced(settings, embedder, clock, "# Returns\n\nBlenders may be returned within 30 days.")
    wanted = kb.ledger.all_chunk_ids()
    assert kb.store.holds_exactly(wanted)
    assert not kb.store.holds_exactly(wanted | {_ids(1, "other")[0]})
    kb.store.add(_ids(1, "stray"), np.zeros((1, embedder.dim), dtype=np.float32), ["stray"])  # an ingest died here
    assert not kb.store.holds_exactly(wanted)
    kb.close()
    kb = KnowledgeBase.open(settings, embedder, clock)  # the full check ran: the stray vector is gone
    assert kb.store.count() == len(wanted) and kb.store.holds_exactly(wanted)
    kb.close()
