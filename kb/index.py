"""Exact top-k over exactly the chunks in force.

Vectors are held per version (a block). A query ranks one *view*: the blocks of the versions the
timeline resolved for its region chain and moment, stacked into one matrix, so the cost follows the
number of chunks in force on that chain and not the length of history. A view is cached until the set
of versions changes (an ingest, or the next validity boundary). Ranking is a brute-force dot product
on normalised vectors: recall is 1.0 by construction, which no filtered ANN query can promise.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

Loader = Callable[[Collection[int]], dict[int, tuple[list[str], np.ndarray]]]


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


@dataclass(frozen=True)
class _View:
    matrix: np.ndarray
    row_version: np.ndarray
    row_ord: np.ndarray
    chunk_ids: list[str]


class VectorIndex:
    def __init__(self, dim: int, loader: Loader, max_views: int = 32) -> None:
        self.dim = dim
        self._loader = loader
        self._blocks: dict[int, _Block] = {}
        self._views: OrderedDict[frozenset[int], _View] = OrderedDict()
        self._max_views = max_views
        self._lock = threading.RLock()

    def __contains__(self, version_id: int) -> bool:
        return version_id in self._blocks

    def __len__(self) -> int:
        return sum(len(block.chunk_ids) for block in self._blocks.values())

    def put(self, version_id: int, chunk_ids: list[str], vectors: np.ndarray) -> None:
        with self._lock:
            self._blocks[version_id] = _Block(chunk_ids, vectors.reshape(len(chunk_ids), self.dim))
            self._views.clear()

    def drop(self, version_id: int) -> None:
        with self._lock:
            if self._blocks.pop(version_id, None) is not None:
                self._views.clear()

    def vectors(self, version_id: int) -> dict[str, np.ndarray]:
        """The vectors of a resident version by chunk id (empty when it is not resident)."""
        block = self._blocks.get(version_id)
        return dict(zip(block.chunk_ids, block.vectors, strict=True)) if block else {}

    def load(self, version_ids: Collection[int]) -> None:
        """Make these versions resident (e.g. history asked for by ``as_of``)."""
        absent = [vid for vid in version_ids if vid not in self._blocks]
        if absent:
            for vid, (chunk_ids, vectors) in self._loader(absent).items():
                self.put(vid, chunk_ids, vectors)

    def _view(self, version_ids: frozenset[int]) -> _View:
        with self._lock:
            view = self._views.get(version_ids)
            if view is not None:
                self._views.move_to_end(version_ids)
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
            )
            self._views[version_ids] = view
            while len(self._views) > self._max_views:
                self._views.popitem(last=False)
            return view

    def search(
        self, query: np.ndarray, version_ids: frozenset[int], k: int, only: Collection[int] | None = None
    ) -> list[Hit]:
        """The k best chunks of ``version_ids`` (restricted to ``only`` when given), best first."""
        view = self._view(version_ids)
        if not len(view.chunk_ids):
            return []
        # One BLAS thread: a matrix-vector product is memory-bound anyway, and BLAS threads left spinning
        # after it steal the cores the encoder needs next (p99 x4 measured with the default two).
        with threadpool_limits(limits=1, user_api="blas"):
            scores = view.matrix @ query.astype(np.float32, copy=False)
        if only is not None:
            keep = np.isin(view.row_version, np.fromiter(only, dtype=np.int64))
            scores = np.where(keep, scores, -np.inf)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [
            Hit(int(view.row_version[i]), int(view.row_ord[i]), view.chunk_ids[i], float(scores[i]))
            for i in top
            if np.isfinite(scores[i])
        ]
