"""Scale: up to 1M chunks through kb's own write path on this machine: write rate, memory, query latency.

The store is filled with synthetic unit vectors through ``KnowledgeBase.apply`` (ledger transaction,
Chroma, index; bench/synthetic.py): 10 chunks a version, one superseded version per series (11 chunks
stored per series), and variants in 9 regions for 1 document in 9. Writing to Chroma costs about 1 ms of
CPU a chunk here, so the fill stops when ``--fill-budget`` seconds have passed; the bench then prints the
size it reached and the time ``--chunks`` would take at the rate of the last fifth of the fill.

Then a kb process serves the store on 127.0.0.1: its start-up (the store checked against the ledger, and
what is in force loaded into memory), single-client ``POST /v1/query`` p50/p99 on the ``global`` chain and
then over all 10 regions, and its resident memory after each; recall@k of every region against brute force
over the chunks in force (from the ledger and the stored vectors, not the index). Writes bench/out/scale.json
for bench/chart.py.

    python bench/scale.py                          # towards 1M chunks; the fill stops after 420 s
    python bench/scale.py --fill-budget 1800       # further; --data keeps the store for another run
    python bench/scale.py --smoke                  # seconds, for CI (writes no JSON)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic import (  # noqa: E402
    REGIONS,
    fill,
    http_latency,
    open_store,
    percentiles,
    recall,
    report_progress,
    series_count,
    served,
    warm,
    write_figures,
)
from kb.settings import Settings  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "scale.json"
CHUNKS, HISTORY, VARIANT_SHARE = 10, 1, 0.1111


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=1_000_000, help="chunks to store in Chroma")
    parser.add_argument("--fill-budget", type=float, default=420, help="seconds after which the fill stops")
    parser.add_argument("--queries", type=int, default=300, help="queries per latency run")
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--data", type=Path, help="keep (and reuse) the filled store here")
    parser.add_argument("--out", type=Path, help="JSON figures [bench/out/scale.json]")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.chunks, args.queries = 3000, 30

    per_series = CHUNKS + HISTORY  # each superseded version differs from the next in one chunk
    docs = max(1, round(args.chunks / per_series / (series_count(1000, VARIANT_SHARE) / 1000)))
    work = Path(tempfile.mkdtemp(prefix="kb-scale-"))
    try:
        measure(args, docs, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, docs: int, work: Path) -> None:
    """Fill (or reuse) the store, serve it, print the figures and write them."""
    data = args.data or work / "data"
    settings = Settings(docs=work / "policies", data=data, watch=False)
    settings.docs.mkdir(parents=True)

    kb = open_store(settings)
    reused = bool(kb.ledger.versions())
    marks: list[tuple[float, int]] = [(0.0, 0)]
    fill_seconds, complete = 0.0, True
    if not reused:
        started = time.monotonic()
        printer = report_progress(started)

        def progress(done: int, total: int, stored: int) -> None:
            marks.append((time.monotonic() - started, stored))
            printer(done, total, stored)

        written = fill(kb, docs, CHUNKS, HISTORY, VARIANT_SHARE, deadline=started + args.fill_budget, progress=progress)
        fill_seconds = time.monotonic() - started
        complete = written == series_count(docs, VARIANT_SHARE)
        print(f"fill: {written:,} of {series_count(docs, VARIANT_SHARE):,} series in {fill_seconds:.0f} s")
    stats = kb.stats()
    model = kb.embedder.model_id
    regions = ["global", *REGIONS]
    found = recall(kb, regions, args.k)
    kb.close()
    fill_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    launched = time.monotonic()
    with served(data, timeout=3600) as server:
        start_seconds = time.monotonic() - launched
        warm(server.http, ["global"])
        one = http_latency(server.http, ["global"], args.queries, args.k)
        one_rss, _ = server.memory_mb()
        warm(server.http, regions)
        every = http_latency(server.http, regions, args.queries, args.k)
        all_rss, server_peak = server.memory_mb()

    stored = stats["chunks_stored"]
    print(
        f"store: {stored:,} chunks in Chroma, {stats['chunks_resident']:,} in force, {stats['series']:,} series; "
        f"encoder {model}"
    )
    figures: dict[str, object] = {
        "benchmark": "scale",
        "chunks_target": args.chunks,
        "chunks_stored": stored,
        "chunks_in_force": stats["chunks_resident"],
        "series": stats["series"],
        "encoder": model,
    }
    if not reused:
        rate = stored / fill_seconds
        # The rate of the last fifth of the fill: Chroma's writes slow down as the collection grows.
        cut = next(m for m in marks if m[1] >= 0.8 * stored)
        late = (stored - cut[1]) / max(fill_seconds - cut[0], 1e-9) if stored > cut[1] else rate
        estimate = fill_seconds + max(args.chunks - stored, 0) / late
        print(
            f"write path (KnowledgeBase.apply + Chroma): {rate:,.0f} chunks/s overall, {late:,.0f} chunks/s over the "
            f"last fifth; peak RSS of the filling process {fill_peak:,.0f} MB"
        )
        if not complete:
            print(
                f"the fill stopped at the budget: {stored:,} of {args.chunks:,} chunks; at the last fifth's rate all "
                f"{args.chunks:,} would take about {estimate / 60:.0f} min"
            )
        figures |= {
            "fill_seconds": round(fill_seconds, 1),
            "write_chunks_per_s": round(rate, 1),
            "write_chunks_per_s_last_fifth": round(late, 1),
            "estimated_fill_seconds_for_target": round(estimate),
            "fill_peak_rss_mb": round(fill_peak),
        }
    p50, p99 = percentiles(one)
    a50, a99 = percentiles(every)
    print(f"recall@{args.k} against brute force over the chunks in force, every region: {found:.3f}")
    print(f"kb process start-up on this store (store check + loading what is in force): {start_seconds:.0f} s")
    print(f"POST /v1/query, global chain:   p50 {p50:.1f} ms  p99 {p99:.1f} ms; server RSS {one_rss:,.0f} MB")
    print(f"POST /v1/query, all 10 regions: p50 {a50:.1f} ms  p99 {a99:.1f} ms; server RSS {all_rss:,.0f} MB "
          f"(peak {server_peak:,.0f} MB)")  # fmt: skip
    figures |= {
        "recall": round(found, 4),
        "server_start_seconds": round(start_seconds, 1),
        "global_p50_ms": round(p50, 2),
        "global_p99_ms": round(p99, 2),
        "all_regions_p50_ms": round(a50, 2),
        "all_regions_p99_ms": round(a99, 2),
        "server_rss_one_chain_mb": round(one_rss),
        "server_rss_all_chains_mb": round(all_rss),
        "server_peak_rss_mb": round(server_peak),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if not args.smoke or args.out:
        write_figures(figures, args.out or OUT)


if __name__ == "__main__":
    main()
