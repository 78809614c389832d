"""Start-up, first queries and serving memory of a kb process on a filled store (bench/query_latency.py's).

Starts a kb process on ``--data`` (filled by ``python bench/query_latency.py``, reused as it is) and prints:
the seconds from launch to ``/readyz``; the first hybrid ``POST /v1/query`` of each of the 10 region chains
(each builds its view); single-client p50/p99 over all chains once they are built; and the process's resident
memory after one chain and after all 10 (VmRSS, and its peak VmHWM).

    python bench/query_latency.py               # fills bench/out/q100k once, if absent
    python bench/startup.py --data bench/out/q100k
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic import EVERY, QUESTIONS, REGIONS, http_latency, percentiles, served  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a store filled by bench/query_latency.py")
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    regions = ["global", *REGIONS]

    launched = time.monotonic()
    with served(args.data) as server:
        ready = time.monotonic() - launched
        print(f"start-up to /readyz: {ready:.1f} s")
        firsts = []
        for i, region in enumerate(regions):
            body = {"query": QUESTIONS[i % len(QUESTIONS)], "region": region, "k": args.k, **EVERY}
            t = time.perf_counter()
            server.http.post("/v1/query", json=body).raise_for_status()
            firsts.append((time.perf_counter() - t) * 1000)
            if i == 0:
                one_rss, _ = server.memory_mb()
        print(
            "first query of each chain (ms): "
            + ", ".join(f"{r} {ms:.0f}" for r, ms in zip(regions, firsts, strict=True))
        )
        samples = http_latency(server.http, regions, args.queries, args.k)
        p50, p99 = percentiles(samples)
        rss, peak = server.memory_mb()
    print(f"query p50 / p99, 10 chains built: {p50:.1f} / {p99:.1f} ms")
    print(f"RSS after 1 chain: {one_rss:.0f} MB; after 10 chains: {rss:.0f} MB (peak {peak:.0f} MB)")


if __name__ == "__main__":
    main()
