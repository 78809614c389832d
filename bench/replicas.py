"""Scale-out figures: query throughput of 1 and 2 API replicas, propagation latency and failover time.

Real parts on 127.0.0.1 (bench/engines.py): PostgreSQL for the ledger, ``chroma run`` for the vectors, and
``kb serve`` processes.

1. Throughput: a synthetic store (bench/synthetic.py, as bench/query_latency.py: ``--docs`` documents in global
   plus variants in 9 regions, ``--chunks`` chunks each, ``--history`` superseded versions, random unit vectors,
   every query embedded for real) is filled into PostgreSQL + Chroma through ``KnowledgeBase.apply``. Then the
   query load of bench/query_latency.py (``--clients`` concurrent clients, questions and regions in turn) runs
   against one ``kb serve --role api`` replica, then against two, the clients spread round robin over them.
2. Propagation and failover, on a fresh ledger and Chroma server: a writer on a folder, a standby writer and two
   replicas. Each of ``--saves`` saves is timed from the file's write until every replica serves the document;
   then the writer is killed (-9) and the standby's takeover and the first save served after it are timed.

    python bench/replicas.py             # 500 documents (about 10k chunks in force), 8 clients
    python bench/replicas.py --smoke     # seconds, for CI (writes no JSON)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.engines import chroma, free_port, new_database, postgres  # noqa: E402
from bench.synthetic import (  # noqa: E402
    REGIONS,
    fill,
    http_throughput,
    warm,
    write_figures,
)
from kb.knowledge import KnowledgeBase  # noqa: E402
from kb.settings import Settings  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "replicas.json"
KB = [sys.executable, "-c", "from kb.server.cli import main; main()", "serve"]


class Process:
    """A ``kb serve`` on 127.0.0.1 with its own data folder (holding a copy of the model export)."""

    def __init__(self, work: Path, name: str, role: str, env: dict[str, str], models: Path, docs: Path) -> None:
        self.name, self.port, self.data = name, free_port(), work / name
        if not (self.data / "models").exists():
            shutil.copytree(models, self.data / "models")
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, "KB_LOG_LEVEL": "WARNING", "KB_DEBOUNCE_MS": "50", **env}
        with (work / f"{name}.log").open("ab") as log:
            self.process = subprocess.Popen(
                [*KB, "--role", role, "--docs", str(docs), "--data", str(self.data), "--port", str(self.port)],
                env=environment, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def get(self, path: str) -> httpx.Response | None:
        try:
            return httpx.get(self.url + path, timeout=5)
        except httpx.TransportError:
            return None

    def ready(self, timeout: float = 600) -> None:
        until(lambda: (r := self.get("/readyz")) is not None and r.status_code == 200, timeout, f"{self.name} ready")

    def serves(self, doc_id: str) -> bool:
        response = self.get(f"/v1/documents/{doc_id}")
        return response is not None and response.status_code == 200

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def until(condition: Callable[[], object], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"{what}: not within {timeout} s")
        time.sleep(0.005)
    return time.monotonic() - start


@contextmanager
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    try:
        yield started
    finally:
        for process in started:
            process.stop()


def measure_throughput(args: argparse.Namespace, server: str, work: Path) -> dict[str, Any]:
    ledger = new_database(server, "throughput")
    with ExitStack() as stack:
        chroma_url = stack.enter_context(chroma(work / "chroma-throughput"))
        env = {"KB_LEDGER_URL": ledger, "KB_CHROMA_URL": chroma_url}
        docs = work / "fill-docs"
        docs.mkdir()
        settings = Settings(docs=docs, data=work / "fill", watch=False, ledger_url=ledger, chroma_url=chroma_url)
        kb = KnowledgeBase.open(settings)
        started = time.monotonic()
        fill(kb, args.docs, args.chunks, args.history, 0.1111)
        filled, stats = time.monotonic() - started, kb.stats()
        kb.close()
        print(f"filled {stats['chunks_resident']:,} chunks in force ({stats['chunks_stored']:,} stored) into "
              f"PostgreSQL + Chroma in {filled:.0f} s")  # fmt: skip
        replicas = stack.enter_context(processes())
        for n in (1, 2):
            replicas.append(Process(work, f"api{n}", "api", env, settings.data / "models", work / "no-docs"))
        for replica in replicas:
            replica.ready()
        regions = ["global", *REGIONS]
        for replica in replicas:
            with httpx.Client(base_url=replica.url, timeout=120) as http:
                warm(http, regions)
        one = http_throughput([replicas[0].url], regions, args.clients, args.queries, args.k)
        two = http_throughput([r.url for r in replicas], regions, args.clients, args.queries, args.k)
    print(f"throughput, {args.clients} clients: 1 replica {one:.1f} queries/s, 2 replicas (round robin) "
          f"{two:.1f} queries/s: {two / one:.2f}x on {os.cpu_count()} cores")  # fmt: skip
    return {"chunks_in_force": stats["chunks_resident"], "one_replica_qps": round(one, 2),
            "two_replicas_qps": round(two, 2), "ratio": round(two / one, 3), "cores": os.cpu_count()}  # fmt: skip


def _save(docs: Path, n: int) -> tuple[str, float]:
    doc_id = f"note-{n}"
    (docs / f"{doc_id}.md").write_text(
        f"---\ndoc_id: {doc_id}\n---\n# Note {n}\n\nParcel rule {n}: ship within {n} days.\n", encoding="utf-8"
    )
    return doc_id, time.monotonic()


def measure_propagation(args: argparse.Namespace, server: str, work: Path, models: Path) -> dict[str, Any]:
    ledger = new_database(server, "propagation")
    docs = work / "policies"
    docs.mkdir()
    _save(docs, 0)
    with ExitStack() as stack:
        chroma_url = stack.enter_context(chroma(work / "chroma-propagation"))
        env = {"KB_LEDGER_URL": ledger, "KB_CHROMA_URL": chroma_url}
        started = stack.enter_context(processes())
        writer = Process(work, "writer", "writer", env, models, docs)
        started.append(writer)
        writer.ready()
        standby = Process(work, "standby", "writer", env, models, docs)
        replicas = [Process(work, f"follower{n}", "api", env, models, work / "no-docs") for n in (1, 2)]
        started += [standby, *replicas]
        for replica in replicas:
            replica.ready()
        until(lambda: (r := standby.get("/healthz")) is not None and r.json().get("state") == "standby", 120, "standby")
        delays = []
        for n in range(1, args.saves + 1):
            doc_id, saved = _save(docs, n)
            until(lambda d=doc_id: all(r.serves(d) for r in replicas), 30, f"{doc_id} served")
            delays.append(time.monotonic() - saved)
        p50, p95 = statistics.median(delays), sorted(delays)[int(0.95 * (len(delays) - 1))]
        print(f"propagation, save -> served by both replicas ({len(delays)} saves): p50 {p50 * 1000:.0f} ms, "
              f"p95 {p95 * 1000:.0f} ms")  # fmt: skip

        writer.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        took = until(lambda: (r := standby.get("/healthz")) is not None and r.json().get("state") != "standby", 30,
                     "takeover")  # fmt: skip
        doc_id, _ = _save(docs, args.saves + 1)
        until(lambda: all(r.serves(doc_id) for r in replicas), 60, "a save served after the takeover")
        served = time.monotonic() - killed
        print(f"failover: lease taken {took:.2f} s after kill -9; a save made then was served by both replicas "
              f"{served:.2f} s after the kill")  # fmt: skip
    return {"saves": len(delays), "propagation_p50_ms": round(p50 * 1000, 1),
            "propagation_p95_ms": round(p95 * 1000, 1), "failover_lease_s": round(took, 2),
            "failover_served_s": round(served, 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=500, help="documents in global (variants in 9 regions on top)")
    parser.add_argument("--chunks", type=int, default=10, help="chunks per version")
    parser.add_argument("--history", type=int, default=2, help="superseded versions per series")
    parser.add_argument("--queries", type=int, default=400, help="queries per throughput run")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--saves", type=int, default=20, help="saves timed for propagation")
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--out", type=Path, help="JSON figures [bench/out/replicas.json]")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.docs, args.history, args.queries, args.saves = 20, 1, 40, 3
    work = Path(tempfile.mkdtemp(prefix="kb-bench-replicas-"))
    try:
        with postgres() as server:
            figures = measure_throughput(args, server, work)
            figures |= measure_propagation(args, server, work, work / "fill" / "models")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures |= {"clients": args.clients, "queries": args.queries, "measured_at": datetime.now(UTC).isoformat()}
    if not args.smoke or args.out:
        write_figures({"benchmark": "replicas", **figures}, args.out or OUT)


if __name__ == "__main__":
    main()
