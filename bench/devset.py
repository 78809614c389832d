"""Answer quality on the development set: does the passage that answers come first?

The set (``bench/quality/dev/``): documents of one fictional retailer (long legal-style terms with many similar
clauses, operational policies, procedures, FAQs, product specifications) and questions labelled with the
document and the verbatim span that answers them, in slices: ``exact`` (the question reuses the answer's
wording), ``paraphrase`` (few shared words), ``number`` (asks for an amount, duration or named term), ``long``
(one sentence inside a long section of a long document) and ``none`` (nothing in the corpus answers it).

A result answers a question when it belongs to the labelled document and its text contains the span (compared
lower-cased, whitespace collapsed, Markdown emphasis dropped). Per ranking and slice:
- R@1, R@5: a result that answers among the first 1 / 5;
- MRR: mean of 1/rank of the first answering result in the top 10;
- 400w: the span lies inside the first 400 words of the ranked results' texts, concatenated in order (the
  context an agent can afford);
- abstain: the share of questions the ranking declined (no result, or kb's "nothing answers well" warning);
  wanted on ``none``, a loss elsewhere (an answerable question declined counts as a miss everywhere).

Rankings, all in the same run and with the same encoder: kb's own modes through ``KnowledgeBase.query``
(ingested from a copy of the folder by kb's pipeline), and two baselines without kb's chunking or fusion:
``dense-para`` (the encoder over each paragraph, list or table of the Markdown, cosine) and ``bm25-para``
(bm25s, Lucene BM25 with English stop words and stemming, over the same paragraphs).

    python bench/devset.py              # every ranking, every slice
    python bench/devset.py --verbose    # and each miss of kb's default ranking with its top 3
    python bench/devset.py --smoke      # 40 questions, for CI
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.embedder import Embedder, load_embedder  # noqa: E402
from kb.ingest.frontmatter import split_front_matter  # noqa: E402
from kb.ingest.markdown import parse_sections  # noqa: E402
from kb.ingest.pipeline import sync  # noqa: E402
from kb.knowledge import KnowledgeBase  # noqa: E402
from kb.retrieval import QueryRequest, RetrievalMode  # noqa: E402
from kb.settings import Settings  # noqa: E402

DEV = ROOT / "bench" / "quality" / "dev"
K = 10
WORDS = 400
SLICES = ("exact", "paraphrase", "number", "long", "none")
_EMPHASIS = re.compile(r"[*_`]")


def normalize(text: str) -> str:
    return " ".join(_EMPHASIS.sub("", text).lower().split())


@dataclass(frozen=True)
class Question:
    text: str
    doc_id: str | None
    answer: str | None
    slice: str
    region: str = "global"


def load_questions(folder: Path = DEV) -> list[Question]:
    out = []
    for path in sorted(folder.glob("questions-*.yaml")):
        for item in yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]:
            out.append(Question(item["text"], item.get("doc_id"), item.get("answer"), item["slice"],
                                item.get("region", "global")))  # fmt: skip
    return out


Ranked = tuple[list[tuple[str, str]], bool]
"""((doc_id, text) best first, whether the ranking declined to answer)."""


@dataclass
class Tally:
    n: int = 0
    r1: float = 0.0
    r5: float = 0.0
    mrr: float = 0.0
    in400: float = 0.0
    abstain: float = 0.0

    def add(self, q: Question, ranked: Ranked) -> int | None:
        results, declined = ranked
        self.n += 1
        self.abstain += declined or not results
        if q.answer is None:
            return None
        span = normalize(q.answer)
        first = next((i for i, (doc, text) in enumerate(results[:K], 1)
                      if doc == q.doc_id and span in normalize(text)), None)  # fmt: skip
        self.r1 += first == 1
        self.r5 += first is not None and first <= 5
        self.mrr += 1 / first if first else 0.0
        context = " ".join(" ".join(normalize(text).split()[:WORDS]) for _, text in results)
        self.in400 += span in " ".join(context.split()[:WORDS])
        return first

    def row(self) -> str:
        n = max(1, self.n)
        return (f"{self.r1 / n:>6.3f} {self.r5 / n:>6.3f} {self.mrr / n:>6.3f} {self.in400 / n:>6.3f} "
                f"{self.abstain / n:>8.3f}")  # fmt: skip


@dataclass
class Run:
    by_slice: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    misses: list[str] = field(default_factory=list)
    ms: float = 0.0


def evaluate(questions: Sequence[Question], rank: Callable[[Question], Ranked]) -> Run:
    run = Run()
    started = time.perf_counter()
    for q in questions:
        ranked = rank(q)
        first = run.by_slice[q.slice].add(q, ranked)
        run.by_slice["all"].add(q, ranked) if q.slice != "none" else None
        if q.answer is not None and (first is None or first > 5):
            top = "; ".join(f"{doc}: {normalize(text)[:70]!r}" for doc, text in ranked[0][:3])
            run.misses.append(f"[{q.slice}] {q.text!r} -> {q.doc_id} (rank {first})\n      top: {top}")
    run.ms = (time.perf_counter() - started) * 1000 / max(1, len(questions))
    return run


# -- baselines over paragraphs -----------------------------------------------------------------------------------


def paragraphs(folder: Path) -> list[tuple[str, str]]:
    """(doc_id, text) of every paragraph, list or table of every document."""
    out = []
    for path in sorted(folder.rglob("*.md")):
        front, body = split_front_matter(path.name, path.read_text(encoding="utf-8"))
        doc_id = str(front.get("doc_id") or path.stem)
        _, sections = parse_sections(body)
        out.extend((doc_id, block.text) for section in sections for block in section.blocks)
    return out


def dense_baseline(embedder: Embedder, paras: list[tuple[str, str]]) -> Callable[[Question], Ranked]:
    matrix = embedder.encode([text for _, text in paras])

    def rank(q: Question) -> Ranked:
        scores = matrix @ embedder.encode_query(q.text)
        return [paras[i] for i in np.argsort(-scores)[:K]], False

    return rank


def bm25_baseline(paras: list[tuple[str, str]]) -> Callable[[Question], Ranked]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(method="lucene")
    retriever.index(bm25s.tokenize([text for _, text in paras], stopwords="en", stemmer=stemmer, show_progress=False),
                    show_progress=False)  # fmt: skip

    def rank(q: Question) -> Ranked:
        tokens = bm25s.tokenize([q.text], stopwords="en", stemmer=stemmer, show_progress=False)
        if not tokens.vocab:
            return [], True
        rows, _ = retriever.retrieve(tokens, k=min(K, len(paras)), show_progress=False)
        return [paras[int(i)] for i in rows[0]], False

    return rank


def kb_ranking(kb: KnowledgeBase, mode: RetrievalMode) -> Callable[[Question], Ranked]:
    def rank(q: Question) -> Ranked:
        answer = kb.query(QueryRequest(q.text, k=K, region=q.region, mode=mode))
        declined = any("answers" in w for w in answer.warnings)
        return [(r.validity.record.doc_id, r.text) for r in answer.results], declined

    return rank


# -- the run ------------------------------------------------------------------------------------------------------


def _pick(items: list[Question], n: int) -> list[Question]:
    step = max(1, len(items) // n)
    return items[::step][:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true", help="print every miss of kb's default ranking")
    parser.add_argument("--smoke", action="store_true", help="40 questions, for CI")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    questions = load_questions()
    if args.smoke:
        questions = _pick(questions, 40)
    work = Path(tempfile.mkdtemp(prefix="kb-devset-"))
    try:
        runs = _runs(work, questions)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _print(runs, questions)
    if args.json:
        figures = {name: {s: vars(t) for s, t in run.by_slice.items()} for name, run in runs.items()}
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    if args.verbose:
        default = next(name for name in runs if name.endswith("*"))
        print(f"\nmisses in the top 5 of {default} ({len(runs[default].misses)}):")
        for miss in runs[default].misses:
            print(f"  {miss}")


def _runs(work: Path, questions: list[Question]) -> dict[str, Run]:
    """The development documents ingested by kb, then every question ranked by both baselines and each of kb's
    retrieval modes."""
    folder = work / "docs"
    shutil.copytree(DEV / "docs", folder)
    settings = Settings(docs=folder, data=work / "data", watch=False)
    embedder = load_embedder(settings.model)
    kb = KnowledgeBase.open(settings, embedder)
    try:
        report = sync(kb)
        if report.failed:
            sys.exit(f"documents rejected: {report.failed}")
        paras = paragraphs(folder)
        print(f"{len(questions)} questions; {report.chunks} kb chunks, {len(paras)} paragraphs "
              f"({embedder.model_id})", file=sys.stderr)  # fmt: skip
        rankings: dict[str, Callable[[Question], Ranked]] = {
            "dense-para": dense_baseline(embedder, paras),
            "bm25-para": bm25_baseline(paras),
        }
        for mode in RetrievalMode:
            rankings[f"kb-{mode.value}" + ("*" if mode is settings.retrieval else "")] = kb_ranking(kb, mode)
        return {name: evaluate(questions, rank) for name, rank in rankings.items()}
    finally:
        kb.close()


def _print(runs: dict[str, Run], questions: list[Question]) -> None:
    counts = defaultdict(int, {s: sum(q.slice == s for q in questions) for s in SLICES})
    print(f"{'slice':<11} {'ranking':<13} {'R@1':>6} {'R@5':>6} {'MRR':>6} {'400w':>6} {'abstain':>8}")
    for slice_ in ("all", *SLICES):
        n = counts[slice_] if slice_ != "all" else sum(q.slice != "none" for q in questions)
        for name, run in runs.items():
            print(f"{slice_ + f' ({n})':<11} {name:<13} {run.by_slice[slice_].row()}")
    print("ms/query: " + ", ".join(f"{name} {run.ms:.1f}" for name, run in runs.items()))
    print("* the service's default ranking; abstain on 'none' is wanted, anywhere else a miss")


if __name__ == "__main__":
    main()
