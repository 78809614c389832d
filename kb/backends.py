"""Which model and which backend compute the embeddings: the names only, apart from kb/embedder.py that loads
them, so that the settings can name them without importing numpy, torch or onnxruntime."""

from __future__ import annotations

from enum import StrEnum

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class EmbedderBackend(StrEnum):
    """What computes the embeddings."""

    auto = "auto"
    """ONNX Runtime when the exported model passes verification against torch, else torch (with a warning)."""
    onnx = "onnx"
    """ONNX Runtime or nothing: start-up fails with the reason when the model cannot be exported or verified."""
    torch = "torch"
    """sentence-transformers on torch: the reference."""
