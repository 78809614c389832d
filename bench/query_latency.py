"""Query latency with a large history: /v1/query over HTTP against the raw reference.

The store is filled through kb's own write path (``KnowledgeBase.apply``: ledger transaction, Chroma,
index) with synthetic unit vectors, so no hour is spent embedding; every query is embedded for real.
Layout: ``--docs`` documents in ``global`` plus variants in 9 more regions, ``--chunks`` chunks each, and
``--history`` superseded versions per series, each of which changed one chunk.

Prints p50/p99 of single-client ``POST /v1/query`` (uvicorn on 127.0.0.1), recall@k against brute force
over the chunks in force, and the same for the reference: the query embedding plus one unfiltered HNSW
query on the same Chroma collection, in-process.

    python bench/query_latency.py            # 100k chunks in force, 10 superseded versions per series
    python bench/query_latency.py --smoke    # seconds, for CI
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import uvicorn

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.server import free_port, running  # noqa: E402
from kb.documents import Chunk, DocType, Document, RiskTier  # noqa: E402
from kb.embedder import load_embedder  # noqa: E402
from kb.knowledge import KnowledgeBase  # noqa: E402
from kb.settings import Settings  # noqa: E402
from server.app import create_app  # noqa: E402

REGIONS = {"EU": "global", "DE": "EU", "FR": "EU", "US": "global", "UK": "global", "CA": "US", "JP": "global",
           "AU": "global", "BR": "global"}  # fmt: skip
QUESTIONS = [
    "How many days do customers have to return a blender?",
    "Is there a restocking fee on opened items?",
    "When will my refund reach my card?",
    "What does express shipping cost to Germany?",
    "How long is the warranty on the Kettle K1?",
    "Can I change my repair appointment the same day?",
    "Do you match a competitor's lower price?",
    "Which payment methods are accepted?",
]
START = datetime(2024, 1, 1, tzinfo=UTC)


def _vector(rng: np.random.Generator, dim: int) -> np.ndarray:
    v = rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def fill(kb: KnowledgeBase, docs: int, chunks: int, history: int, variant_share: float, seed: int = 7) -> None:
    """Write every version through ``apply``, oldest first, as an owner's edits would arrive."""
    rng = np.random.default_rng(seed)
    (kb.settings.docs / "regions.yaml").write_text("".join(f"{c}: {p}\n" for c, p in REGIONS.items()))
    kb.reload_regions()
    series = [(f"doc-{d:05d}", "global") for d in range(docs)]
    per_region = int(docs * variant_share)
    for region in REGIONS:
        series += [(f"doc-{d:05d}", region) for d in rng.choice(docs, per_region, replace=False)]
    vectors: dict[str, np.ndarray] = {}
    pending: list[Chunk] = []
    versions: list[tuple[Document, list[Chunk]]] = []
    for n, (doc_id, region) in enumerate(series):
        texts = [f"{doc_id} {region} section {c}: synthetic policy text {rng.integers(1e9)}" for c in range(chunks)]
        for version in range(1, history + 2):
            if version > 1:
                texts[int(rng.integers(chunks))] += f" (revised in v{version})"  # one chunk changes per version
            made = [
                Chunk(hashlib.sha256(t.encode()).hexdigest()[:32], (f"Section {i}",), t, t) for i, t in enumerate(texts)
            ]
            fresh = [c for c in made if c.chunk_id not in vectors]
            vectors.update({c.chunk_id: _vector(rng, kb.embedder.dim) for c in fresh})
            pending += fresh
            doc = Document(
                doc_id=doc_id, region=region, title=f"Policy {doc_id}", doc_type=DocType.policy, products=(),
                version=version, effective_from=START + timedelta(days=30 * version), effective_to=None,
                review_by=None, review_every=None, owner="Bench", risk_tier=RiskTier.low,
                source=f"{region}/{doc_id}-v{version}.md",
                content_hash=hashlib.sha256(" ".join(texts).encode()).hexdigest(),
            )  # fmt: skip
            versions.append((doc, made))
        if len(pending) >= 5000 or n == len(series) - 1:
            # Chroma pays ~12 ms per write call: store a batch, then let the versions follow it, as ingest does.
            kb.store.add([c.chunk_id for c in pending], np.stack([vectors[c.chunk_id] for c in pending]),
                         [c.text for c in pending])  # fmt: skip
            for doc, made in versions:
                kb.apply(doc, made, doc.content_hash, vectors)
            pending, versions = [], []
            vectors = {}
        if n % 500 == 0:
            print(f"  filled {n}/{len(series)} series", file=sys.stderr, flush=True)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _serve_only(settings: Settings, port: int) -> None:
    """The server process: the filled ledger as it is (its files were never on disk, so no folder sync)."""
    uvicorn.run(create_app(settings, sync_folder=False), host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=5000, help="documents in global")
    parser.add_argument("--chunks", type=int, default=10, help="chunks per version")
    parser.add_argument("--history", type=int, default=10, help="superseded versions per series")
    parser.add_argument(
        "--variant-share", type=float, default=0.1111, help="share of documents with a variant per region"
    )
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--data", type=Path, help="keep (and reuse) the filled store here")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--serve-only", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.docs, args.history, args.queries = 60, 2, 40

    work = Path(tempfile.mkdtemp(prefix="kb-bench-"))
    data = args.data or work / "data"
    settings = Settings(docs=work / "policies", data=data, watch=False)
    settings.docs.mkdir(parents=True, exist_ok=True)
    if args.serve_only:
        return _serve_only(settings, args.serve_only)

    kb = KnowledgeBase.open(settings, load_embedder())
    started = time.perf_counter()
    reused = bool(kb.ledger.versions())
    if not reused:
        fill(kb, args.docs, args.chunks, args.history, args.variant_share)
    fill_seconds = time.perf_counter() - started
    stats = kb.stats()
    regions = ["global", *REGIONS]
    recall = _recall(kb, regions, args.k)
    reference = _reference(kb, args.queries, args.k)
    kb.close()

    port = free_port()
    argv = [sys.executable, __file__, "--serve-only", str(port), "--data", str(data)]
    samples = []
    with running(argv, port) as http:
        for region in regions:  # the first query of a chain builds its view; measure the steady state
            http.post("/v1/query", json={"query": QUESTIONS[0], "region": region})
        for i in range(args.queries):
            body = {"query": QUESTIONS[i % len(QUESTIONS)], "region": regions[i % len(regions)], "k": args.k}
            t = time.perf_counter()
            http.post("/v1/query", json=body).raise_for_status()
            samples.append(time.perf_counter() - t)

    p50, p99 = _percentiles(samples)
    r50, r99 = _percentiles(reference)
    print(
        f"store: {stats['chunks_stored']:,} chunks in Chroma, {stats['series']:,} series, "
        f"{stats['chunks_resident']:,} chunks resident (in force or future), "
        f"{args.history} superseded versions per series"
    )
    if not reused:
        print(f"fill through KnowledgeBase.apply: {fill_seconds:.0f} s")
    print(f"kb  POST /v1/query to a kb process on 127.0.0.1: p50 {p50:.1f} ms  p99 {p99:.1f} ms  (n={len(samples)})")
    print(f"ref embed + unfiltered Chroma query in-process:  p50 {r50:.1f} ms  p99 {r99:.1f} ms")
    print(f"ratio kb/ref: p50 {p50 / r50:.2f}x  p99 {p99 / r99:.2f}x")
    print(f"recall@{args.k} against brute force over the chunks in force: {recall:.3f}")
    print(f"goal p50 <= 25 ms: {_met(p50 <= 25)}; goal p99 <= 60 ms: {_met(p99 <= 60)}")
    if not args.data:
        shutil.rmtree(work, ignore_errors=True)


def _recall(kb: KnowledgeBase, regions: list[str], k: int) -> float:
    """Brute force over the chunks in force, computed from the ledger, not from the index."""
    from kb.retrieval import QueryRequest

    found = wanted = 0
    for i, region in enumerate(regions):
        question = QUESTIONS[i % len(QUESTIONS)]
        resolution = kb.timeline.resolve(kb.chain(region), kb.now())
        chunk_ids = [cid for v in resolution.by_version_id.values() for cid in kb.ledger.chunk_ids(v.record.id)]
        scores = kb.store.vectors(chunk_ids) @ kb.embedder.encode_query(question)
        truth = {chunk_ids[j] for j in np.argsort(-scores)[:k]}
        got = {r.chunk_id for r in kb.query(QueryRequest(question, k=k, region=region)).results}
        found += len(truth & got)
        wanted += len(truth)
    return found / wanted


def _reference(kb: KnowledgeBase, queries: int, k: int) -> list[float]:
    collection = kb.store._collection  # the raw Chroma collection: the reference is Chroma itself
    samples = []
    for i in range(queries):
        t = time.perf_counter()
        vector = kb.embedder.encode_query(QUESTIONS[i % len(QUESTIONS)])
        collection.query(query_embeddings=[vector], n_results=k, include=["documents", "distances"])
        samples.append(time.perf_counter() - t)
    return samples


if __name__ == "__main__":
    main()
