"""Ingest throughput and incremental re-ingest: ``kb ingest`` of a generated corpus against the encoder alone.

1. A corpus of ``--documents`` Markdown files (bench/corpus.py: ~5 chunks a document, regional variants,
   superseded and future versions) goes through ``kb ingest`` in its own process, as a user runs it, with
   a timer around its one call of ``kb.ingest.pipeline.sync``: the ingest work, apart from the process start,
   imports, model load and store opening around it. chunks/s is the chunks embedded over that time.
2. The reference: the same encoder (whichever backend the ``KB_*`` settings select, as for ``kb ingest``)
   alone, ``encode`` over exactly the chunk texts kb embedded (kb's own parser and chunker, checked against
   the ledger afterwards), half timed before the ingest and half after, so drifting load on the machine
   falls on both. Goal: kb >= 0.85x the encoder's chunks/s.
3. Incremental: ``kb ingest`` again on the unchanged folder (goal: 0 chunks embedded, <= 5% of the first
   ingest's time), then after a one-paragraph edit of one document (goal: <= 2 chunks embedded).

Writes bench/out/ingest.json.

    python bench/ingest.py                  # 2,000 documents (~10k chunks)
    python bench/ingest.py --smoke          # seconds, for CI (writes no JSON)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import write_corpus  # noqa: E402
from bench.synthetic import met, write_figures  # noqa: E402
from kb.errors import InvalidDocument  # noqa: E402
from kb.ingest.kinds import scan  # noqa: E402
from kb.ingest.pipeline import chunker_for, parse_file  # noqa: E402
from kb.knowledge import KnowledgeBase  # noqa: E402
from kb.settings import Settings  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "ingest.json"
SUMMARY = re.compile(r"(\d+) changes, (\d+) unchanged, (\d+) chunks embedded")


_TIMED_KB = """
import sys, time
import kb.server.cli
from kb.ingest import pipeline

def timed(kb):
    started = time.perf_counter()
    try:
        return pipeline.sync(kb)
    finally:
        print(f"bench: sync took {time.perf_counter() - started:.6f} s", file=sys.stderr)

kb.server.cli.sync = timed
sys.argv[0] = "kb"
kb.server.cli.main()
"""
"""``kb ingest`` (the console script's ``kb.server.cli.main``) with a timer around the folder sync."""


@dataclass(frozen=True)
class Run:
    wall: float
    """Seconds from launching the process to its exit."""
    work: float
    """Seconds in ``sync``: reading, parsing, embedding and writing the folder."""
    changes: int
    unchanged: int
    embedded: int


def kb_ingest(docs: Path, data: Path) -> Run:
    """Run ``kb ingest`` in its own process, as a user would, and read its summary line."""
    argv = [sys.executable, "-c", _TIMED_KB, "ingest", "--docs", str(docs), "--data", str(data)]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - started
    summary, timed = SUMMARY.search(done.stdout), re.search(r"bench: sync took ([0-9.]+) s", done.stderr)
    if summary is None or timed is None:
        raise SystemExit(f"kb ingest exited with {done.returncode} and no summary:\n{done.stdout}\n{done.stderr}")
    if done.returncode:
        print(f"  kb ingest reported failed files:\n{done.stderr.strip()}", file=sys.stderr)
    changes, unchanged, embedded = (int(g) for g in summary.groups())
    return Run(wall, float(timed.group(1)), changes, unchanged, embedded)


def chunk_texts(kb: KnowledgeBase, docs: Path) -> dict[str, str]:
    """The encoder inputs of every chunk of the folder, by chunk id, through kb's own parser and chunker."""
    chunker = chunker_for(kb)
    out: dict[str, str] = {}
    for path in scan(docs):
        try:
            parsed = parse_file(kb, chunker, path, (docs / path).read_bytes(), None)
        except InvalidDocument:
            continue  # kb ingest rejects it too, and embeds nothing of it
        out.update((c.chunk_id, c.embed_text) for c in parsed.chunks)
    return out


def edit_one_paragraph(docs: Path) -> tuple[str, str]:
    """Add a sentence to the first prose paragraph of the first document in force (not a file of an older
    or announced version); its path and the new sentence."""
    path = docs / next(p for p in scan(docs) if not re.search(r"-v\d+\.md$", p))
    text = path.read_text(encoding="utf-8")
    head, body = text.split("\n---\n", 1)
    paragraphs = body.split("\n\n")
    i = next(n for n, p in enumerate(paragraphs) if p[:1].isalpha() and "\n" not in p.strip())
    sentence = "From next month this rule is checked again by the policy owner every quarter."
    paragraphs[i] = paragraphs[i].rstrip() + " " + sentence
    path.write_text(head + "\n---\n" + "\n\n".join(paragraphs), encoding="utf-8")
    return path.relative_to(docs).as_posix(), sentence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSON figures [bench/out/ingest.json]")
    parser.add_argument("--smoke", action="store_true", help="tiny corpus, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.documents = 12

    work = Path(tempfile.mkdtemp(prefix="kb-ingest-"))
    docs = work / "policies"
    write_corpus(docs, args.documents, args.seed)

    # The encoder kb ingest will load (same settings, same environment), and the texts it will embed. Opened
    # on the data folder kb ingest will use, which it leaves empty but for what kb prepares once per folder
    # (an exported ONNX model), so that is not in the first ingest's wall time.
    kb = KnowledgeBase.open(Settings(docs=docs, data=work / "data"))
    embedder = kb.embedder
    texts = list(chunk_texts(kb, docs).values())
    kb.close()
    embedder.encode(texts[:64])  # the first call pays one-off set-up, in kb ingest as well
    half = len(texts) // 2
    started = time.perf_counter()
    embedder.encode(texts[:half])
    raw_seconds = time.perf_counter() - started

    first = kb_ingest(docs, work / "data")

    started = time.perf_counter()
    embedder.encode(texts[half:])
    raw_seconds += time.perf_counter() - started

    with sqlite3.connect(work / "data" / "ledger.sqlite3") as ledger:
        stored = {row[0] for row in ledger.execute("SELECT embed_text FROM chunks")}
    if stored != set(texts):
        print(f"warning: the ledger holds {len(stored)} chunk texts, kb's chunker gave {len(texts)} here; "
              f"{len(stored ^ set(texts))} differ", file=sys.stderr)  # fmt: skip

    again = kb_ingest(docs, work / "data")
    edited, _ = edit_one_paragraph(docs)
    edit = kb_ingest(docs, work / "data")

    kb_rate, raw_rate = first.embedded / first.work, len(texts) / raw_seconds
    print(f"corpus: {args.documents:,} documents, {first.changes:,} versions, {first.embedded:,} chunks embedded; "
          f"encoder {embedder.model_id} ({type(embedder).__name__})")  # fmt: skip
    print(f"kb ingest in its own process: {first.wall:.1f} s wall, of which the ingest work (sync) {first.work:.1f} s "
          f"and {first.wall - first.work:.1f} s process start, model load and opening the store")  # fmt: skip
    print(f"kb  {kb_rate:.1f} chunks/s over the ingest work ({first.embedded / first.wall:.1f} over the wall)")
    print(
        f"ref the encoder alone on the same {len(texts):,} chunk texts: {raw_rate:.1f} chunks/s ({raw_seconds:.1f} s)"
    )
    print(f"ratio kb/ref: {kb_rate / raw_rate:.2f}x (goal >= 0.85x: {met(kb_rate >= 0.85 * raw_rate)})")
    print(f"re-ingest, unchanged: {again.embedded} chunks embedded, {again.unchanged:,} files unchanged; ingest work "
          f"{again.work:.2f} s = {again.work / first.work:.1%} of the first ({again.wall:.1f} s wall = "
          f"{again.wall / first.wall:.0%} of the first's wall) (goal 0 chunks and <= 5%: "
          f"{met(again.embedded == 0 and again.work <= 0.05 * first.work)})")  # fmt: skip
    print(f"re-ingest after a one-paragraph edit of {edited}: {edit.changes} change, {edit.embedded} chunks "
          f"embedded, ingest work {edit.work:.2f} s, {edit.wall:.1f} s wall (goal <= 2 chunks: "
          f"{met(edit.embedded <= 2)})")  # fmt: skip

    figures: dict[str, Any] = {
        "benchmark": "ingest",
        "documents": args.documents,
        "versions": first.changes,
        "chunks_embedded": first.embedded,
        "encoder": embedder.model_id,
        "encoder_class": type(embedder).__name__,
        "wall_seconds": round(first.wall, 2),
        "work_seconds": round(first.work, 2),
        "kb_chunks_per_s": round(kb_rate, 2),
        "ref_chunks_per_s": round(raw_rate, 2),
        "reingest_embedded": again.embedded,
        "reingest_work_seconds": round(again.work, 3),
        "reingest_wall_seconds": round(again.wall, 2),
        "edit_embedded": edit.embedded,
        "edit_work_seconds": round(edit.work, 3),
        "edit_wall_seconds": round(edit.wall, 2),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if not args.smoke or args.out:
        write_figures(figures, args.out or OUT)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
