"""Query latency and throughput with a large history: /v1/query over HTTP against the raw reference.

The store is filled through kb's own write path (``KnowledgeBase.apply``: ledger transaction, Chroma,
index) with synthetic unit vectors, so no hour is spent embedding; every query is embedded for real
(bench/synthetic.py). Layout: ``--docs`` documents in ``global`` plus variants in 9 more regions,
``--chunks`` chunks each, and ``--history`` superseded versions per series, each of which changed one chunk.

Prints p50/p99 of single-client ``POST /v1/query`` (uvicorn on 127.0.0.1), the throughput of ``--clients``
concurrent HTTP clients, recall@k against brute force over the chunks in force, and the same for the
reference: the query embedding plus one unfiltered HNSW query on the same Chroma collection, in-process
(one thread, then ``--clients`` threads). Throughput is measured in ``--rounds`` alternating turns (the
reference, then kb; the data folder is one process's at a time) and the ratio is the median of the turns':
on this machine the reference alone moves by 15% between runs minutes apart. Writes the figures to
bench/out/query_latency.json for bench/chart.py (points of other sizes already there are kept).

    python bench/query_latency.py                              # 100k chunks in force, 10 superseded versions
    python bench/query_latency.py --sizes 10000,30000,100000   # one point per size, for the chart
    python bench/query_latency.py --smoke                      # seconds, for CI (writes no JSON)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic import (  # noqa: E402
    REGIONS,
    fill,
    http_latency,
    http_throughput,
    met,
    open_store,
    percentiles,
    recall,
    reference_latency,
    reference_throughput,
    report_progress,
    series_count,
    served,
    warm,
)
from kb.settings import Settings  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "query_latency.json"


def measure(args: argparse.Namespace, docs: int, data: Path, work: Path) -> dict[str, Any]:
    """Fill (or reuse) the store in ``data``, measure it, print the figures and return them."""
    settings = Settings(docs=work / "policies", data=data, watch=False)
    settings.docs.mkdir(parents=True, exist_ok=True)
    kb = open_store(settings)
    started = time.monotonic()
    reused = bool(kb.ledger.versions())
    if not reused:
        fill(kb, docs, args.chunks, args.history, args.variant_share, progress=report_progress(started))
    fill_seconds = time.monotonic() - started
    stats = kb.stats()
    regions = ["global", *REGIONS]
    found = recall(kb, regions, args.k)
    reference = reference_latency(kb, args.queries, args.k)
    model = kb.embedder.model_id
    samples: list[float] = []
    turns: list[tuple[float, float]] = []
    for turn in range(args.rounds):
        if turn:
            kb = open_store(settings)
        reference_qps = reference_throughput(kb, args.clients, args.throughput_queries, args.k)
        kb.close()
        with served(data) as server:
            warm(server.http, regions)
            if not turn:
                samples = http_latency(server.http, regions, args.queries, args.k)
            qps = http_throughput([str(server.http.base_url)], regions, args.clients, args.throughput_queries, args.k)
            turns.append((qps, reference_qps))

    p50, p99 = percentiles(samples)
    r50, r99 = percentiles(reference)
    ratio = statistics.median(kb_side / ref_side for kb_side, ref_side in turns)
    qps, reference_qps = (statistics.median(side) for side in zip(*turns, strict=True))
    print(
        f"store: {stats['chunks_stored']:,} chunks in Chroma, {stats['series']:,} series, "
        f"{stats['chunks_resident']:,} chunks resident (in force or future), "
        f"{args.history} superseded versions per series; encoder {model}"
    )
    if not reused:
        print(f"fill through KnowledgeBase.apply: {fill_seconds:.0f} s")
    print(f"kb  POST /v1/query to a kb process on 127.0.0.1: p50 {p50:.1f} ms  p99 {p99:.1f} ms  (n={len(samples)})")
    print(f"ref embed + unfiltered Chroma query in-process:  p50 {r50:.1f} ms  p99 {r99:.1f} ms")
    print(f"ratio kb/ref: p50 {p50 / r50:.2f}x  p99 {p99 / r99:.2f}x")
    for turn, (kb_qps, ref_qps) in enumerate(turns, 1):
        print(f"throughput, {args.clients} concurrent clients, turn {turn}: kb over HTTP {kb_qps:.1f} queries/s, "
              f"ref in-process {ref_qps:.1f} queries/s; ratio {kb_qps / ref_qps:.2f}x")  # fmt: skip
    print(f"throughput ratio, median of {len(turns)} turns: {ratio:.2f}x (goal >= 1.0x: {met(ratio >= 1.0)})")
    print(f"recall@{args.k} against brute force over the chunks in force: {found:.3f}")
    print(f"goal p50 <= 25 ms: {met(p50 <= 25)}; goal p99 <= 60 ms: {met(p99 <= 60)}")
    return {
        "chunks_in_force": stats["chunks_resident"],
        "chunks_stored": stats["chunks_stored"],
        "series": stats["series"],
        "history": args.history,
        "kb_p50_ms": round(p50, 2),
        "kb_p99_ms": round(p99, 2),
        "ref_p50_ms": round(r50, 2),
        "ref_p99_ms": round(r99, 2),
        "kb_qps": round(qps, 2),
        "ref_qps": round(reference_qps, 2),
        "qps_ratio": round(ratio, 3),
        "recall": round(found, 4),
        "queries": args.queries,
        "encoder": model,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def save(points: list[dict[str, Any]], clients: int, k: int, out: Path) -> None:
    """Merge into ``out``: a point of the same size and history is replaced, others are kept."""
    old = json.loads(out.read_text()) if out.exists() else {}
    fresh = {(p["chunks_in_force"], p["history"]) for p in points}
    kept = [p for p in old.get("points", []) if (p["chunks_in_force"], p["history"]) not in fresh]
    merged = sorted(kept + points, key=lambda p: (p["history"], p["chunks_in_force"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "query_latency", "clients": clients, "k": k, "points": merged}, indent=2))
    print(f"figures written to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=5000, help="documents in global")
    parser.add_argument("--chunks", type=int, default=10, help="chunks per version")
    parser.add_argument("--history", type=int, default=10, help="superseded versions per series")
    parser.add_argument(
        "--variant-share", type=float, default=0.1111, help="share of documents with a variant per region"
    )
    parser.add_argument("--sizes", help="comma-separated chunks in force, one measured store each (sets --docs)")
    parser.add_argument("--queries", type=int, default=400, help="queries per latency run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients of the throughput run")
    parser.add_argument("--throughput-queries", type=int, default=2000, help="queries per throughput turn")
    parser.add_argument("--rounds", type=int, default=3, help="throughput turns, each the reference then kb")
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--data", type=Path, help="keep (and reuse) the filled store here (a folder per size)")
    parser.add_argument("--out", type=Path, help="JSON figures [bench/out/query_latency.json]")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.docs, args.history, args.queries, args.sizes = 60, 2, 40, None
        args.throughput_queries, args.rounds = 40, 1

    per_doc = args.chunks * series_count(1000, args.variant_share) / 1000
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [None]
    work = Path(tempfile.mkdtemp(prefix="kb-bench-"))
    points = []
    try:
        for size in sizes:
            docs = max(1, round(size / per_doc)) if size else args.docs
            if size and args.data:
                data = args.data / f"in-force-{size}-history-{args.history}"
            else:
                data = args.data or work / f"data-{docs}"
            if len(sizes) > 1:
                print(f"\n== {size:,} chunks in force ({docs:,} documents in global)")
            points.append(measure(args, docs, data, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not args.smoke or args.out:
        save(points, args.clients, args.k, args.out or OUT)


if __name__ == "__main__":
    main()
