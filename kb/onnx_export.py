"""ONNX Runtime copies of the embedding model: exported from the weights on disk once, verified against torch.

No package ships an ONNX file of all-MiniLM-L6-v2 and kb never downloads one, so the first start with the
``onnx`` backend makes it (~10 s) and caches it under ``<data>/models``:

1. torch.onnx's TorchScript exporter (``dynamo=False``) traces the model's BertModel, loaded with eager
   attention, inside a wrapper that adds sentence-transformers' mean pooling and L2 normalisation: the graph
   returns the sentence embedding. (The dynamo exporter works too, in 12 s against 2 s, but onnxruntime's
   BERT fusion does not recognise its graph.)
2. onnxruntime's transformer optimizer fuses attention, skip-layer-norm and bias-GELU (float32).
3. int8: dynamic quantization, weights per output channel. The feed-forward output projections of the first
   half of the layers stay float32: they carry the activation outliers (all quantized, the smallest cosine to
   torch on ``SAMPLE`` was 0.982; so, 0.994), for about a third of int8's speed-up.
4. Each variant is checked against the sentence-transformers vectors of ``SAMPLE``: both tokenizers must agree
   and every cosine reach ``MIN_COSINE``. int8 is tried first, then float32; the first to pass is kept.

The cache holds ``<name>.onnx`` and ``<name>.json``: a hash of the model folder, the recipe, the versions of
onnxruntime, torch and (sentence-)transformers, the file's own hash and the cosines. A change to any of those
exports again, and so does a damaged file; a model that no variant can stand in for is remembered, so
start-up does not retry.
Writers hold ``<name>.lock`` and move finished files into place with ``os.replace``: a racing process waits,
then finds the export done, and a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

RECIPE = 1
"""Bump when the export steps change: every cache exports again."""
MIN_COSINE = 0.99
"""The smallest cosine to the torch vectors of ``SAMPLE`` an exported model may have."""
VARIANTS = ("int8", "float32")
"""Tried in this order; the first that passes verification is used."""

_TEXTS = (
    "How many days do customers have to return a blender?",
    "Can I get a refund without a receipt?",
    "Wie lange dauert die Rückerstattung nach Deutschland?",
    "restocking fee",
    "warranty",
    "SKU-4471-B",
    "Refunds: Timing\n\nRefunds go to the original payment method within 5 business days of the item reaching the "
    "warehouse. Card issuers may take a further 3-10 days to show the credit.",
    "Shipping: Rates\n\n| Zone | Standard | Express |\n|---|---|---|\n| Domestic | free over $50 | $12.99 |\n"
    "| EU | €9.90 | €24.90 |\n| Rest of world | $29 | $59 |",
    "Warranty: Kettle K1\n\n- Two years from delivery, parts and labour.\n- Limescale damage is not covered.\n"
    "- Agents may offer a replacement instead of a repair when the repair would take more than 10 days.",
    "Price matching: Exclusions\n\nWe do not match marketplace sellers, clearance prices, bundles, or prices that "
    "need a membership. The competitor's item must be identical (same model number) and in stock.",
    "Loyalty: Points\n\nMembers earn 1 point per dollar spent; 100 points are worth $5 off a later order. Points "
    "expire 12 months after they are earned.",
    "Procedures: Repair appointments\n\nA customer may move a repair appointment up to 24 hours before it starts, "
    "at no charge. Same-day changes need a team lead's approval and are logged in the case notes.",
    "FAQ\n\nQ: Do gift cards expire?\nA: No. Gift cards never expire and carry no fees.",
)
SAMPLE: tuple[str, ...] = (*_TEXTS, "\n\n".join(_TEXTS[6:] * 2))
"""Policy-like chunks and queries, short to longer than the encoder takes (the last one is cut)."""


class Encoder(Protocol):
    max_tokens: int

    def tokens(self, text: str) -> list[int]: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...


class ExportFailed(Exception):
    """No ONNX model of this source can be used: the export raised, or no variant passed verification."""


@dataclass(frozen=True)
class Exported:
    path: Path
    variant: str
    min_cosine: float
    """The smallest cosine to torch on ``SAMPLE``."""
    max_tokens: int


def source_hash(model_dir: Path) -> str:
    """sha256 over every file of the model folder: weights, configuration and tokenizer."""
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(model_dir).as_posix().encode() + b"\0" + _file_hash(path).encode())
    return digest.hexdigest()


def verify(candidate: Encoder, reference: Encoder, texts: Sequence[str] = SAMPLE) -> float:
    """The smallest cosine between the two encoders' vectors of ``texts``, as documents and as queries.

    Raises ExportFailed when their tokenizers disagree: chunks would be cut differently.
    """
    for text in texts:
        if candidate.tokens(text) != reference.tokens(text):
            raise ExportFailed(f"its tokenizer splits {text[:40]!r} differently from the model's")
    expected = reference.encode(texts)
    documents = np.sum(candidate.encode(texts) * expected, axis=1)
    queries = np.sum(np.stack([candidate.encode_query(t) for t in texts]) * expected, axis=1)
    return float(min(documents.min(), queries.min()))


def transformer_dir(model_dir: Path) -> Path:
    """The folder of the transformer inside a sentence-transformers model (its weights and tokenizer)."""
    modules = model_dir / "modules.json"
    if not modules.is_file():
        return model_dir
    entries = json.loads(modules.read_text(encoding="utf-8"))
    return model_dir / next((m["path"] for m in entries if m["type"].endswith(".Transformer")), "")


def export_float(model_dir: Path, target: Path) -> None:
    """The model with mean pooling and normalisation as one float32 graph, fused for onnxruntime."""
    import torch
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    with _quiet():
        bert = AutoModel.from_pretrained(str(transformer_dir(model_dir)), attn_implementation="eager").eval()

    class Sentence(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            hidden = out.last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    ids = torch.tensor([[1, 5, 6, 2], [1, 5, 2, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])  # a padded row: tracing must not assume a mask of ones
    inputs = (ids, mask, torch.zeros_like(ids))
    names = ["input_ids", "attention_mask", "token_type_ids"]
    traced = target.with_suffix(".traced.onnx")
    axes = {name: {0: "batch", 1: "sequence"} for name in names} | {"sentence_embedding": {0: "batch"}}
    with torch.no_grad(), _quiet():
        torch.onnx.export(
            Sentence().eval(), inputs, str(traced), input_names=names, output_names=["sentence_embedding"],
            dynamic_axes=axes, opset_version=17, dynamo=False,
        )  # fmt: skip
        config = bert.config
        fused = optimizer.optimize_model(
            str(traced), "bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size, opt_level=0
        )
        fused.save_model_to_file(str(target))
    traced.unlink()


_FFN_OUT = re.compile(r"/layer\.(\d+)/output/dense/MatMul$")


def quantize_int8(float_path: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(float_path), load_external_data=False).graph
    layers = {n.name: int(m.group(1)) for n in graph.node if (m := _FFN_OUT.search(n.name))}
    keep_float = [name for name, layer in layers.items() if layer < len(layers) // 2]
    with _quiet():
        quantize_dynamic(
            str(float_path), str(target), per_channel=True, weight_type=QuantType.QInt8,
            nodes_to_exclude=keep_float, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )  # fmt: skip


def prepare(
    model_dir: Path,
    cache_dir: Path,
    name: str,
    reference: Callable[[], Encoder],
    open_model: Callable[[Path], Encoder],
) -> Exported:
    """The cached export of ``model_dir``, exported and verified first when the cache lacks a valid one.

    ``reference`` gives the torch encoder (loaded only to verify a new export); ``open_model`` opens an ONNX
    file as the encoder kb would use. Raises ExportFailed when no ONNX model of this source can be used.
    """
    source = source_hash(model_dir)
    found = _cached(cache_dir, name, source, explain=False)
    if found is not None:
        return found
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _locked(cache_dir / f"{name}.lock"):
        found = _cached(cache_dir, name, source, explain=True)  # another process may have exported it meanwhile
        if found is not None:
            return found
        for leftover in cache_dir.glob(f".{name}-*"):  # the work folder of an export that was killed
            shutil.rmtree(leftover, ignore_errors=True)
        return _export(model_dir, cache_dir, name, source, reference, open_model)


def _export(
    model_dir: Path,
    cache_dir: Path,
    name: str,
    source: str,
    reference: Callable[[], Encoder],
    open_model: Callable[[Path], Encoder],
) -> Exported:
    log.info("exporting %s to ONNX into %s (once, ~10 s)", name, cache_dir)
    record: dict[str, Any] = {**_key(source), "variant": None, "sha256": None, "cosines": {}}
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=f".{name}-") as work:
        files = {variant: Path(work) / f"{variant}.onnx" for variant in VARIANTS}
        try:
            export_float(model_dir, files["float32"])
            quantize_int8(files["float32"], files["int8"])
        except Exception as exc:  # torch, onnx and onnxruntime raise many types; all mean "no ONNX model"
            raise ExportFailed(f"the export failed: {type(exc).__name__}: {exc}") from exc
        torch_encoder = reference()
        record["max_tokens"] = torch_encoder.max_tokens
        for variant in VARIANTS:
            try:
                cosine = verify(open_model(files[variant]), torch_encoder)
            except ExportFailed as exc:
                record["reason"] = str(exc)
                break
            except Exception as exc:  # onnxruntime could not load or run the file
                raise ExportFailed(f"the exported {variant} model does not run: {exc}") from exc
            record["cosines"][variant] = round(cosine, 5)
            log.info("ONNX %s: smallest cosine to torch on the verification sample %.4f", variant, cosine)
            if cosine >= MIN_COSINE:
                target = cache_dir / f"{name}.onnx"
                os.replace(files[variant], target)
                record.update(variant=variant, sha256=_file_hash(target))
                _write_json(cache_dir / f"{name}.json", record)
                return Exported(target, variant, cosine, torch_encoder.max_tokens)
        record.setdefault("reason", f"no variant reached cosine {MIN_COSINE} to torch: {record['cosines']}")
        _write_json(cache_dir / f"{name}.json", record)
        raise ExportFailed(record["reason"])


def _key(source: str) -> dict[str, Any]:
    """What an export depends on. Versions are read from package metadata: importing torch takes seconds."""
    packages = ("onnxruntime", "torch", "transformers", "sentence-transformers")
    return {"source": source, "recipe": RECIPE, "versions": {name: metadata.version(name) for name in packages}}


def _cached(cache_dir: Path, name: str, source: str, explain: bool) -> Exported | None:
    """The valid export on record; None when there is none (``explain``: log why); ExportFailed when it is
    known not to work."""
    try:
        record = json.loads((cache_dir / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    key = _key(source)
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in key.items()):
        if explain:
            log.info("the cached ONNX model of %s was made from another model, recipe or library version", name)
        return None
    if record.get("variant") is None:
        raise ExportFailed(f"{record.get('reason')} (remembered in {cache_dir / name}.json)")
    path = cache_dir / f"{name}.onnx"
    if not path.is_file() or _file_hash(path) != record.get("sha256"):
        if explain:
            log.warning("the cached ONNX model %s is missing or damaged: exporting it again", path)
        return None
    variant = record["variant"]
    return Exported(path, variant, float(record["cosines"][variant]), int(record["max_tokens"]))


def _file_hash(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _write_json(path: Path, record: dict[str, Any]) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}-", delete=False) as handle:
        json.dump(record, handle, indent=2)
    os.replace(handle.name, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch's exporter and onnxruntime's optimizer and quantizer warn about themselves and log every step,
    partly on the root logger (which kb never uses): none of it is for kb's operator. Only at start-up."""
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    logging.root.addFilter(_drop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.root.removeFilter(_drop)
        logging.disable(previous)


def _drop(record: logging.LogRecord) -> bool:
    return False
