"""Exact top-k over exactly the chunks in force.

Vectors are held per version (a block), every block's rows in one resident matrix (:class:`_Pool`). A
query ranks one *view*: the blocks of the versions the timeline resolved for its region chain and moment.
A view holds row numbers into the pool, not a copy of the vectors: region chains share most of their
blocks (every chain ends in ``global``), and a matrix per chain made memory grow with the number of chains
queried (2.1 GB for 10 chains at 100k in force). A query scores the few ranges of pool rows that cover its
view (one scan each, reading through short gaps) and gathers its rows' scores; start-up lays the pool out
region by region, so a chain's rows form a few long ranges. A view is cached until the set of versions
changes (an ingest, or the next validity boundary).

The pool holds the rows as int8 with a bound on each row's error (kb/quantized.py): the scan estimates every
cosine within a known interval, and the few rows that may still be among the k best are scored again with
their float32 vectors, read back from the store. Ranking is therefore the brute-force dot product on
normalised vectors: recall is 1.0 by construction, which no filtered ANN query can promise; the scan reads a
quarter of the bytes of a float32 one, and the pool takes a quarter of the memory.

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
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from kb.lexical import Lexical, LexicalIndex
from kb.quantized import Probe, Rows, candidates

Loader = Callable[[Collection[int]], dict[int, tuple[list[str], np.ndarray, list[str]]]]
"""Version ids -> (chunk ids, their vectors, their texts for BM25) of each version, in chunk order."""

Exact = Callable[[Sequence[str]], np.ndarray]
"""Chunk ids -> their float32 vectors, in order (the store's): what the few candidates of a scan are scored with."""

_BULK = 64
"""A load of this many versions or more (start-up) counts their BM25 terms in the background at once."""

_LOAD_BATCH = 4096
"""Versions read back at once: start-up's float32 vectors are then held a batch at a time, not all at once
beside their int8 rows (1.46 GB at 1M chunks)."""

_GAP = 1024
"""Rows of other chains (384 KB of int8 at 384 dimensions) read through rather than starting another scan."""

LEXICAL_WEIGHT = 0.4
"""The share of BM25 in a hybrid score, chosen on the development set (docs/benchmarks.md)."""


@dataclass(frozen=True)
class Hit:
    version_id: int
    chunk_id: str
    score: float
    """What the ranking used: the cosine, or the hybrid combination."""
    cosine: float


@dataclass
class _Block:
    chunk_ids: list[str]
    start: int
    """Its first row in the pool."""


class _Pool:
    """The rows of every resident block, one range each, quantised (kb/quantized.py) in one set shared by all
    views.

    Rows are only appended: a dropped block leaves dead rows until a compaction copies the live ones into a
    new set (when they outnumber the live ones). Growing or compacting replaces the set, so a view keeps the
    rows it was built on and stays correct while another thread writes.
    """

    def __init__(self, dim: int) -> None:
        self.rows = Rows.empty(0, dim)
        self.used = 0
        self.live = 0

    def add(self, vectors: list[np.ndarray]) -> list[int]:
        """Append these blocks' rows; their first rows."""
        total = sum(len(v) for v in vectors)
        if self.used + total > len(self.rows):
            self.rows = self.rows.resized(max(self.used + total, len(self.rows) * 5 // 4), self.used)
        starts = []
        for block in vectors:
            starts.append(self.used)
            self.rows.write(self.used, Rows.of(block))
            self.used += len(block)
        self.live += total
        return starts

    def compact(self, blocks: dict[int, _Block]) -> bool:
        """Copy the live rows into a new set when dead rows outnumber them; True when it did."""
        if self.used - self.live <= max(self.live, 4096):
            return False
        rows = Rows.empty(self.live, self.rows.codes.shape[1])
        at = 0
        for block in sorted(blocks.values(), key=lambda b: b.start):
            n = len(block.chunk_ids)
            rows.write(at, self.rows.take(block.start, block.start + n))
            block.start, at = at, at + n
        self.rows, self.used = rows, at
        return True


@dataclass
class _View:
    rows: Rows
    """The pool's rows when the view was built."""
    spans: list[tuple[int, int]]
    """Ranges of its rows that cover the view's, scanned one at a time, in order."""
    local: np.ndarray
    """Each view row's place in the spans' scores laid end to end."""
    row_version: np.ndarray
    chunk_ids: list[str]
    error: float
    norm: float
    """The largest error and norm of its rows' int8 forms: one bound for every estimate of a scan."""
    lexical: Lexical | None = None
    """Built by the first hybrid search of the view."""

    def pool_rows(self, view_rows: np.ndarray) -> np.ndarray:
        """The pool rows of these view rows."""
        lows, highs = np.array(self.spans, dtype=np.int64).reshape(-1, 2).T
        offsets = np.cumsum(highs - lows) - (highs - lows)
        places = self.local[view_rows]
        span = np.searchsorted(offsets, places, side="right") - 1
        return lows[span] + places - offsets[span]


class VectorIndex:
    def __init__(self, dim: int, loader: Loader, exact: Exact, max_views: int = 32) -> None:
        self.dim = dim
        self._loader = loader
        self._exact = exact
        self._blocks: dict[int, _Block] = {}
        self._pool = _Pool(dim)
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
        self._put({version_id: (chunk_ids, vectors, texts)})
        self._lexical.settle()

    def _put(self, versions: dict[int, tuple[list[str], np.ndarray, list[str]]]) -> None:
        for version_id, (chunk_ids, _, texts) in versions.items():
            if len(texts) != len(chunk_ids):
                raise ValueError(f"version {version_id}: {len(chunk_ids)} chunks but {len(texts)} texts")
        with self._lock:
            for version_id in versions:
                self._drop(version_id)
            vectors = [v.reshape(len(ids), self.dim) for ids, v, _ in versions.values()]
            starts = self._pool.add(vectors)
            for (version_id, (chunk_ids, _, texts)), start in zip(versions.items(), starts, strict=True):
                self._lexical.put(version_id, texts)
                self._blocks[version_id] = _Block(chunk_ids, start)
            self._views.clear()

    def drop(self, version_id: int) -> None:
        with self._lock:
            if self._drop(version_id):
                self._pool.compact(self._blocks)
                self._views.clear()

    def _drop(self, version_id: int) -> bool:
        block = self._blocks.pop(version_id, None)
        if block is None:
            return False
        self._pool.live -= len(block.chunk_ids)
        self._lexical.drop(version_id)
        return True

    def vectors(self, version_id: int) -> dict[str, np.ndarray]:
        """The float32 vectors of a resident version by chunk id (empty when it is not resident)."""
        with self._lock:
            block = self._blocks.get(version_id)
        if block is None or not block.chunk_ids:
            return {}
        return dict(zip(block.chunk_ids, self._exact(block.chunk_ids), strict=True))

    def load(self, version_ids: Collection[int]) -> None:
        """Make these versions resident (e.g. history asked for by ``as_of``)."""
        absent = [vid for vid in version_ids if vid not in self._blocks]
        for start in range(0, len(absent), _LOAD_BATCH):
            self._put(self._loader(absent[start : start + _LOAD_BATCH]))
        if len(absent) >= _BULK:
            self._lexical.count_later()

    def _view(self, version_ids: frozenset[int], lexical: bool = False) -> _View:
        view = self._resident_view(version_ids, lexical)
        while view is None:
            # History is read from SQLite and Chroma outside the lock, so that other searches need not wait for
            # it; a version a write dropped meanwhile is simply read again.
            self.load(version_ids)
            view = self._resident_view(version_ids, lexical)
        return view

    def _resident_view(self, version_ids: frozenset[int], lexical: bool) -> _View | None:
        """The view of these versions, kept or made now; None when one of them is not resident."""
        with self._lock:
            view = self._views.get(version_ids)
            if view is not None:
                self._views.move_to_end(version_ids)
                if lexical and view.lexical is None:
                    view.lexical = self._lexical.view(sorted(version_ids))
                return view
            if not all(vid in self._blocks for vid in version_ids):
                return None
            blocks = [(vid, self._blocks[vid]) for vid in sorted(version_ids)]
            sizes = np.array([len(block.chunk_ids) for _, block in blocks], dtype=np.int64)
            starts = np.array([block.start for _, block in blocks], dtype=np.int64)
            rows = np.repeat(starts - (np.cumsum(sizes) - sizes), sizes) + np.arange(int(sizes.sum()))
            spans, local = _spans(rows)
            pool = self._pool.rows
            view = _View(
                rows=pool,
                spans=spans,
                local=local,
                row_version=np.repeat(np.array([vid for vid, _ in blocks], dtype=np.int64), sizes),
                chunk_ids=[cid for _, block in blocks for cid in block.chunk_ids],
                error=float(pool.error[rows].max(initial=0.0)),
                norm=float(pool.norm[rows].max(initial=0.0)),
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
        if not len(view.chunk_ids) or k <= 0:
            return []
        probe = Probe(query)
        share, lexical = 1.0, np.zeros(len(view.chunk_ids), np.float32)
        if text is not None and view.lexical is not None:  # _view(lexical=True) built it
            bm25, attainable = view.lexical.scores(self._lexical.vocabulary.terms(text))
            share, lexical = 1 - weight, ((weight / max(attainable, 1e-9)) * bm25).astype(np.float32)
        scores = share * probe.scan(view.rows, view.spans)[view.local] + lexical
        if only is not None:
            keep = np.isin(view.row_version, np.fromiter(only, dtype=np.int64))
            scores = np.where(keep, scores, -np.inf)
        # Three passes, each over fewer rows with a tighter bound: the int8 scan of every row; q·x̂ in float32
        # for the rows it left; the float32 vectors, from the store, for the rows left after that.
        rows = candidates(scores, share * probe.slack(view.error, view.norm), k)
        refined, bounds = probe.refine(view.rows, view.pool_rows(rows))
        rows = rows[candidates(share * refined + lexical[rows], share * bounds, k)]
        if not len(rows):
            return []
        # Not through BLAS: for more than a few dozen rows it starts threads, which then spin and steal the cores
        # the encoder needs next (p99 x4 measured), and limiting it costs more than this product.
        exact = np.einsum("ij,j->i", self._exact([view.chunk_ids[i] for i in rows]), probe.vector)
        final = share * exact + lexical[rows]
        return [
            Hit(int(view.row_version[rows[i]]), view.chunk_ids[rows[i]], float(final[i]), float(exact[i]))
            for i in _top(final, k)
        ]


def _spans(rows: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Pool ranges covering ``rows``, and each row's place in them laid end to end. Gaps shorter than
    :data:`_GAP` rows are scored rather than split on: reading them costs less than another product."""
    if not len(rows):
        return [(0, 0)], rows
    ordered = np.sort(rows)
    cuts = np.flatnonzero(np.diff(ordered) > _GAP) + 1
    lows = ordered[np.concatenate(([0], cuts))]
    highs = ordered[np.concatenate((cuts - 1, [len(ordered) - 1]))] + 1
    offsets = np.cumsum(highs - lows) - (highs - lows)
    span = np.searchsorted(lows, rows, side="right") - 1
    return [(int(lo), int(hi)) for lo, hi in zip(lows, highs, strict=True)], offsets[span] + rows - lows[span]


def _top(scores: np.ndarray, n: int) -> list[int]:
    """Rows of the n highest finite scores, best first, ties by row (also at the n-th place: every row tied
    there is sorted, not whichever a partition happened to pick)."""
    n = min(n, len(scores))
    if n < len(scores):
        nth = np.partition(scores, len(scores) - n)[len(scores) - n]
        top = np.flatnonzero(scores >= nth)
    else:
        top = np.arange(len(scores))
    top = top[np.lexsort((top, -scores[top]))][:n]
    return [int(i) for i in top if np.isfinite(scores[i])]
