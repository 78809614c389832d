"""Int8 rows with an error bound: the index scans a quarter of the bytes and still ranks exactly.

A row x is kept as int8 codes c and a scale s, so that x ≈ x̂ = s·c, with its error ‖x − x̂‖ and the norm ‖x̂‖;
a query q is cut the same way, q ≈ q̂. Since q·x − q̂·x̂ = q·(x − x̂) + (q − q̂)·x̂, for every row

    |q·x − q̂·x̂| ≤ ‖q‖·‖x − x̂‖ + ‖q − q̂‖·‖x̂‖        (Cauchy-Schwarz on each term)

so a scan of the codes gives each row an interval that holds its float32 cosine. The k-th best lower end is
a threshold no row of the true top k falls under (:func:`candidates`); the rows whose upper end reaches it are
scored again as q·x̂ in float32, whose error is only ‖q‖·‖x − x̂‖, and the rows that still may be in the top k
are read back in float32 and ranked on that. The answer is the float32 scan's, proven rather than estimated:
recall stays 1.0. On the generated corpus's real MiniLM vectors a search reads 6-7 rows back (median, k = 5,
6,004 sections; bench/quantized.py).

The int8 products are SimSIMD's (AVX-512 VNNI on this machine, AVX2 or plain C elsewhere, the GIL released):
6.7 ms for 500k rows, where numpy's float32 product on one thread takes 23.9 ms, and a row takes 396 bytes
instead of 1,536.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import simsimd

LEVELS = 127
"""Codes are symmetric, -127..127."""

MARGIN = 1e-4
"""Added to every bound, times ‖q‖·‖x̂‖: float32 rounding in the scale products and norms is far smaller
(about 1e-7 of that)."""


@dataclass(frozen=True)
class Rows:
    """Quantised rows, aligned: ``codes[i] * scale[i]`` approximates row i within ``error[i]``."""

    codes: np.ndarray
    """(n, dim) int8."""
    scale: np.ndarray
    error: np.ndarray
    """‖x − x̂‖ per row."""
    norm: np.ndarray
    """‖x̂‖ per row."""

    @classmethod
    def empty(cls, n: int, dim: int) -> Rows:
        return cls(np.zeros((n, dim), np.int8), *(np.zeros(n, np.float32) for _ in range(3)))

    @classmethod
    def of(cls, vectors: np.ndarray) -> Rows:
        """The rows of an (n, dim) array, n may be 0."""
        vectors = np.asarray(vectors, dtype=np.float32)
        scale = np.abs(vectors).max(axis=1, initial=0.0) / LEVELS
        safe = np.where(scale > 0, scale, 1.0)[:, None]
        codes = np.clip(np.rint(vectors / safe), -LEVELS, LEVELS).astype(np.int8)
        approx = codes * scale[:, None].astype(np.float32)
        error = np.linalg.norm(vectors - approx, axis=1)
        return cls(codes, scale.astype(np.float32), error.astype(np.float32), np.linalg.norm(approx, axis=1))

    def __len__(self) -> int:
        return len(self.codes)

    def resized(self, n: int, keep: int) -> Rows:
        """A copy with room for ``n`` rows, the first ``keep`` copied."""
        out = Rows.empty(n, self.codes.shape[1])
        out.write(0, self.take(0, keep))
        return out

    def take(self, low: int, high: int) -> Rows:
        return Rows(self.codes[low:high], self.scale[low:high], self.error[low:high], self.norm[low:high])

    def write(self, at: int, rows: Rows) -> None:
        n = len(rows)
        self.codes[at : at + n] = rows.codes
        self.scale[at : at + n] = rows.scale
        self.error[at : at + n] = rows.error
        self.norm[at : at + n] = rows.norm


class Probe:
    """A query vector cut like the rows, to be scanned against them."""

    def __init__(self, vector: np.ndarray) -> None:
        self.vector = np.asarray(vector, dtype=np.float32).ravel()
        top = float(np.abs(self.vector).max(initial=0.0))
        self.scale = top / LEVELS
        self.codes = np.rint(self.vector * (LEVELS / top if top else 0.0)).astype(np.int8).reshape(1, -1)
        self.norm = float(np.linalg.norm(self.vector))
        self.error = float(np.linalg.norm(self.vector - self.codes[0] * np.float32(self.scale)))
        # The products are sums of dim products of two codes: exact in float32 below 2**24.
        self._out: Literal["float32", "float64"] = "float32" if self.vector.size * LEVELS**2 < 2**24 else "float64"

    def scan(self, rows: Rows, spans: list[tuple[int, int]]) -> np.ndarray:
        """The estimated cosines of the rows of ``spans``, laid end to end: each within :meth:`slack` of the
        float32 one."""
        out = []
        for low, high in spans:
            dots = simsimd.cdist(self.codes, rows.codes[low:high], metric="dot", out_dtype=self._out)
            out.append(np.asarray(dots)[0] * (rows.scale[low:high] * self.scale))
        return out[0] if len(out) == 1 else np.concatenate(out)

    def slack(self, error: float, norm: float) -> float:
        """How far an estimate may be from the float32 cosine, for rows of at most this error and norm."""
        return self.norm * error + (self.error + MARGIN * self.norm) * norm

    def refine(self, rows: Rows, picked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the rows ``picked``: q·x̂ in float32, and the bound on its error, ‖q‖·‖x − x̂‖ (the query's own
        rounding no longer counts). Tighter than the scan's, for the few rows it left."""
        # einsum, not BLAS, as for the float32 pass (kb/index.py).
        cosines = np.einsum("ij,j->i", rows.codes[picked].astype(np.float32), self.vector) * rows.scale[picked]
        return cosines, self.norm * (rows.error[picked] + MARGIN * rows.norm[picked])


def candidates(scores: np.ndarray, bounds: np.ndarray | float, k: int) -> np.ndarray:
    """Rows (ascending) that may be among the k best when each true score lies within ``bounds`` (one for all,
    or one per row) of ``scores``; rows scored -inf are excluded."""
    if len(scores) > k:
        lower = scores - bounds
        threshold = np.partition(lower, len(lower) - k)[len(lower) - k]
        if np.isfinite(threshold):  # else fewer than k rows are scored at all
            return np.flatnonzero(scores + bounds >= threshold)
    return np.flatnonzero(np.isfinite(scores))
