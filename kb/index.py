"""Exact top-k over exactly the chunks in force.

Vectors are held per version (a block). A query ranks one *view*: the blocks of the versions the
timeline resolved for its region chain and moment, stacked into one matrix, so the cost follows the
number of chunks in force on that chain and not the length of history. A view is cached until the set
of versions changes (an ingest, or the next validity boundary). Ranking is a brute-force dot product
on normalised vectors: recall is 1.0 by construction, which no filtered ANN query can promise.

Hybrid search (``text`` given) scores every row of the view by a convex combination of its cosine and its
BM25 over the same rows (kb/lexical.py, statistics of the view's chunks only), the BM25 divided by the most the
query's words can score so that both lie on one 0-1 scale: ``(1 - w) * cosine + w * bm25 / attainable``.
Scores, not ranks, are combined: a passage the embedding ranks first keeps the lead its cosine earned unless
the words of another passage match the question clearly better, and the score a hit carries is the number
the ranking used (its cosine is kept beside it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from kb.lexical import Lexical, LexicalIndex

Loader = Callable[[Collection[int]], dict[int, tuple[list[str], np.ndarray, list[str]]]]
"""Version ids -> (chunk ids, their vectors, their texts for BM25) of each version, in chunk order."""

LEXICAL_WEIGHT = 0.4
"""The share of BM25 in a hybrid score, chosen on the development set (docs/benchmarks.md)."""


@dataclass(frozen=True)
class Hit:
    version_id: int
    chunk_id: str
    score: float
    """What the ranking used: the cosine, or the hybrid combination."""
    cosine: float


@dataclass(frozen=True)
class _Block:
    chunk_ids: list[str]
    vectors: np.ndarray


@dataclass
class _View:
    matrix: np.ndarray
    row_version: np.ndarray
    chunk_ids: list[str]
    lexical: Lexical | None = None
    """Built by the first hybrid search of the view."""


class VectorIndex:
    def __init__(self, dim: int, loader: Loader, max_views: int = 32) -> None:
        self.dim = dim
        self._loader = loader
        self._blocks: dict[int, _Block] = {}
        self._views: OrderedDict[frozenset[int], _View] = OrderedDict()
        self._max_views = max_views
        self._lock = threading.RLock()
        self._lexical = LexicalIndex()

    def __contains__(self, version_id: int) -> bool:
        return version_id in self._blocks

    def __len__(self) -> int:
        return sum(len(block.chunk_ids) for block in self._blocks.values())

    def put(self, version_id: int, chunk_ids: list[str], vectors: np.ndarray, texts: list[str]) -> None:
        """Make a version resident: its chunks' vectors, and their texts for BM25 (counted when first needed)."""
        self._put(version_id, chunk_ids, vectors, texts)
        self._lexical.settle()

    def _put(self, version_id: int, chunk_ids: list[str], vectors: np.ndarray, texts: list[str]) -> None:
        if len(texts) != len(chunk_ids):
            raise ValueError(f"version {version_id}: {len(chunk_ids)} chunks but {len(texts)} texts")
        with self._lock:
            self._lexical.put(version_id, texts)
            self._blocks[version_id] = _Block(chunk_ids, vectors.reshape(len(chunk_ids), self.dim))
            self._views.clear()

    def drop(self, version_id: int) -> None:
        with self._lock:
            if self._blocks.pop(version_id, None) is not None:
                self._lexical.drop(version_id)
                self._views.clear()

    def vectors(self, version_id: int) -> dict[str, np.ndarray]:
        """The vectors of a resident version by chunk id (empty when it is not resident)."""
        block = self._blocks.get(version_id)
        return dict(zip(block.chunk_ids, block.vectors, strict=True)) if block else {}

    def load(self, version_ids: Collection[int]) -> None:
        """Make these versions resident (e.g. history asked for by ``as_of``)."""
        absent = [vid for vid in version_ids if vid not in self._blocks]
        if absent:
            for vid, (chunk_ids, vectors, texts) in self._loader(absent).items():
                self._put(vid, chunk_ids, vectors, texts)
            self._lexical.count_later()

    def _view(self, version_ids: frozenset[int], lexical: bool = False) -> _View:
        with self._lock:
            view = self._views.get(version_ids)
            if view is not None:
                self._views.move_to_end(version_ids)
                if lexical and view.lexical is None:
                    view.lexical = self._lexical.view(sorted(version_ids))
                return view
            self.load(version_ids)
            blocks = [(vid, self._blocks[vid]) for vid in sorted(version_ids)]
            sizes = [len(block.chunk_ids) for _, block in blocks]
            matrix = (
                np.concatenate([block.vectors for _, block in blocks])
                if blocks
                else np.zeros((0, self.dim), dtype=np.float32)
            )
            view = _View(
                matrix=matrix,
                row_version=np.repeat(np.array([vid for vid, _ in blocks], dtype=np.int64), sizes),
                chunk_ids=[cid for _, block in blocks for cid in block.chunk_ids],
                lexical=self._lexical.view(sorted(version_ids)) if lexical else None,
            )
            self._views[version_ids] = view
            while len(self._views) > self._max_views:
                self._views.popitem(last=False)
            return view

    def search(
        self,
        query: np.ndarray,
        version_ids: frozenset[int],
        k: int,
        only: Collection[int] | None = None,
        text: str | None = None,
        weight: float = LEXICAL_WEIGHT,
    ) -> list[Hit]:
        """The k best chunks of ``version_ids`` (restricted to ``only`` when given), best first: by the
        query vector alone, or by its hybrid score with BM25 of ``text`` over the same chunks when given."""
        view = self._view(version_ids, lexical=text is not None)
        if not len(view.chunk_ids):
            return []
        # One BLAS thread: a matrix-vector product is memory-bound anyway, and BLAS threads left spinning
        # after it steal the cores the encoder needs next (p99 x4 measured with the default two).
        with threadpool_limits(limits=1, user_api="blas"):
            cosines = view.matrix @ query.astype(np.float32, copy=False)
        scores = cosines
        if text is not None and view.lexical is not None:  # _view(lexical=True) built it
            bm25, attainable = view.lexical.scores(self._lexical.vocabulary.terms(text))
            scores = (1 - weight) * cosines + (weight / max(attainable, 1e-9)) * bm25
        if only is not None:
            keep = np.isin(view.row_version, np.fromiter(only, dtype=np.int64))
            scores = np.where(keep, scores, -np.inf)
        return [
            Hit(int(view.row_version[i]), view.chunk_ids[i], float(scores[i]), float(cosines[i]))
            for i in _top(scores, k)
        ]


def _top(scores: np.ndarray, n: int) -> list[int]:
    """Rows of the n highest finite scores, best first (ties by row)."""
    n = min(n, len(scores))
    top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    top = top[np.lexsort((top, -scores[top]))]
    return [int(i) for i in top if np.isfinite(scores[i])]
