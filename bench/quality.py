"""Retrieval quality over labelled questions: recall@5, MRR@10 and document recall@5, per corpus, retrieval mode
and embedder backend.

Corpora: the sample ``policies/`` with ``bench/quality/policies.yaml`` (questions as customers and agents ask
them, each with the document and heading that answer it in force for its region and moment), and a synthetic
corpus from ``bench/corpus.py`` (one question per document in force). Each is ingested into a temporary data
folder through kb's own path (``KnowledgeBase.open`` + ``kb.ingest.pipeline.sync``, the real embedder), and every
question goes through ``KnowledgeBase.query`` with its region and ``as_of``.

A hit is a result of the expected ``doc_id`` whose section path (``QueryResult.section``, the headings below the
title) contains the expected heading ("" names the text above the first heading, whose path is empty), or one of
the question's ``also`` pairs. recall@5: share of questions with
a hit in the top 5. MRR@10: mean of 1/rank of the first hit in the top 10 (0 without one). Doc recall@5: a
result of the expected document in the top 5, whatever its section.

Reference, measured in the same run: plain vector search over every stored chunk (all versions, all regions: a
retriever without kb's currency and region layer), same embedder and metrics, where a result counts as a hit
only if kb would serve that chunk for the question's region and moment; and the share of its top 5 that kb would
never serve (superseded, future, expired or another region's text). Where both exist: hybrid/vector and
onnx/torch ratios.

    python bench/quality.py                        # policies + 300 synthetic documents, every mode and backend
    python bench/quality.py --verbose              # also every miss: question, expected, top 3
    python bench/quality.py --modes vector,hybrid --backends torch,onnx --documents 300
    python bench/quality.py --smoke                # 10 questions per corpus, seconds, for CI
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import inspect
import os
import shutil
import sys
import tempfile
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import write_corpus  # noqa: E402
from kb.embedder import Embedder, load_embedder  # noqa: E402
from kb.errors import KBError  # noqa: E402
from kb.ingest.pipeline import sync  # noqa: E402
from kb.knowledge import KnowledgeBase  # noqa: E402
from kb.retrieval import QueryRequest  # noqa: E402
from kb.settings import Settings  # noqa: E402

QUESTIONS = ROOT / "bench" / "quality" / "policies.yaml"
K = 10
"""Results asked for: MRR is taken over the top 10, recall over the top 5."""


@dataclass(frozen=True)
class Labelled:
    text: str
    doc_id: str
    section: str
    """A heading of the section path the answer lives under; "" for the text above the first heading."""
    region: str = "global"
    as_of: date | None = None
    also: tuple[tuple[str, str], ...] = ()
    """Other (doc_id, heading) pairs that answer the question as well."""

    def hit(self, doc_id: str, section: Sequence[str]) -> bool:
        return any(
            doc_id == d and (heading in section if heading else not section)
            for d, heading in ((self.doc_id, self.section), *self.also)
        )


def load_questions(path: Path = QUESTIONS) -> list[Labelled]:
    """The labelled set: a default ``as_of`` and a list of questions that may override it."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    default = data.get("as_of")
    out = []
    for item in data["questions"]:
        as_of = item.get("as_of", default)
        out.append(
            Labelled(
                text=item["text"],
                doc_id=item["doc_id"],
                section=item["section"],
                region=item.get("region", "global"),
                as_of=date.fromisoformat(str(as_of)) if as_of else None,
                also=tuple((a["doc_id"], a["section"]) for a in item.get("also", ())),
            )
        )
    return out


# -- what this kb offers: retrieval modes and embedder backends, found by inspection -----------------------------


def _choices(annotation: Any) -> list[str] | None:
    """The values an Enum or Literal annotation (possibly inside Optional) allows."""
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, enum.Enum):
            return [str(member.value) for member in arg]
        if typing.get_origin(arg) is typing.Literal:
            return [str(value) for value in typing.get_args(arg)]
    return None


def _hint(target: Any, name: str) -> Any:
    try:
        return typing.get_type_hints(target).get(name)
    except Exception:  # noqa: BLE001 - an unresolvable annotation just means "unknown choices"
        return None


def available_modes() -> list[str]:
    """``vector`` before QueryRequest had a ``mode``; else the values its annotation allows."""
    if "mode" not in {f.name for f in dataclasses.fields(QueryRequest)}:
        return ["vector"]
    modes = _choices(_hint(QueryRequest, "mode")) or ["vector", "hybrid"]
    return sorted(modes, key=lambda m: m != "vector")  # the baseline first


def available_backends() -> list[str]:
    """``torch`` before ``load_embedder`` took a ``backend``; else the values its annotation allows."""
    if "backend" not in inspect.signature(load_embedder).parameters:
        return ["torch"]
    backends = _choices(_hint(load_embedder, "backend")) or ["torch", "onnx"]
    return sorted(backends, key=lambda b: b != "torch")


def default_backends() -> list[str]:
    """Every backend but ``auto``, which only picks one of the others."""
    return [b for b in available_backends() if b != "auto"]


def _request(question: Labelled, mode: str) -> QueryRequest:
    fields = {f.name for f in dataclasses.fields(QueryRequest)}
    extra: dict[str, Any] = {}
    if "mode" in fields:
        annotation = _hint(QueryRequest, "mode")
        enum_type = next((a for a in (annotation, *typing.get_args(annotation)) if isinstance(a, type)
                          and issubclass(a, enum.Enum)), None)  # fmt: skip
        extra["mode"] = enum_type(mode) if enum_type else mode
    return QueryRequest(question.text, k=K, region=question.region, as_of=question.as_of, **extra)


def _load(backend: str, model: str) -> Embedder:
    if "backend" in inspect.signature(load_embedder).parameters:
        return load_embedder(model, backend=backend)  # type: ignore[call-arg]
    return load_embedder(model)


# -- scoring ------------------------------------------------------------------------------------------------------


@dataclass
class Score:
    questions: int = 0
    recall5: float = 0.0
    mrr10: float = 0.0
    doc_recall5: float = 0.0
    ms_per_query: float = 0.0
    unserved5: float | None = None
    """Reference only: share of top-5 results kb would never serve."""
    misses: list[str] = dataclasses.field(default_factory=list)


Ranked = list[tuple[str, tuple[str, ...], float]]
"""(doc_id, section path, score) from best to worst; doc_id is "" for a chunk kb would not serve."""


def _score(questions: Sequence[Labelled], rank: Callable[[Labelled], Ranked]) -> Score:
    score = Score(questions=len(questions))
    started = time.perf_counter()
    for q in questions:
        ranked = rank(q)
        first = next((i for i, (doc, section, _) in enumerate(ranked[:K], 1) if q.hit(doc, section)), None)
        score.recall5 += first is not None and first <= 5
        score.mrr10 += 1 / first if first else 0.0
        score.doc_recall5 += any(doc in {q.doc_id, *(d for d, _ in q.also)} for doc, _, _ in ranked[:5])
        if first is None or first > 5:
            score.misses.append(_miss(q, first, ranked))
    score.ms_per_query = (time.perf_counter() - started) * 1000 / max(1, len(questions))
    n = max(1, len(questions))
    score.recall5, score.mrr10, score.doc_recall5 = score.recall5 / n, score.mrr10 / n, score.doc_recall5 / n
    return score


def _miss(q: Labelled, first: int | None, ranked: Ranked) -> str:
    """A question whose passage is not in the top 5: what was expected, and the top 3 it got instead."""
    where = f"{q.region}" + (f", as of {q.as_of}" if q.as_of else "")
    got = "; ".join(f"{doc or '(not served)'} § {' > '.join(s) or '(intro)'} {v:.2f}" for doc, s, v in ranked[:3])
    expected = f"{q.doc_id} § {q.section or '(intro)'} ({f'rank {first}' if first else 'not in top 10'})"
    return f"{q.text!r} [{where}]\n      expected {expected}\n      got {got}"


def evaluate(kb: KnowledgeBase, questions: Sequence[Labelled], mode: str) -> Score:
    def rank(q: Labelled) -> Ranked:
        answer = kb.query(_request(q, mode))
        return [(r.validity.record.doc_id, tuple(r.section), r.score) for r in answer.results]

    return _score(questions, rank)


def plain_reference(kb: KnowledgeBase, questions: Sequence[Labelled]) -> Score:
    """Exact vector search over every stored chunk, ignoring versions, dates and regions."""
    ids = sorted(kb.store.ids())
    matrix = kb.store.vectors(ids)
    sections = {cid: chunk.section for cid, chunk in kb.ledger.chunks(ids).items()}
    served_cache: dict[tuple[tuple[str, ...], datetime], dict[str, str]] = {}
    unserved = 0

    def served(q: Labelled) -> dict[str, str]:
        chain = kb.chain(q.region)
        at = QueryRequest(q.text, as_of=q.as_of).moment(kb.now(), kb.settings.zone)
        if (chain, at) not in served_cache:
            resolution = kb.timeline.resolve(chain, at)
            chunk_ids = kb.ledger.chunk_ids_of(resolution.version_set)
            served_cache[(chain, at)] = {cid: resolution.by_version_id[vid].record.doc_id
                                         for vid, cids in chunk_ids.items() for cid in cids}  # fmt: skip
        return served_cache[(chain, at)]

    def rank(q: Labelled) -> Ranked:
        nonlocal unserved
        scores = matrix @ kb.embedder.encode_query(q.text)
        top = np.argsort(-scores)[:K]
        doc_of = served(q)
        unserved += sum(ids[i] not in doc_of for i in top[:5])
        return [(doc_of.get(ids[i], ""), sections.get(ids[i], ()), float(scores[i])) for i in top]

    score = _score(questions, rank)
    score.unserved5 = unserved / max(1, 5 * len(questions))
    return score


# -- the run ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    name: str
    folder: Path
    questions: list[Labelled]


def _pick(items: list[Labelled], n: int) -> list[Labelled]:
    """``n`` questions spread over the whole set (the set is grouped by document)."""
    if len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def _row(corpus: str, backend: str, mode: str, s: Score) -> str:
    tail = f"  unserved in top 5: {s.unserved5:.0%}" if s.unserved5 is not None else ""
    return (f"{corpus:<15} {backend:<7} {mode:<7} {s.questions:>9} {s.recall5:>9.3f} {s.mrr10:>7.3f} "
            f"{s.doc_recall5:>13.3f} {s.ms_per_query:>9.1f}{tail}")  # fmt: skip


Key = tuple[str, str, str]
"""(corpus, backend, mode)"""


def _ratios(label: str, scores: dict[Key, Score], pairs: list[tuple[Key, Key]]) -> None:
    """``a/b`` for each pair measured on both sides; the label names the two sides."""
    shown = [(a, b) for a, b in pairs if a in scores and b in scores and scores[b].recall5]
    if not shown:
        print(f"  {label:<13} not measured: this kb or this run lacks one side")
    for a, b in shown:
        ra, rb = scores[a], scores[b]
        what = " ".join(x for x in a if x not in label.split("/"))
        print(f"  {label:<13} {what:<30} recall@5 {ra.recall5 / rb.recall5:.2f}x  "
              f"MRR@10 {ra.mrr10 / rb.mrr10 if rb.mrr10 else float('nan'):.2f}x")  # fmt: skip


def _parse_list(
    value: str | None, available: list[str], default: list[str], what: str, parser: argparse.ArgumentParser
) -> list[str]:
    if not value:
        return default
    wanted = [v.strip() for v in value.split(",") if v.strip()]
    missing = [v for v in wanted if v not in available]
    if missing:
        parser.error(f"{what} {', '.join(missing)} not available in this kb (available: {', '.join(available)})")
    return wanted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", help=f"comma-separated retrieval modes (default: all of {available_modes()})")
    parser.add_argument(
        "--backends",
        help=f"comma-separated embedder backends of {available_backends()} (default: {default_backends()})",
    )
    parser.add_argument("--documents", type=int, default=300, help="synthetic corpus size (0: policies only)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic corpus seed")
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="labelled set over policies/")
    parser.add_argument("--verbose", action="store_true", help="print every miss with the top 3 results")
    parser.add_argument("--smoke", action="store_true", help="10 questions per corpus on a tiny corpus, for CI")
    args = parser.parse_args()
    modes = _parse_list(args.modes, available_modes(), available_modes(), "mode", parser)
    backends = _parse_list(args.backends, available_backends(), default_backends(), "backend", parser)
    limit = 10 if args.smoke else None
    documents = min(args.documents, 12) if args.smoke else args.documents

    work = Path(tempfile.mkdtemp(prefix="kb-quality-"))
    try:
        corpora = _corpora(work, args.questions, documents, args.seed, limit)
        scores, failed = _measure(work, corpora, backends, modes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _print(scores, [c.name for c in corpora], backends, modes, args.verbose)
    if failed:
        sys.exit(1)


def _corpora(work: Path, questions: Path, documents: int, seed: int, limit: int | None) -> list[Corpus]:
    """The sample folder with its labelled questions, and a generated corpus of ``documents`` when asked."""
    corpora = [Corpus("policies", ROOT / "policies", load_questions(questions))]
    if documents:
        folder = work / "corpus"
        generated = write_corpus(folder, documents, seed)
        labelled = [Labelled(q.text, q.doc_id, q.section, q.region) for q in generated]
        corpora.append(Corpus(f"synthetic-{documents}", folder, labelled))
    if limit:
        corpora = [dataclasses.replace(c, questions=_pick(c.questions, limit)) for c in corpora]
    return corpora


def _measure(work: Path, corpora: list[Corpus], backends: list[str], modes: list[str]) -> tuple[dict[Key, Score], bool]:
    """Every corpus ingested with every backend, scored in every mode and by the plain reference; and whether
    something failed on the way."""
    scores: dict[Key, Score] = {}
    failed = False
    for backend in backends:
        try:
            embedder = _load(backend, Settings(watch=False).model)
        except KBError as exc:
            print(f"backend {backend}: cannot load the embedder: {exc}", file=sys.stderr)
            failed = True
            continue
        for corpus in corpora:
            settings = Settings(docs=corpus.folder, data=work / f"data-{corpus.name}-{backend}", watch=False)
            kb = KnowledgeBase.open(settings, embedder)
            try:
                started = time.perf_counter()
                report = sync(kb)
                seconds = time.perf_counter() - started
                if report.failed:
                    print(f"{corpus.name}: {len(report.failed)} files rejected: {report.failed}", file=sys.stderr)
                    failed = True
                print(f"ingested {corpus.name} with {backend} ({getattr(embedder, 'backend', backend)}, "
                      f"{embedder.model_id}): {report.chunks:,} chunks "
                      f"({report.embedded:,} embedded) in {seconds:.1f} s", file=sys.stderr)  # fmt: skip
                for mode in modes:
                    scores[(corpus.name, backend, mode)] = evaluate(kb, corpus.questions, mode)
                scores[(corpus.name, backend, "plain")] = plain_reference(kb, corpus.questions)
            finally:
                kb.close()
    return scores, failed


def _print(scores: dict[Key, Score], names: list[str], backends: list[str], modes: list[str], verbose: bool) -> None:
    print(f"{'corpus':<15} {'backend':<7} {'mode':<7} {'questions':>9} {'recall@5':>9} {'MRR@10':>7} "
          f"{'doc recall@5':>13} {'ms/query':>9}")  # fmt: skip
    for (corpus, backend, mode), score in scores.items():
        if mode != "plain":
            print(_row(corpus, backend, mode, score))
    print("reference: plain vector search over every stored chunk, all versions and regions "
          "(a hit only when kb serves that chunk)")  # fmt: skip
    for (corpus, backend, mode), score in scores.items():
        if mode == "plain":
            print(_row(corpus, backend, mode, score))
    print("ratios:")
    _ratios("kb/plain", scores, [((c, b, m), (c, b, "plain")) for c in names for b in backends for m in modes])
    _ratios("hybrid/vector", scores, [((c, b, "hybrid"), (c, b, "vector")) for c in names for b in backends])
    _ratios("onnx/torch", scores, [((c, "onnx", m), (c, "torch", m)) for c in names for m in modes])
    if verbose:
        _print_misses(scores)


def _print_misses(scores: dict[Key, Score]) -> None:
    for (corpus, backend, mode), score in scores.items():
        if score.misses and mode != "plain":
            print(f"\nmisses in the top 5: {corpus} {backend} {mode} ({len(score.misses)})")
            for miss in score.misses:
                print(f"  {miss}")


if __name__ == "__main__":
    main()
