"""Query cost against history depth: the same chunks in force, 1, 10 and 50 versions per document.

One store per depth, filled through kb's own write path with synthetic vectors (bench/synthetic.py); each
version changes one chunk and takes effect a week after the previous one, so the last version of every
series is in force and only history grows. A kb process serves each store on 127.0.0.1, and the queries
go round-robin over them (the same question to each in turn, each first in turn), so load from anything
else on the machine falls on every depth alike.

Prints, per depth, the chunks in Chroma, p50/p99 of ``POST /v1/query`` and recall@k against brute force
over the chunks in force; the goals are recall 1.0 at every depth and p50 at the deepest <= 1.2x the
shallowest. Writes bench/out/history_depth.json for bench/chart.py.

    python bench/history_depth.py             # 10k chunks in force; 1, 10 and 50 versions per document
    python bench/history_depth.py --smoke     # seconds, for CI (writes no JSON)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic import (  # noqa: E402
    EVERY,
    QUESTIONS,
    REGIONS,
    fill,
    met,
    percentiles,
    recall,
    report_progress,
    series_count,
    served,
    warm,
)
from kb.knowledge import KnowledgeBase  # noqa: E402
from kb.settings import Settings  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "history_depth.json"
CHUNKS = 10
VARIANT_SHARE = 0.1111
STEP = timedelta(days=7)
"""Between two versions: 50 versions still end before today, so the last one of each series is in force."""


def build(depth: int, docs: int, data: Path, docs_dir: Path, k: int) -> dict[str, Any]:
    """Fill a store with ``depth`` versions per series; its size, fill time and recall.

    Each store opens its own encoder, as its server will: kb prepares some per data folder (an exported
    ONNX model), and a server that had to prepare it at start-up was measured ~25% slower per query."""
    settings = Settings(docs=docs_dir, data=data, watch=False)
    kb = KnowledgeBase.open(settings)
    started = time.monotonic()
    fill(kb, docs, CHUNKS, depth - 1, VARIANT_SHARE, step=STEP, progress=report_progress(started))
    seconds = time.monotonic() - started
    stats = kb.stats()
    found = recall(kb, ["global", *REGIONS], k)
    model = kb.embedder.model_id
    kb.close()
    return {
        "versions_per_document": depth,
        "chunks_stored": stats["chunks_stored"],
        "chunks_in_force": stats["chunks_resident"],
        "series": stats["series"],
        "fill_seconds": round(seconds, 1),
        "recall": round(found, 4),
        "encoder": model,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", default="1,10,50", help="versions per document, comma-separated")
    parser.add_argument("--in-force", type=int, default=10_000, help="chunks in force at every depth")
    parser.add_argument("--queries", type=int, default=300, help="queries per depth")
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--out", type=Path, help="JSON figures [bench/out/history_depth.json]")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.depths, args.in_force, args.queries = "1,10", 400, 30
    depths = [int(d) for d in args.depths.split(",")]
    docs = max(1, round(args.in_force / (CHUNKS * series_count(1000, VARIANT_SHARE) / 1000)))

    work = Path(tempfile.mkdtemp(prefix="kb-depth-"))
    docs_dir = work / "policies"
    docs_dir.mkdir()
    points = []
    for depth in depths:
        print(f"filling {depth} versions per document ...", file=sys.stderr)
        points.append(build(depth, docs, work / f"depth-{depth}", docs_dir, args.k))

    regions = ["global", *REGIONS]
    samples: dict[int, list[float]] = {depth: [] for depth in depths}
    with ExitStack() as stack:
        servers = {depth: stack.enter_context(served(work / f"depth-{depth}")).http for depth in depths}
        for http in servers.values():
            warm(http, regions)
        for i in range(args.queries):
            body = {"query": QUESTIONS[i % len(QUESTIONS)], "region": regions[i % len(regions)], "k": args.k, **EVERY}
            for depth in depths[i % len(depths) :] + depths[: i % len(depths)]:  # each goes first in turn
                http = servers[depth]
                t = time.perf_counter()
                http.post("/v1/query", json=body).raise_for_status()
                samples[depth].append(time.perf_counter() - t)

    for point in points:
        depth = point["versions_per_document"]
        p50, p99 = percentiles(samples[depth])
        point |= {"p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "queries": len(samples[depth])}
        print(
            f"{depth:3d} versions per document: {point['chunks_stored']:7,} chunks in Chroma, "
            f"{point['chunks_in_force']:,} in force; POST /v1/query p50 {p50:.1f} ms  p99 {p99:.1f} ms; "
            f"recall@{args.k} {point['recall']:.3f}  (filled in {point['fill_seconds']:.0f} s)"
        )
    first, last = points[0], points[-1]
    ratio = last["p50_ms"] / first["p50_ms"]
    print(f"encoder {first['encoder']}; {len(QUESTIONS)} questions over {len(regions)} regions, round-robin")
    print(
        f"goal recall 1.0 at every depth: {met(all(p['recall'] == 1.0 for p in points))}; "
        f"goal p50 at {last['versions_per_document']} versions <= 1.2x at {first['versions_per_document']}: "
        f"{ratio:.2f}x, {met(ratio <= 1.2)}"
    )
    if not args.smoke or args.out:
        out = args.out or OUT
        out.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "benchmark": "history_depth",
            "k": args.k,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        out.write_text(json.dumps(body | {"points": points}, indent=2))
        print(f"figures written to {out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
