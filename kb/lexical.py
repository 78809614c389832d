"""BM25 over exactly the chunks of a view, from term counts kept per version.

Policy questions hinge on exact words (a SKU, "restocking fee", "Blender X2") that an embedding blurs.
The lexical ranking must see exactly the chunks the vector ranking sees, and views change with every
save, so no score is precomputed over a corpus: each version's chunks are counted once
(:class:`TermCounts`, sparse rows over one growing vocabulary), and a view computes its own BM25
statistics (chunk count, average length, and each query term's document frequency) over its rows only.

Counting is lazy: a block put keeps its texts, and they are counted when a view first needs them, or by a
background pass started after a bulk load. At 100k chunks counting takes seconds that start-up would
otherwise spend before ready; the background pass usually finishes before the first hybrid query, and a
query that comes sooner counts only the blocks of its own view.

To find a term's chunks without scanning every row, counts are also kept term-major (CSC): one large
merged segment over most resident blocks, rebuilt in the background when enough blocks were put after
it (``scipy``'s conversion releases the GIL), plus the few blocks put since, stacked when a view is
built. A view maps the merged segment's rows to its own and ignores every other row, so its answer
never depends on what else is resident (other regions, history, versions dropped since the merge).

Scoring is the Lucene variant of BM25 (k1 1.5, b 0.75), as bm25s computes it with ``method="lucene"``:
``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` times ``tf / (tf + k1 * (1 - b + b * len / avg_len))``.

Tokens: lower-cased runs of two or more letters or digits (bm25s's pattern), without Lucene's English
stop words, stemmed by PyStemmer's Snowball English stemmer (C), so "restocking" matches "restock" and a
"4471" or "x2" stays whole. bm25s itself is not used at run time: its ``index()`` precomputes corpus-wide
scores that cannot follow a view, and its tokenizer caches every word it sees, query words included, in
dictionaries shared by all threads; here only indexing grows the vocabulary.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import Stemmer
from scipy import sparse

log = logging.getLogger(__name__)

K1 = 1.5
B = 0.75

# Lucene's English stop set (the one Elasticsearch's English analyzer and bm25s's "en" list use).
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these "
    "they this to was will with".split()
)
_WORD = re.compile(r"\w{2,}")  # the same tokens as (?u)\b\w\w+\b, twice as fast


@dataclass(frozen=True)
class TermCounts:
    """The chunks of one block as sparse rows: row ``i`` holds ``terms[indptr[i]:indptr[i+1]]`` (distinct,
    ascending) with their ``counts``; ``lengths`` are the chunks' token counts without stop words."""

    indptr: np.ndarray
    terms: np.ndarray
    counts: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)


class Vocabulary:
    """Term ids of stems, shared by every block so that their rows can be stacked.

    Only :meth:`count` (indexing, serialised by the caller) adds terms; :meth:`terms` (queries, any thread)
    only reads. Stemmer objects are not thread-safe: indexing owns one, each querying thread has its own.
    """

    def __init__(self) -> None:
        # Each surface word is stemmed once; stop words map to -1.
        self._word_ids: dict[str, int] = dict.fromkeys(STOP_WORDS, -1)
        self._stem_ids: dict[str, int] = {}
        self._stemmer = Stemmer.Stemmer("english")
        self._local = threading.local()

    def __len__(self) -> int:
        return len(self._stem_ids)

    def _add(self, word: str) -> int:
        term = self._stem_ids.setdefault(self._stemmer.stemWord(word), len(self._stem_ids))
        self._word_ids[word] = term
        return term

    def count(self, texts: Sequence[str]) -> TermCounts:
        """Term counts of ``texts``, adding their new words to the vocabulary."""
        get = self._word_ids.get
        flat: list[int] = []
        sizes = np.zeros(len(texts), dtype=np.int64)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            ids = list(map(get, words))
            if None in ids:
                ids = [self._add(w) if t is None else t for w, t in zip(words, ids, strict=True)]
            flat += cast(list[int], ids)  # no None left
            sizes[row] = len(ids)
        terms = np.array(flat, dtype=np.int64)
        rows = np.repeat(np.arange(len(texts)), sizes)
        kept = terms >= 0
        terms, rows = terms[kept], rows[kept]
        # One sort of (row, term) keys counts every chunk's terms at once.
        width = max(len(self._stem_ids), 1)
        keys, counts = np.unique(rows * width + terms, return_counts=True)
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys // width, minlength=len(texts)), out=indptr[1:])
        lengths = np.bincount(rows, minlength=len(texts)).astype(np.float32)
        return TermCounts(indptr, (keys % width).astype(np.int32), counts.astype(np.float32), lengths)

    def terms(self, text: str) -> np.ndarray:
        """The distinct known term ids of a query, in the order of their first word; words that no indexed
        chunk has are dropped. The order is the query's, not the ids': ids depend on the order blocks were
        counted in, and scores are summed term by term, so this keeps a score's last bit the same."""
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            stemmer = self._local.stemmer = Stemmer.Stemmer("english")
        found: dict[int, None] = {}
        for word in _WORD.findall(text.lower()):
            term = self._word_ids.get(word)
            if term is None:
                term = self._stem_ids.get(stemmer.stemWord(word))
            if term is not None and term >= 0:
                found[term] = None
        return np.fromiter(found, dtype=np.int64, count=len(found))


class _Segment:
    """Term-major counts of some blocks, stacked in order: the rows holding term ``t``, its count in each."""

    def __init__(self, blocks: Sequence[TermCounts], n_terms: int) -> None:
        self.rows, self.n_terms = sum(len(b) for b in blocks), n_terms
        indptr = np.zeros(self.rows + 1, dtype=np.int64)
        if blocks:
            np.cumsum(np.concatenate([np.diff(b.indptr) for b in blocks]), out=indptr[1:])
        terms = np.concatenate([b.terms for b in blocks]) if blocks else np.zeros(0, np.int32)
        counts = np.concatenate([b.counts for b in blocks]) if blocks else np.zeros(0, np.float32)
        self.lengths = np.concatenate([b.lengths for b in blocks]) if blocks else np.zeros(0, np.float32)
        csc = sparse.csr_matrix((counts, terms, indptr), shape=(self.rows, n_terms)).tocsc()
        self._indptr, self._rows, self._counts = csc.indptr, csc.indices, csc.data

    def column(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        if term >= self.n_terms:
            return self._rows[:0], self._counts[:0]
        start, end = self._indptr[term], self._indptr[term + 1]
        return self._rows[start:end], self._counts[start:end]


@dataclass(frozen=True)
class _Merged:
    segment: _Segment
    version_ids: np.ndarray
    """Ascending; ``firsts`` and ``sizes`` are their first row and row count in the segment."""
    firsts: np.ndarray
    sizes: np.ndarray
    counts: dict[int, TermCounts]
    """The counts merged, to tell a block dropped or put again since."""

    @classmethod
    def of(cls, blocks: dict[int, TermCounts], n_terms: int) -> _Merged:
        ids = sorted(blocks)
        sizes = np.array([len(blocks[vid]) for vid in ids], dtype=np.int64)
        segment = _Segment([blocks[vid] for vid in ids], n_terms)
        return cls(segment, np.array(ids, dtype=np.int64), np.cumsum(sizes) - sizes, sizes, dict(blocks))


class Lexical:
    """BM25 over the rows of one view, in the order of its blocks: the merged segment's rows of its blocks
    mapped to view rows (any other row maps to -1 and is ignored), and its unmerged blocks stacked here."""

    def __init__(self, merged: _Merged, at: np.ndarray, in_merged: np.ndarray, fresh: list[TermCounts],
                 n_terms: int) -> None:  # fmt: skip
        sizes = np.zeros(len(at), dtype=np.int64)
        sizes[in_merged] = merged.sizes[at[in_merged]]
        sizes[~in_merged] = [len(c) for c in fresh]
        offsets = np.cumsum(sizes) - sizes
        self.rows = int(sizes.sum())
        from_rows = _ranges(merged.firsts[at[in_merged]], sizes[in_merged])
        to_rows = _ranges(offsets[in_merged], sizes[in_merged])
        fresh_rows = _ranges(offsets[~in_merged], sizes[~in_merged])
        view_map = np.full(merged.segment.rows, -1, dtype=np.int64)
        view_map[from_rows] = to_rows
        self._segments = [(merged.segment, view_map), (_Segment(fresh, n_terms), fresh_rows)]
        lengths = np.zeros(self.rows, dtype=np.float32)
        lengths[to_rows] = merged.segment.lengths[from_rows]
        lengths[fresh_rows] = self._segments[1][0].lengths
        average = float(lengths.mean()) if self.rows and lengths.any() else 1.0
        self._norm = (K1 * ((1 - B) + B * lengths / average)).astype(np.float32)

    def scores(self, terms: np.ndarray) -> tuple[np.ndarray, float]:
        """BM25 of every row for a query's distinct term ids (0 where no term matches), and the most a row
        can score: the sum of the matched terms' idf, which a row only nears when it holds every term often.
        Dividing by it puts the scores of any query on one scale, 0 to 1."""
        out = np.zeros(self.rows, dtype=np.float32)
        attainable = 0.0
        for term in terms:
            parts = [(view_rows[rows], counts) for rows, counts, view_rows in self._postings(int(term))]
            rows = np.concatenate([r for r, _ in parts])
            counts = np.concatenate([c for _, c in parts])
            kept = rows >= 0
            rows, counts = rows[kept], counts[kept]
            if len(rows):
                idf = np.log1p((self.rows - len(rows) + 0.5) / (len(rows) + 0.5))
                out[rows] += (idf * counts / (counts + self._norm[rows])).astype(np.float32)
                attainable += float(idf)
        return out, attainable

    def _postings(self, term: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return [(*segment.column(term), view_rows) for segment, view_rows in self._segments]


def _ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, sizes)])``, without the loop."""
    total = int(sizes.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    return np.repeat(starts - (np.cumsum(sizes) - sizes), sizes) + np.arange(total, dtype=np.int64)


class LexicalIndex:
    """Term counts of every resident block, and their merged term-major segment.

    ``put``/``drop``/``view`` may be called from any thread; a merge runs beside them and only swaps its
    result in. A block put keeps its texts until it is counted (by the first view that holds it, or
    :meth:`count_later`). A block counted since the last merge costs each view that holds it a little at
    build time; once such rows outnumber an eighth of the merged ones (and ``merge_at``), a merge starts.
    """

    def __init__(self, merge_at: int = 4096) -> None:
        self.vocabulary = Vocabulary()
        self._pending: dict[int, Sequence[str]] = {}
        """Texts of blocks put and not counted yet."""
        self._counting = False
        self._blocks: dict[int, TermCounts] = {}
        self._merged = _Merged.of({}, 0)
        self._stale: set[int] = set()  # merged versions dropped or put again since the merge
        self._fresh = 0  # resident rows outside the merged segment
        self._kept = 0  # resident rows inside it
        self._merge_at = merge_at
        self._lock = threading.Lock()
        self._merging = False

    def put(self, version_id: int, texts: Sequence[str]) -> None:
        """Keep a version's chunk texts, to be counted when first needed."""
        with self._lock:
            self._drop(version_id)
            self._pending[version_id] = texts

    def drop(self, version_id: int) -> None:
        with self._lock:
            self._drop(version_id)

    def _count(self, version_ids: Iterable[int]) -> None:
        """Count those of these versions still pending; the lock is taken per block, so that a view waits
        for at most one block of a background pass."""
        for vid in version_ids:
            with self._lock:
                texts = self._pending.pop(vid, None)
                if texts is not None:
                    counts = self.vocabulary.count(texts)
                    self._blocks[vid] = counts
                    self._fresh += len(counts)

    def count_later(self) -> None:
        """Count every pending block in a background thread (after a bulk load), then merge."""
        with self._lock:
            if self._counting or not self._pending:
                return
            self._counting = True
        threading.Thread(target=self._count_all, name="kb-lexical-count", daemon=True).start()

    def _count_all(self) -> None:
        try:
            while True:
                with self._lock:
                    batch = list(self._pending)[:256]
                    if not batch:
                        self._counting = False
                        break
                self._count(batch)
            self.settle()
        except Exception:  # the blocks left pending are counted by the views that need them
            log.exception("counting the lexical index failed")
            with self._lock:
                self._counting = False

    def _drop(self, version_id: int) -> None:
        self._pending.pop(version_id, None)
        counts = self._blocks.pop(version_id, None)
        if counts is None:
            return
        if self._merged.counts.get(version_id) is counts:
            self._kept -= len(counts)
            self._stale.add(version_id)
        else:
            self._fresh -= len(counts)

    def view(self, version_ids: Sequence[int]) -> Lexical:
        """BM25 over these resident versions' rows, in this order."""
        ids = np.asarray(version_ids, dtype=np.int64)
        if self._pending:
            self._count(version_ids)
            self.settle()
        with self._lock:
            merged, n_terms = self._merged, len(self.vocabulary)
            if len(merged.version_ids):
                at = np.minimum(np.searchsorted(merged.version_ids, ids), len(merged.version_ids) - 1)
                in_merged = merged.version_ids[at] == ids
                if self._stale:
                    in_merged &= ~np.isin(ids, np.fromiter(self._stale, dtype=np.int64))
            else:
                at, in_merged = np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
            fresh = [self._blocks[int(vid)] for vid in ids[~in_merged]]
        return Lexical(merged, at, in_merged, fresh, n_terms)

    def settle(self) -> None:
        """Merge when due: at once when most rows are unmerged (start-up, a first fill), else beside."""
        with self._lock:
            fresh, kept = self._fresh, self._kept
            dead = self._merged.segment.rows - kept
            if self._merging or (fresh <= max(self._merge_at, kept // 8) and dead <= max(self._merge_at, kept)):
                return
            self._merging = True
        if fresh > kept:
            self._merge()
        else:
            threading.Thread(target=self._merge, name="kb-lexical-merge", daemon=True).start()

    def merge(self) -> None:
        """Count every pending block and rebuild the merged segment from every resident block now."""
        self._count(list(self._pending))
        with self._lock:
            self._merging = True
        self._merge()

    def _merge(self) -> None:
        """The heavy part runs without the lock; blocks put meanwhile stay fresh until the next merge."""
        try:
            with self._lock:
                blocks = dict(self._blocks)
                n_terms = len(self.vocabulary)
            merged = _Merged.of(blocks, n_terms)
            with self._lock:
                self._merged = merged
                self._stale = {vid for vid, c in merged.counts.items() if self._blocks.get(vid) is not c}
                self._kept = sum(len(c) for vid, c in merged.counts.items() if vid not in self._stale)
                self._fresh = sum(len(c) for c in self._blocks.values()) - self._kept
        except Exception:  # a failed merge leaves the previous one serving; the next put tries again
            log.exception("merging the lexical index failed")
        finally:
            with self._lock:
                self._merging = False
