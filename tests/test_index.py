"""The vector index: views of region chains share one resident set of int8 rows and rank exactly."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from kb.index import VectorIndex
from kb.quantized import Probe, Rows

DIM = 16
Blocks = dict[int, tuple[list[str], np.ndarray, list[str]]]


class _Store:
    """The float32 vectors by chunk id, as the store keeps them; counts the rows a search reads back."""

    def __init__(self, blocks: Blocks) -> None:
        self.blocks = blocks
        self.read = 0

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        by_id = _by_id(self.blocks)
        self.read += len(ids)
        return np.stack([by_id[cid] for cid in ids])


def _by_id(blocks: Blocks) -> dict[str, np.ndarray]:
    return {cid: v for chunk_ids, vectors, _ in blocks.values() for cid, v in zip(chunk_ids, vectors, strict=True)}


def _index_of(blocks: Blocks) -> tuple[VectorIndex, _Store]:
    store = _Store(blocks)
    return VectorIndex(DIM, lambda ids: {vid: store.blocks[vid] for vid in ids}, store.vectors), store


def _blocks(count: int, size: int, seed: int = 7) -> Blocks:
    rng = np.random.default_rng(seed)
    out = {}
    for vid in range(1, count + 1):
        vectors = rng.normal(size=(size, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        out[vid] = ([f"c{vid}-{i}" for i in range(size)], vectors, [f"chunk {i} of {vid}" for i in range(size)])
    return out


def _brute(blocks: Blocks, versions: Collection[int], query: np.ndarray, k: int) -> list[str]:
    scored = [
        (float(v @ query), cid) for vid in versions for cid, v in zip(blocks[vid][0], blocks[vid][1], strict=True)
    ]
    return [cid for _, cid in sorted(scored, key=lambda s: -s[0])[:k]]


def test_chains_share_one_set_of_rows_and_rank_exactly_through_puts_drops_and_compaction() -> None:
    blocks = _blocks(60, 100)
    index, _ = _index_of(blocks)
    index.load(list(blocks))
    chains = [
        frozenset(range(1, 41)),
        frozenset([*range(1, 31), *range(41, 51)]),  # a short gap, read through
        frozenset([*range(1, 5), *range(50, 61)]),  # a long one: two ranges of the matrix
        frozenset(range(35, 61)),
    ]
    query = _blocks(1, 1, seed=99)[1][1][0]
    views = [index._view(chain) for chain in chains]
    assert all(view.rows is views[0].rows for view in views), "no chain copies the vectors it serves"
    assert [len(view.spans) for view in views] == [1, 1, 2, 1]
    for chain in chains:
        assert [h.chunk_id for h in index.search(query, chain, 10)] == _brute(blocks, chain, query, 10)

    for vid in range(1, 56):  # once dead rows outnumber live ones and 4,096, the pool compacts
        index.drop(vid)
    assert index._pool.used < 2_000, "dead rows were compacted away"
    blocks[3] = _blocks(1, 100, seed=5)[1]
    index.put(3, *blocks[3])  # put again after the compaction
    chain = frozenset([3, *range(56, 61)])
    assert [h.chunk_id for h in index.search(query, chain, 20)] == _brute(blocks, chain, query, 20)
    assert index.vectors(57)["c57-4"].tolist() == blocks[57][1][4].tolist()


def test_the_int8_estimates_never_stray_outside_their_bounds() -> None:
    """Rows of any norm (zero, tiny, large, one spike) and queries alike: the float32 cosine lies within the
    bound of the scan's estimate, and within the tighter bound of the refined one."""
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(400, DIM)).astype(np.float32) * rng.choice([1e-6, 0.1, 1.0, 40.0], size=(400, 1))
    vectors[0] = 0.0
    vectors[1] = np.eye(DIM, dtype=np.float32)[0] * 3 + 1e-3
    vectors = vectors.astype(np.float32)
    rows = Rows.of(vectors)
    for query in [*rng.normal(size=(50, DIM)).astype(np.float32), np.zeros(DIM, np.float32)]:
        probe, truth = Probe(query), vectors @ query
        assert (np.abs(truth - probe.scan(rows, [(0, 150), (150, 400)])) <= probe.slack(rows.error, rows.norm)).all()
        refined, bounds = probe.refine(rows, np.arange(400))
        assert (np.abs(truth - refined) <= bounds).all()
        assert (bounds <= probe.slack(rows.error, rows.norm)).all()


def test_near_ties_finer_than_int8_still_rank_as_float32_does_and_few_rows_are_read_back() -> None:
    """Rows closer together than an int8 step (1/127 of the largest coordinate) differ only in their float32
    vectors: the ranking must still be the float32 one, by vector, hybrid and restricted to some versions. On
    spread vectors a search reads back a small share of the view."""
    rng = np.random.default_rng(11)
    blocks = _blocks(40, 50, seed=4)
    base = blocks[1][1][0]
    for vid in range(2, 12):  # one near-copy of the same vector in each of ten versions
        jitter = base + rng.normal(scale=1e-4, size=DIM).astype(np.float32)
        blocks[vid][1][7] = jitter / np.linalg.norm(jitter)
    index, store = _index_of(blocks)
    every = frozenset(blocks)
    index.load(every)
    # Near copies then differ by about 3e-5 in cosine: far under the int8 error (~4e-3), far over float32's.
    query = base + rng.normal(scale=0.3, size=DIM).astype(np.float32)
    assert [h.chunk_id for h in index.search(query, every, 8)] == _brute(blocks, every, query, 8)

    hits = index.search(query, every, 5, only=range(5, 20))
    assert [h.chunk_id for h in hits] == _brute(blocks, range(5, 20), query, 5)
    fewer = index.search(query, every, 80, only={3})  # fewer rows allowed than asked for: all of them
    assert [h.chunk_id for h in fewer] == _brute(blocks, {3}, query, 80)
    index.put(99, [], np.zeros((0, DIM), np.float32), [])  # a version without chunks
    assert index.search(query, frozenset({99}), 5) == []
    assert [h.chunk_id for h in index.search(query, every | {99}, 3)] == _brute(blocks, every, query, 3)
    # Asked for every row, nothing is ruled out and every row is scored in float32: the top of that is the truth.
    everything = index.search(query, every, 40 * 50, text="chunk 7")
    hybrid = index.search(query, every, 6, text="chunk 7")
    assert [(h.chunk_id, h.score) for h in hybrid] == [(h.chunk_id, h.score) for h in everything[:6]]
    vectors = _by_id(blocks)
    assert all(abs(h.cosine - float(vectors[h.chunk_id] @ query)) < 1e-6 for h in hybrid)

    spread = rng.normal(size=DIM).astype(np.float32)
    store.read = 0
    for _ in range(20):
        index.search(spread / np.linalg.norm(spread), every, 5)
    assert store.read / 20 < len(blocks) * 50 / 10, "most rows were ruled out by their bound"


def test_ties_at_the_last_place_go_to_the_earlier_rows() -> None:
    """Identical vectors (a section many versions share) score the same: the answer takes them in row order,
    as a stable brute-force sort does, wherever the k-th place cuts through them."""
    best, shared = _blocks(2, 1, seed=2)[1][1], _blocks(2, 1, seed=3)[2][1]
    blocks: Blocks = {vid: ([f"c{vid}"], (shared if vid <= 57 else best).copy(), ["a section"]) for vid in range(1, 61)}
    index, _ = _index_of(blocks)
    hits = index.search(best[0], frozenset(blocks), 5)
    assert [h.chunk_id for h in hits] == ["c58", "c59", "c60", "c1", "c2"]
