"""Exact top-k over exactly the chunks in force.

Vectors are held per version (a block). A query ranks one *view*: the blocks of the versions the
timeline resolved for its region chain and moment, stacked into one matrix, so the cost follows the
number of chunks in force on that chain and not the length of history. A view is cached until the set
of versions changes (an ingest, or the next validity boundary). Ranking is a brute-force dot product
on normalised vectors: recall is 1.0 by construction, which no filtered ANN query can promise.

Hybrid search (``text`` given) fuses that ranking with BM25 over the same view's rows (kb/lexical.py,
statistics of the view's chunks only) by reciprocal rank fusion: each chunk scores ``sum 1 / (60 + rank)``
over the two rankings' top ``max(50, 4k)``. A hit's score stays its cosine similarity; only the order is
fused, and a chunk no query word matches keeps its vector rank among the others.
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

RRF_K = 60
CANDIDATES = 50


@dataclass(frozen=True)
class Hit:
    version_id: int
    ord: int
    chunk_id: str
    score: float


@dataclass(frozen=True)
class _Block:
    chunk_ids: list[str]
    vectors: np.ndarray


@dataclass
class _View:
    matrix: np.ndarray
    row_version: np.ndarray
    row_ord: np.ndarray
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
        """Make a version resident: its chunks' vectors, and their texts counted for BM25."""
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
            self._lexical.settle()

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
                row_ord=np.concatenate([np.arange(n) for n in sizes]) if sizes else np.zeros(0, np.int64),
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
    ) -> list[Hit]:
        """The k best chunks of ``version_ids`` (restricted to ``only`` when given), best first: by the
        query vector alone, or fused with BM25 of ``text`` over the same chunks when it is given."""
        view = self._view(version_ids, lexical=text is not None)
        if not len(view.chunk_ids):
            return []
        # One BLAS thread: a matrix-vector product is memory-bound anyway, and BLAS threads left spinning
        # after it steal the cores the encoder needs next (p99 x4 measured with the default two).
        with threadpool_limits(limits=1, user_api="blas"):
            scores = view.matrix @ query.astype(np.float32, copy=False)
        keep = None
        if only is not None:
            keep = np.isin(view.row_version, np.fromiter(only, dtype=np.int64))
            scores = np.where(keep, scores, -np.inf)
        if text is not None and view.lexical is not None:  # _view(lexical=True) built it
            bm25 = view.lexical.scores(self._lexical.vocabulary.terms(text))
            bm25 = np.where((bm25 > 0) & (True if keep is None else keep), bm25, -np.inf)
            n = max(CANDIDATES, 4 * k)
            top = _fuse(_top(scores, n), _top(bm25, n), scores, bm25)[:k]
        else:
            top = _top(scores, k)
        return [Hit(int(view.row_version[i]), int(view.row_ord[i]), view.chunk_ids[i], float(scores[i])) for i in top]


def _top(scores: np.ndarray, n: int) -> list[int]:
    """Rows of the n highest finite scores, best first (ties by row)."""
    n = min(n, len(scores))
    top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    top = top[np.lexsort((top, -scores[top]))]
    return [int(i) for i in top if np.isfinite(scores[i])]


def _fuse(vector: list[int], lexical: list[int], scores: np.ndarray, bm25: np.ndarray) -> list[int]:
    """Reciprocal rank fusion of two rankings of rows.

    Chunks with equal BM25 scores share the mean of their positions (fractional ranking): the words cannot
    tell them apart, so an arbitrary order among them must not outvote the vector (three chunks matching
    "rule number" equally would otherwise reorder the vector's answer), while one chunk that matches more
    words than a crowd of equals still stands out. Two chunks tie when the rankings swap them; the words
    decide then, as they are what the lexical ranking is there for; remaining ties go to the higher cosine.
    """
    by_words: dict[int, float] = {}
    start = 0
    while start < len(lexical):
        end = start
        while end + 1 < len(lexical) and bm25[lexical[end + 1]] == bm25[lexical[start]]:
            end += 1
        for row in lexical[start : end + 1]:
            by_words[row] = (start + end) / 2 + 1
        start = end + 1
    fused: dict[int, float] = {}
    for rank, row in enumerate(vector, 1):
        fused[row] = 1.0 / (RRF_K + rank)
    for row, mean_rank in by_words.items():
        fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + mean_rank)
    return sorted(fused, key=lambda row: (-fused[row], by_words.get(row, len(lexical) + 1), -scores[row], row))
