"""The index alone, vector against hybrid, at 100k chunks in force: loading, view builds, one edit, queries.

Chunk texts are the sections of bench/corpus.py's synthetic retailer corpus (title and heading prefixed, as
the encoder input is), one block per document; vectors are random unit vectors, so this measures the index
and not the encoder (``/v1/query`` adds the query embedding and HTTP; see query_latency.py). Printed:

- load: counting every chunk's terms (tokenise, stem) and the first merge of the term-major segment;
- view build: the vector matrix of a view, then its lexical part (rows of the merged segment mapped to
  the view, blocks put since the merge stacked);
- an edit: one document replaced, then the first hybrid search (view rebuilt with one unmerged block);
- search: the corpus's questions against the whole view, vector and hybrid (no encoder);
- a background merge.

    python bench/hybrid_index.py                  # 100k chunks
    python bench/hybrid_index.py --chunks 5000    # seconds
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import Question, write_corpus  # noqa: E402
from kb.index import VectorIndex  # noqa: E402
from kb.lexical import LexicalIndex  # noqa: E402

DIM = 384


def sections(path: Path) -> list[str]:
    """Encoder-like texts of one Markdown file: ``title > heading`` then the section body."""
    body = path.read_text(encoding="utf-8").split("\n---\n", 1)[-1]
    title, _, rest = body.partition("\n## ")
    title = title.strip().lstrip("# ").split("\n")[0]
    return [f"{title} > {part.strip()}" for part in ("## " + rest).split("\n## ") if part.strip()]


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms"


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _corpus(chunks: int) -> tuple[list[Question], dict[int, list[str]]]:
    """The generated corpus's questions, and the section texts of its files as blocks up to ``chunks`` in all."""
    work = Path(tempfile.mkdtemp(prefix="kb-hybrid-"))
    folder = work / "policies"
    questions = write_corpus(folder, chunks // 4)
    blocks: dict[int, list[str]] = {}
    for vid, path in enumerate(sorted(folder.rglob("*.md")), 1):
        blocks[vid] = sections(path)
        if sum(len(texts) for texts in blocks.values()) >= chunks:
            break
    shutil.rmtree(work, ignore_errors=True)
    return questions, blocks


def _print_memory(lexical_index: LexicalIndex, chunks: int) -> None:
    counted = sum(c.terms.nbytes + c.counts.nbytes + c.indptr.nbytes + c.lengths.nbytes
                  for c in lexical_index._blocks.values())  # fmt: skip
    merged = lexical_index._merged.segment
    postings = merged._rows.nbytes + merged._counts.nbytes + merged._indptr.nbytes + merged.lengths.nbytes
    print(
        f"memory: term counts per block {counted / 2**20:.0f} MiB, merged postings {postings / 2**20:.0f} MiB, "
        f"vectors {chunks * (DIM + 12) / 2**20:.0f} MiB (int8 rows)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args()

    questions, blocks = _corpus(args.chunks)
    rng = np.random.default_rng(7)

    def loader(version_ids: Collection[int]) -> dict[int, tuple[list[str], np.ndarray, list[str]]]:
        out = {}
        for vid in version_ids:
            vectors = rng.standard_normal((len(blocks[vid]), DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            out[vid] = ([f"{vid}-{i}" for i in range(len(blocks[vid]))], vectors, blocks[vid])
        return out

    every = frozenset(blocks)
    chunks = sum(len(texts) for texts in blocks.values())
    words = sum(len(t.split()) for texts in blocks.values() for t in texts)
    print(f"{chunks:,} chunks in {len(blocks):,} blocks, {words / chunks:.0f} words a chunk")
    started = time.perf_counter()
    vectors = loader(blocks)
    generated = time.perf_counter() - started
    by_id = {cid: v for ids, rows, _ in vectors.values() for cid, v in zip(ids, rows, strict=True)}
    index = VectorIndex(DIM, loader, lambda ids: np.stack([by_id[cid] for cid in ids]))
    index._loader = lambda ids: {vid: vectors[vid] for vid in ids}  # loading then costs the index only
    print(f"load (vectors; terms kept to count)   {_timed(lambda: index.load(every)) :6.2f} s "
          f"(vectors generated apart in {generated:.1f} s)")  # fmt: skip
    lexical_index = index._lexical
    # What a start-up no longer waits for: the background pass (or the first hybrid view) pays it.
    print(f"count terms, first merge              {_timed(lexical_index.merge) :6.2f} s, "
          f"{len(lexical_index.vocabulary):,} terms")  # fmt: skip

    _print_memory(lexical_index, chunks)
    builds, lexical = [], []
    for _ in range(5):
        index._views.clear()
        builds.append(_timed(lambda: index._view(every)))
        lexical.append(_timed(lambda: index._view(every, lexical=True)))
    print(f"view build, vector rows               {_ms(builds)}")
    print(f"view build, lexical part (merged)     {_ms(lexical)}")

    query = rng.standard_normal(DIM).astype(np.float32)
    edits = []
    for n in range(5):  # an owner saves a document: one version replaced, then the first query
        old = sorted(blocks)[n]
        new = max(blocks) + 1
        blocks[new] = [text + " Revised this week." for text in blocks[old]]
        (ids, vecs, texts) = loader([new])[new]
        by_id.update(zip(ids, vecs, strict=True))
        started = time.perf_counter()
        index.put(new, ids, vecs, texts)
        index.drop(old)
        every = every - {old} | {new}
        index.search(query, every, args.k, text="restocking fee for an opened blender")
        edits.append(time.perf_counter() - started)
    print(f"edit: put + drop + first hybrid query {_ms(edits)}")

    texts = [q.text for q in questions[: args.queries]]
    for mode in ("vector", "hybrid"):
        samples = []
        for text in texts:
            samples.append(
                _timed(lambda t=text, m=mode: index.search(query, every, args.k, text=t if m == "hybrid" else None))
            )
        print(f"search {mode:6}                         {_ms(samples)}")
    print(f"background merge (whole index)        {_timed(index._lexical.merge):6.2f} s")


if __name__ == "__main__":
    main()
