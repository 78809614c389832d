"""Files other than Markdown: conversion cost per page, save-to-served, and bulk drops against the encoder.

1. Conversion: DOCX, PDF and HTML of 1, 10 and 30 pages (sections; the PDF puts each on its own page), each
   section with a ruled table, and PDFs of prose and lists only; median milliseconds per file and per page,
   with kb's converters (ingest/convert.py).
2. Save-to-served through ``kb serve`` and its watcher: a 10-page DOCX and a 10-page PDF saved again and
   again with one sentence changed (an editor's atomic save); the clock runs from the rename until the
   new version exists and a query serves the sentence.
3. Bulk drop: ``--bulk`` files, a quarter each Markdown, DOCX, PDF and HTML of 2 pages, copied in at once;
   seconds until every one is in force, against the encoder alone on the same chunk texts.

    python bench/formats.py            # 20 saves of each, 200 files
    python bench/formats.py --smoke    # seconds, for CI
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.live_latency import floor, pct, wait_served  # noqa: E402
from bench.office import Outline, Section, filler, long_outline, write_docx, write_html, write_pdf  # noqa: E402
from bench.server import KB, free_port, running  # noqa: E402
from kb.embedder import Embedder, load_embedder  # noqa: E402
from kb.ingest.chunking import Chunker  # noqa: E402
from kb.ingest.convert import Format, format_of, to_markdown  # noqa: E402
from kb.ingest.markdown import parse_sections  # noqa: E402

WRITERS: dict[Format, Callable[[Path, Outline], Path]] = {
    Format.docx: write_docx,
    Format.pdf: write_pdf,
    Format.html: write_html,
}


def conversion(sizes: list[int], repeat: int) -> None:
    print("| format | pages | ms per file | ms per page |")
    print("|---|---|---|---|")
    cases = [(fmt.value, fmt, True) for fmt in WRITERS] + [("pdf, no tables", Format.pdf, False)]
    with tempfile.TemporaryDirectory() as tmp:
        for label, fmt, tables in cases:
            write = WRITERS[fmt]
            for pages in sizes:
                outline = long_outline("Returns", pages, tables=tables)
                data = write(Path(tmp, f"p{pages}.{fmt.value}"), outline).read_bytes()
                to_markdown("bench", data, fmt, 1 << 30)  # imports are paid once per process, not per file
                times = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    to_markdown("bench", data, fmt, 1 << 30)
                    times.append(time.perf_counter() - started)
                ms = statistics.median(times) * 1000
                print(f"| {label} | {pages} | {ms:.0f} | {ms / pages:.1f} |")


def with_marker(title: str, marker: str, pages: int) -> Outline:
    """A ``pages``-section outline whose first section carries ``marker``."""
    rest = long_outline(title, pages).sections
    first = Section("Latest change", f"{marker} {filler(150)}")
    return Outline(title, (first, *rest[1:]))


def save(path: Path, fmt: Format, outline: Outline) -> None:
    """An editor's atomic save: a complete temporary file renamed over the target."""
    temp = path.with_name(f".{path.name}.tmp")
    WRITERS[fmt](temp, outline)
    os.replace(temp, path)


def chunk_texts(embedder: Embedder, path: Path) -> list[str]:
    fmt = format_of(path.name)
    data = path.read_bytes()
    text = data.decode() if fmt is Format.markdown else to_markdown(path.name, data, fmt or Format.html, 1 << 30)
    title, sections = parse_sections(text)
    return [c.embed_text for c in Chunker(embedder.tokens, embedder.max_text_tokens).chunk(title or "", sections)]


def in_force(http: httpx.Client) -> int:
    count: int = http.get("/readyz").json()["index"]["series_in_force"]
    return count


def bulk(http: httpx.Client, embedder: Embedder, docs: Path, staging: Path, count: int) -> tuple[float, float]:
    staging.mkdir()
    kinds = [Format.markdown, Format.docx, Format.pdf, Format.html]
    for n in range(count):
        fmt = kinds[n % len(kinds)]
        outline = with_marker(f"Bulk policy {n}", f"Bulk document {n} sets fee {n}.", 2)
        if fmt is Format.markdown:
            text = f"# {outline.title}\n\n" + "\n\n".join(f"## {s.heading}\n\n{s.paragraph}" for s in outline.sections)
            (staging / f"bulk-{n}.md").write_text(text, encoding="utf-8")
        else:
            WRITERS[fmt](staging / f"bulk-{n}.{fmt.value}", outline)
    files = sorted(staging.iterdir())
    raw = floor(embedder, [c for f in files for c in chunk_texts(embedder, f)])
    expected = in_force(http) + count
    started = time.perf_counter()
    for f in files:
        shutil.copy(f, docs / f.name)
    while in_force(http) < expected:
        time.sleep(0.05)
    return time.perf_counter() - started, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--saves", type=int, default=20)
    parser.add_argument("--bulk", type=int, default=200)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    sizes, repeat = ([1, 10, 30], 5) if not args.smoke else ([1, 10], 1)
    if args.smoke:
        args.saves, args.bulk = 2, 8

    conversion(sizes, repeat)

    work = Path(tempfile.mkdtemp(prefix="kb-formats-"))
    docs = work / "policies"
    shutil.copytree(ROOT / "policies", docs)
    embedder = load_embedder(backend=os.environ.get("KB_EMBEDDER", "auto"), cache_dir=work / "data" / "models")
    port = free_port()
    served: dict[Format, list[float]] = {Format.docx: [], Format.pdf: []}
    with running([KB, "serve", "--docs", str(docs), "--data", str(work / "data"), "--port", str(port)], port) as http:
        for fmt in served:
            target = docs / f"ten-pages.{fmt.value}"
            doc_id = f"ten-pages-{fmt.value}"
            (docs / f"ten-pages.{fmt.value}.meta.yaml").write_text(f"doc_id: {doc_id}\n")
            save(target, fmt, with_marker("Ten pages", "The first marker sentence.", 10))
            wait_served(http, doc_id, 1, "The first marker sentence.")
            for i in range(args.saves):
                marker = f"Edit number {i} sets the {fmt.value} restocking fee to {i + 3} euros."
                save(target, fmt, with_marker("Ten pages", marker, 10))
                served[fmt].append(wait_served(http, doc_id, i + 2, marker))
        bulk_seconds, raw = bulk(http, embedder, docs, work / "staging", args.bulk)

    print()
    for fmt, samples in served.items():
        print(f"save-to-served, 10-page {fmt.value.upper()} (n={len(samples)}): p50 {pct(samples, .5):.0f} ms  "
              f"p95 {pct(samples, .95):.0f} ms  max {max(samples) * 1000:.0f} ms")  # fmt: skip
    print(f"bulk drop of {args.bulk} mixed files (Markdown, DOCX, PDF, HTML; 2 pages each): all in force in "
          f"{bulk_seconds:.1f} s; encoder alone on the same chunks {raw:.1f} s; ratio {raw / bulk_seconds:.2f} "
          "of the encoder's throughput")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
