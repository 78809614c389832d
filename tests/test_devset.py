"""The development set stays what bench/devset.py and docs/benchmarks.md say it is."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.devset import DEV, SLICES, load_questions, normalize, paragraphs  # noqa: E402


def test_every_answer_is_a_verbatim_span_of_its_document_and_of_no_other() -> None:
    paras = paragraphs(DEV / "docs")
    by_doc: dict[str, list[str]] = {}
    for doc_id, text in paras:
        by_doc.setdefault(doc_id, []).append(normalize(text))
    questions = load_questions()
    for q in questions:
        assert q.slice in SLICES, q
        if q.slice == "none":
            assert q.doc_id is None and q.answer is None, q
            continue
        assert q.doc_id in by_doc and q.answer, q
        span = normalize(q.answer)
        assert any(span in para for para in by_doc[q.doc_id]), f"{q.doc_id}: {q.answer!r} is in no one paragraph"
        others = [d for d, texts in by_doc.items() if d != q.doc_id and any(span in t for t in texts)]
        assert not others, f"{q.answer!r} is also in {others}"


def test_the_set_is_as_large_and_as_varied_as_documented() -> None:
    questions = load_questions()
    documents = list(Path(DEV / "docs").rglob("*.md"))
    assert len(questions) >= 300 and len(documents) >= 30
    counts = Counter(q.slice for q in questions)
    assert all(counts[s] >= 40 for s in SLICES), counts
    assert sum(len(p.read_text(encoding="utf-8").split()) > 3000 for p in documents) >= 6
