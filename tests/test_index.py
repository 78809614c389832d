"""The vector index: views of region chains share one resident matrix and rank exactly."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from kb.index import VectorIndex

DIM = 16


def _blocks(count: int, size: int, seed: int = 7) -> dict[int, tuple[list[str], np.ndarray, list[str]]]:
    rng = np.random.default_rng(seed)
    out = {}
    for vid in range(1, count + 1):
        vectors = rng.normal(size=(size, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        out[vid] = ([f"c{vid}-{i}" for i in range(size)], vectors, [f"chunk {i} of {vid}" for i in range(size)])
    return out


def _brute(blocks: dict[int, tuple[list[str], np.ndarray, list[str]]], versions: Collection[int],
           query: np.ndarray, k: int) -> list[str]:  # fmt: skip
    scored = [
        (float(v @ query), cid) for vid in versions for cid, v in zip(blocks[vid][0], blocks[vid][1], strict=True)
    ]
    return [cid for _, cid in sorted(scored, key=lambda s: -s[0])[:k]]


def test_chains_share_one_matrix_and_rank_exactly_through_puts_drops_and_compaction() -> None:
    blocks = _blocks(60, 100)
    index = VectorIndex(DIM, lambda ids: {vid: blocks[vid] for vid in ids})
    index.load(list(blocks))
    chains = [
        frozenset(range(1, 41)),
        frozenset([*range(1, 31), *range(41, 51)]),  # a short gap, read through
        frozenset([*range(1, 5), *range(50, 61)]),  # a long one: two ranges of the matrix
        frozenset(range(35, 61)),
    ]
    query = _blocks(1, 1, seed=99)[1][1][0]
    views = [index._view(chain) for chain in chains]
    assert all(view.matrix is views[0].matrix for view in views), "no chain copies the vectors it serves"
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
