"""A kb store filled with synthetic vectors through kb's own write path, and the measurements the query
benchmarks share (bench/query_latency.py, bench/history_depth.py, bench/scale.py).

``fill`` writes every version through ``KnowledgeBase.apply`` (ledger transaction, Chroma, index) with
random unit vectors, so no hour is spent embedding; every query is embedded for real. Layout: ``docs``
documents in ``global`` plus variants in 9 more regions, ``chunks`` chunks each, and ``history`` superseded
versions per series, each of which changed one chunk; the last version of every series is in force.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import Server, free_port, started  # noqa: E402
from kb.documents import Chunk, DocType, Document, RiskTier  # noqa: E402
from kb.knowledge import KnowledgeBase  # noqa: E402
from kb.retrieval import QueryRequest, RetrievalMode  # noqa: E402
from kb.settings import Settings  # noqa: E402
from kb.store import COLLECTION  # noqa: E402

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
BATCH = 5000
"""Chunks stored per Chroma write in ``fill``: Chroma pays ~12 ms per call, and takes at most 5,461."""


EVERY = {"min_score": -1}
"""Synthetic unit vectors score near 0 against a real question: the relevance floor is turned off, so that every
query ranks and returns its k chunks as an answered question does."""


def regions_yaml() -> str:
    return "".join(f"{child}: {parent}\n" for child, parent in REGIONS.items())


def series_count(docs: int, variant_share: float) -> int:
    return docs + len(REGIONS) * int(docs * variant_share)


def fill(
    kb: KnowledgeBase,
    docs: int,
    chunks: int,
    history: int,
    variant_share: float,
    seed: int = 7,
    step: timedelta = timedelta(days=30),
    deadline: float | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> int:
    """Write every version through ``apply``, oldest first, as an owner's edits would arrive.

    Version ``v`` of a series takes effect ``v * step`` after 2024-01-01, so every version is in the past
    when ``(history + 1) * step`` is. Stops after the batch during which ``time.monotonic()`` passes
    ``deadline``; returns the series written. ``progress(series_done, series_total, chunks_stored)`` is
    called after each batch.
    """
    rng = np.random.default_rng(seed)
    (kb.settings.docs / "regions.yaml").write_text(regions_yaml())
    kb.reload_regions()
    series = _series(docs, variant_share, rng)
    known: set[str] = set()
    pending: list[Chunk] = []
    versions: list[tuple[Document, list[Chunk]]] = []
    stored = 0
    for n, (doc_id, region) in enumerate(series):
        for doc, made in _versions(doc_id, region, chunks, history, step, rng):
            fresh = [c for c in made if c.chunk_id not in known]
            known.update(c.chunk_id for c in fresh)
            pending += fresh
            versions.append((doc, made))
        if len(pending) >= BATCH or n == len(series) - 1:
            _store_then_apply(kb, pending, versions, rng)
            stored += len(pending)
            pending, versions = [], []
            known.clear()  # chunk texts never repeat across series
            if progress:
                progress(n + 1, len(series), stored)
            if deadline is not None and time.monotonic() > deadline:
                return n + 1
    return len(series)


def _series(docs: int, variant_share: float, rng: np.random.Generator) -> list[tuple[str, str]]:
    """(doc_id, region) of every series: each document in global, a share of them in each other region."""
    series = [(f"doc-{d:06d}", "global") for d in range(docs)]
    per_region = int(docs * variant_share)
    for region in REGIONS:
        series += [(f"doc-{d:06d}", region) for d in rng.choice(docs, per_region, replace=False)]
    series.sort()  # each document's variants right after it: any prefix has the same layout, smaller
    return series


def _versions(
    doc_id: str, region: str, chunks: int, history: int, step: timedelta, rng: np.random.Generator
) -> list[tuple[Document, list[Chunk]]]:
    """Every version of one series, oldest first; each changes one chunk of the one before."""
    out = []
    texts = [f"{doc_id} {region} section {c}: synthetic policy text {rng.integers(1e9)}" for c in range(chunks)]
    for version in range(1, history + 2):
        if version > 1:
            texts[int(rng.integers(chunks))] += f" (revised in v{version})"  # one chunk changes per version
        made = [
            Chunk(hashlib.sha256(t.encode()).hexdigest()[:32], (f"Section {i}",), t, t) for i, t in enumerate(texts)
        ]
        doc = Document(
            doc_id=doc_id, region=region, title=f"Policy {doc_id}", doc_type=DocType.policy, products=(),
            version=version, effective_from=START + step * version, effective_to=None,
            review_by=None, review_every=None, owner="Bench", risk_tier=RiskTier.low,
            source=f"{region}/{doc_id}-v{version}.md",
            content_hash=hashlib.sha256(" ".join(texts).encode()).hexdigest(),
        )  # fmt: skip
        out.append((doc, made))
    return out


def _store_then_apply(
    kb: KnowledgeBase, pending: list[Chunk], versions: list[tuple[Document, list[Chunk]]], rng: np.random.Generator
) -> None:
    """Store a batch of vectors, then let the versions follow it, as ingest does."""
    vectors = rng.standard_normal((len(pending), kb.embedder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kb.store.add([c.chunk_id for c in pending], vectors, [c.embed_text for c in pending])
    by_id = dict(zip((c.chunk_id for c in pending), vectors, strict=True))
    for doc, made in versions:
        kb.apply(doc, made, doc.content_hash, by_id)


def report_progress(started: float) -> Callable[[int, int, int], None]:
    """A ``fill`` progress callback printing to stderr about every 10 s."""
    last = [started]

    def progress(done: int, total: int, stored: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 10 or done == total:
            last[0] = now
            rate = stored / max(now - started, 1e-9)
            print(f"  filled {done:,}/{total:,} series, {stored:,} chunks, {rate:,.0f} chunks/s", file=sys.stderr)

    return progress


def _stored_model(data: Path) -> str | None:
    """The encoder that made the vectors of the store in ``data`` (None when there is no store)."""
    if not (data / "chroma").is_dir():
        return None
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(path=str(data / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    if COLLECTION not in {c if isinstance(c, str) else c.name for c in client.list_collections()}:
        return None
    return (client.get_collection(COLLECTION, embedding_function=None).metadata or {}).get("model")


def open_store(settings: Settings) -> KnowledgeBase:
    """Open a new store, or reuse a filled one. kb drops (and re-embeds) vectors another encoder made, which
    for a synthetic store of 100k's of chunks means hours: such a store is refused instead."""
    stored = _stored_model(settings.data)
    if stored is None:
        return KnowledgeBase.open(settings)
    scratch = Path(tempfile.mkdtemp(prefix="kb-probe-"))
    try:
        probe = KnowledgeBase.open(settings.model_copy(update={"data": scratch}))  # the encoder the settings pick
        embedder = probe.embedder
        probe.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if embedder.model_id != stored:
        raise SystemExit(
            f"{settings.data} was filled with vectors labelled {stored!r}, and the settings select "
            f"{embedder.model_id!r}: opening it would drop them all. Choose the encoder that filled it "
            "(KB_EMBEDDER), or another --data."
        )
    return KnowledgeBase.open(settings, embedder)


# -- measurements ------------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds of samples in seconds."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def recall(kb: KnowledgeBase, regions: list[str], k: int) -> float:
    """Recall@k of vector ranking against brute force over the chunks in force, computed from the ledger,
    not from the index."""
    found = wanted = 0
    for i, region in enumerate(regions):
        question = QUESTIONS[i % len(QUESTIONS)]
        resolution = kb.timeline.resolve(kb.chain(region), kb.now())
        chunk_ids = [cid for ids in kb.ledger.chunk_ids_of(list(resolution.by_version_id)).values() for cid in ids]
        scores = kb.store.vectors(chunk_ids) @ kb.embedder.encode_query(question)
        truth = {chunk_ids[j] for j in np.argsort(-scores)[:k]}
        answer = kb.query(QueryRequest(question, k=k, region=region, mode=RetrievalMode.vector, min_score=-1))
        found += len(truth & {r.chunk_id for r in answer.results})
        wanted += len(truth)
    return found / wanted


def _reference_query(kb: KnowledgeBase, question: str, k: int) -> None:
    collection = kb.store._collection  # the raw Chroma collection: the reference is Chroma itself
    vector = kb.embedder.encode_query(question)
    collection.query(query_embeddings=[vector], n_results=k, include=["documents", "distances"])


def reference_latency(kb: KnowledgeBase, queries: int, k: int) -> list[float]:
    """The raw reference, one query at a time: the query embedding plus one unfiltered Chroma query."""
    samples = []
    for i in range(queries):
        t = time.perf_counter()
        _reference_query(kb, QUESTIONS[i % len(QUESTIONS)], k)
        samples.append(time.perf_counter() - t)
    return samples


def _concurrently(clients: int, queries: int, one: Callable[[int, int], None]) -> float:
    """Queries per second of ``clients`` threads sharing ``queries`` calls of ``one(client, i)``."""
    start = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def worker(client: int) -> None:
        start.wait()
        try:
            for i in range(client, queries, clients):
                one(client, i)
        except BaseException as exc:  # re-raised below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    return queries / seconds


def reference_throughput(kb: KnowledgeBase, clients: int, queries: int, k: int) -> float:
    """The raw reference's queries per second from ``clients`` threads in-process."""
    for question in QUESTIONS:  # warm, as the HTTP side is warmed
        _reference_query(kb, question, k)
    return _concurrently(clients, queries, lambda _, i: _reference_query(kb, QUESTIONS[i % len(QUESTIONS)], k))


def warm(http: httpx.Client, regions: list[str]) -> None:
    """The first query of a chain builds its view; measure the steady state."""
    for region in regions:
        http.post("/v1/query", json={"query": QUESTIONS[0], "region": region, **EVERY}).raise_for_status()


def http_latency(http: httpx.Client, regions: list[str], queries: int, k: int) -> list[float]:
    """Single-client ``POST /v1/query`` round trips, cycling through questions and regions."""
    samples = []
    for i in range(queries):
        body = {"query": QUESTIONS[i % len(QUESTIONS)], "region": regions[i % len(regions)], "k": k, **EVERY}
        t = time.perf_counter()
        http.post("/v1/query", json=body).raise_for_status()
        samples.append(time.perf_counter() - t)
    return samples


def http_throughput(urls: list[str], regions: list[str], clients: int, queries: int, k: int) -> float:
    """Queries per second of ``clients`` concurrent HTTP clients, each with its own connection; client ``c`` sends
    to ``urls[c % len(urls)]`` (several API replicas, spread round robin)."""
    sessions = [httpx.Client(base_url=urls[c % len(urls)], timeout=120) for c in range(clients)]
    try:
        for session in sessions:
            session.get("/healthz").raise_for_status()  # open every connection before the clock starts

        def one(client: int, i: int) -> None:
            body = {"query": QUESTIONS[i % len(QUESTIONS)], "region": regions[i % len(regions)], "k": k, **EVERY}
            sessions[client].post("/v1/query", json=body).raise_for_status()

        return _concurrently(clients, queries, one)
    finally:
        for session in sessions:
            session.close()


# -- a kb server on a filled store ---------------------------------------------------------------------


@contextmanager
def served(data: Path, timeout: float = 600) -> Iterator[Server]:
    """A kb process on 127.0.0.1 serving the filled ledger in ``data`` as it is (its files were never on
    disk, so no folder sync), with the same ``regions.yaml`` the fill used."""
    port = free_port()
    docs = Path(tempfile.mkdtemp(prefix="kb-bench-docs-"))
    (docs / "regions.yaml").write_text(regions_yaml())
    try:
        with started([sys.executable, __file__, "--serve", str(port), str(data), str(docs)], port, timeout) as server:
            yield server
    finally:
        shutil.rmtree(docs, ignore_errors=True)


def _serve(port: int, data: Path, docs: Path) -> None:
    import uvicorn

    from kb.server.app import create_app

    settings = Settings(docs=docs, data=data, watch=False)
    uvicorn.run(create_app(settings, sync_folder=False), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve a filled store (used by the benchmarks).")
    parser.add_argument("--serve", nargs=3, metavar=("PORT", "DATA", "DOCS"), required=True)
    args = parser.parse_args()
    _serve(int(args.serve[0]), Path(args.serve[1]), Path(args.serve[2]))


def write_figures(figures: dict[str, object], out: Path) -> None:
    """The figures of one benchmark as JSON, for ``bench/chart.py`` and ``docs/benchmarks.md``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(f"figures written to {out}")
