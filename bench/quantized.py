"""The index's int8 rows against float32 ones: exactness, rows read back, scan time and memory.

1. Real vectors: the sections of bench/corpus.py's generated corpus and its questions, embedded with kb's
   encoder (the one the settings pick). Each question is searched through ``VectorIndex`` over every section,
   by vector and hybrid. A vector answer must be the float32 brute-force ranking; a hybrid answer must be the
   top of the index's answer asked for every row (nothing is ruled out then, every row is scored in float32).
   Printed: the rows read back from the store in float32 per search, against the rows searched.
2. Scan: ``--rows`` random unit vectors (500k: one region chain of the 1M store), the int8 scan
   (``Probe.scan``) against numpy's float32 matrix-vector product on one thread (the reference: what the index
   did before), median of 15 each, and the bytes a row takes in each.

    python bench/quantized.py              # 1,500 documents, 500k rows
    python bench/quantized.py --smoke      # seconds, for CI
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hybrid_index import _corpus  # noqa: E402
from kb.embedder import load_embedder  # noqa: E402
from kb.index import VectorIndex  # noqa: E402
from kb.quantized import Probe, Rows  # noqa: E402

DIM = 384


class _Reads:
    """The store's float32 vectors by chunk id, counting the rows the index reads back."""

    def __init__(self, by_id: dict[str, np.ndarray]) -> None:
        self.by_id = by_id
        self.rows = 0

    def __call__(self, ids: Sequence[str]) -> np.ndarray:
        self.rows += len(ids)
        return np.stack([self.by_id[cid] for cid in ids])


def exactness(chunks: int, k: int) -> None:
    questions, blocks = _corpus(chunks)
    embedder = load_embedder()
    texts = [(vid, i, text) for vid, block in blocks.items() for i, text in enumerate(block)]
    vectors = embedder.encode([text for _, _, text in texts])
    ids = [f"{vid}-{i}" for vid, i, _ in texts]
    reads = _Reads(dict(zip(ids, vectors, strict=True)))
    index = VectorIndex(embedder.dim, lambda _: {}, reads)
    start = 0
    for vid, block in blocks.items():
        index.put(vid, ids[start : start + len(block)], vectors[start : start + len(block)], block)
        start += len(block)
    every = frozenset(blocks)
    asked = [q.text for q in questions]
    queries = embedder.encode_queries(asked)
    wrong, read = 0, {"vector": [], "hybrid": []}
    for question, query in zip(asked, queries, strict=True):
        # Row by row in one order (einsum, as the index's float32 pass): a BLAS product rounds identical rows
        # (a section two documents share) differently by their place in the matrix, so its ties are noise.
        order = np.argsort(-np.einsum("ij,j->i", vectors, query), kind="stable")[:k]
        for mode, text in (("vector", None), ("hybrid", question)):
            reads.rows = 0
            hits = index.search(query, every, k, text=text)
            read[mode].append(reads.rows)
            expected = [ids[i] for i in order] if text is None else [h.chunk_id for h in index.search(
                query, every, len(ids), text=text)[:k]]  # fmt: skip
            wrong += [h.chunk_id for h in hits] != expected
    print(f"real vectors: {len(ids):,} sections of {len(blocks):,} documents, {len(asked):,} questions, k={k} "
          f"({embedder.model_id})")  # fmt: skip
    for mode, rows in read.items():
        print(f"  {mode:6}: rows read back in float32 per search, median {statistics.median(rows):.0f}, "
              f"p90 {np.percentile(rows, 90):.0f}, max {max(rows)} of {len(ids):,}")  # fmt: skip
    print(f"  answers differing from the float32 ranking: {wrong} of {2 * len(asked)}")
    if wrong:
        raise SystemExit("the int8 index changed an answer")


def scan(rows: int) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((rows, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query = vectors[0] + rng.standard_normal(DIM).astype(np.float32)
    coded = Rows.of(vectors)
    probe = Probe(query / np.linalg.norm(query))
    from threadpoolctl import threadpool_limits  # numpy's BLAS on one thread, as the index ran it

    def median_ms(action: object) -> float:
        samples = []
        for _ in range(15):
            started = time.perf_counter()
            action()  # type: ignore[operator]
            samples.append(time.perf_counter() - started)
        return statistics.median(samples) * 1000

    with threadpool_limits(1, "blas"):
        reference = median_ms(lambda: vectors @ probe.vector)
    int8 = median_ms(lambda: probe.scan(coded, [(0, rows)]))
    per_row = coded.codes.itemsize * DIM + coded.scale.itemsize * 3
    print(f"scan of {rows:,} rows: int8 {int8:.2f} ms, float32 (numpy, one thread) {reference:.2f} ms: "
          f"{reference / int8:.1f}x; {per_row} bytes a row against {vectors.itemsize * DIM}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=6000, help="corpus sections to embed")
    parser.add_argument("--rows", type=int, default=500_000, help="rows of the scan timing")
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.chunks, args.rows = 200, 20_000
    exactness(args.chunks, args.k)
    scan(args.rows)


if __name__ == "__main__":
    main()
