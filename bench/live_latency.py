"""Save-to-served latency and bulk drops through the real watcher, over HTTP.

1. Save-to-served: an edit of one paragraph of a 5 KB document, and a new 5 KB document, written with an
   editor's atomic save; the clock runs from the rename to the first ``POST /v1/query`` whose top result
   holds the new text. Printed beside the floor: the encoder alone on the chunks that changed.
2. Bulk drop: ``--bulk`` files copied into the folder at once; the time until every one is listed by
   ``/v1/documents``, against the encoder alone on the same chunk texts (same batch size), and query
   latency while it runs against idle.

    python bench/live_latency.py            # 30 saves of each kind, 500 files
    python bench/live_latency.py --smoke    # seconds, for CI
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import KB, free_port, running  # noqa: E402
from kb.embedder import Embedder, load_embedder  # noqa: E402
from kb.ingest.chunking import Chunker  # noqa: E402
from kb.ingest.markdown import parse_sections  # noqa: E402

WORDS = (
    "customers may return unopened appliances within thirty days of delivery for a full refund to the original "
    "payment method while opened items are inspected first and refunded when complete clean and undamaged"
).split()


def document(n: int, marker: str, size: int = 5_000) -> str:
    """About ``size`` bytes of Markdown in sections; ``marker`` is the sentence that changes."""
    sections = [f"# Policy {n}\n", f"## Latest change\n\n{marker}\n"]
    i = 0
    while sum(len(s) for s in sections) < size:
        words = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(70))
        sections.append(f"## Section {i}\n\nRule {n}.{i}: {words}.\n")
        i += 1
    return f"---\ndoc_id: bench-{n}\n---\n" + "\n".join(sections)


def save(path: Path, text: str) -> None:
    """An editor's atomic save: a temporary file renamed over the target."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def wait_served(http: httpx.Client, doc_id: str, versions: int, marker: str, timeout: float = 30) -> float:
    """Poll the cheap history endpoint until the new version exists (a query costs an embedding, and a
    poller that embeds every 5 ms would slow down the very ingest it measures), then prove it with a query."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        response = http.get(f"/v1/documents/{doc_id}")
        if response.status_code == 200 and len(response.json()["versions"]) >= versions:
            served = time.perf_counter() - started
            results = http.post("/v1/query", json={"query": marker, "k": 10}).json()["results"]
            if not any(marker in result["text"] for result in results):
                raise SystemExit(f"version {versions} of {doc_id} exists but its text is not served")
            return served
        time.sleep(0.005)
    raise SystemExit(f"not served within {timeout} s: {marker}")


def chunk_texts(embedder: Embedder, text: str) -> list[str]:
    chunker = Chunker(embedder.tokens, embedder.max_text_tokens)
    title, sections = parse_sections(text.split("---\n", 2)[2])
    return [c.embed_text for c in chunker.chunk(title or "", sections)]


def floor(embedder: Embedder, chunks: list[str]) -> float:
    """The encoder alone on these chunk texts, as ingest calls it."""
    started = time.perf_counter()
    embedder.encode(chunks)
    return time.perf_counter() - started


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def query_loop(http: httpx.Client, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        http.post("/v1/query", json={"query": "how many days to return an opened blender", "k": 5}).raise_for_status()
        out.append(time.perf_counter() - t)
        time.sleep(0.02)


def in_force(http: httpx.Client) -> int:
    """Documents in force, from /readyz: cheap, unlike listing them, which would load the server it measures."""
    count: int = http.get("/readyz").json()["index"]["series_in_force"]
    return count


def drop(
    http: httpx.Client, embedder: Embedder, docs: Path, staging: Path, first: int, count: int
) -> tuple[float, float]:
    """Copy ``count`` new files in at once; seconds until all are listed, and the encoder alone on them."""
    staging.mkdir()
    texts = [document(first + n, f"Bulk document {first + n} marker.", size=1_500) for n in range(count)]
    for n, text in enumerate(texts):
        (staging / f"bulk-{first + n}.md").write_text(text, encoding="utf-8")
    raw = floor(embedder, [c for text in texts for c in chunk_texts(embedder, text)])
    expected = in_force(http) + count
    started = time.perf_counter()
    for n in range(count):
        shutil.copy(staging / f"bulk-{first + n}.md", docs / f"bulk-{first + n}.md")
    while in_force(http) < expected:
        time.sleep(0.05)
    return time.perf_counter() - started, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--saves", type=int, default=30)
    parser.add_argument("--bulk", type=int, default=500)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.saves, args.bulk = 3, 20

    work = Path(tempfile.mkdtemp(prefix="kb-live-"))
    docs = work / "policies"
    shutil.copytree(ROOT / "policies", docs)
    # The server's encoder: the same backend, and the export it will find in its data folder.
    embedder = load_embedder(backend=os.environ.get("KB_EMBEDDER", "auto"), cache_dir=work / "data" / "models")
    port = free_port()
    with running([KB, "serve", "--docs", str(docs), "--data", str(work / "data"), "--port", str(port)], port) as http:
        edit, new, edit_floor, new_floor = [], [], [], []
        target = docs / "bench-edit.md"
        save(target, document(0, "The first marker sentence."))
        wait_served(http, "bench-0", 1, "The first marker sentence.")
        for i in range(args.saves):
            marker = f"Edit number {i} sets the gift wrapping fee to {i + 3} dollars and {i} cents."
            text = document(0, marker)
            edit_floor.append(floor(embedder, [c for c in chunk_texts(embedder, text) if marker in c]))
            save(target, text)
            edit.append(wait_served(http, "bench-0", i + 2, marker))
            marker = f"New document {i} introduces a loyalty bonus of {i + 10} points per visit."
            text = document(i + 1, marker)
            new_floor.append(floor(embedder, chunk_texts(embedder, text)))
            save(docs / f"bench-new-{i}.md", text)
            new.append(wait_served(http, f"bench-{i + 1}", 1, marker))

        idle: list[float] = []
        for _ in range(60):
            t = time.perf_counter()
            http.post("/v1/query", json={"query": "how many days to return an opened blender", "k": 5})
            idle.append(time.perf_counter() - t)
            time.sleep(0.02)

        bulk_seconds, raw = drop(http, embedder, docs, work / "alone", first=1000, count=args.bulk)
        busy: list[float] = []
        stop = threading.Event()
        with httpx.Client(base_url=str(http.base_url), timeout=60) as second:
            prober = threading.Thread(target=query_loop, args=(second, stop, busy))
            prober.start()
            busy_seconds, _ = drop(http, embedder, docs, work / "busy", first=5000, count=args.bulk)
            stop.set()
            prober.join()

    for label, samples, floors in (("edit of one paragraph", edit, edit_floor), ("new file", new, new_floor)):
        print(f"save-to-served, {label} of a 5 KB document: p50 {pct(samples, .5):.0f} ms  "
              f"p95 {pct(samples, .95):.0f} ms  (floor, the encoder alone on what changed: "
              f"p50 {pct(floors, .5):.0f} ms)")  # fmt: skip
    print(f"bulk drop of {args.bulk} files: all served in {bulk_seconds:.1f} s; encoder alone on the same chunks "
          f"{raw:.1f} s; ratio {raw / bulk_seconds:.2f} of the encoder's throughput")  # fmt: skip
    print(f"the same drop while a client queries every 20 ms: all served in {busy_seconds:.1f} s")
    print(f"query latency idle: p50 {pct(idle, .5):.0f} ms p99 {pct(idle, .99):.0f} ms; during the bulk drop: "
          f"p50 {pct(busy, .5):.0f} ms p99 {pct(busy, .99):.0f} ms (n={len(busy)}); "
          f"p99 ratio {pct(busy, .99) / pct(idle, .99):.1f}x")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
