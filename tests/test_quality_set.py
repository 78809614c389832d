"""The labelled quality set and the synthetic corpus are data: checked against the files with kb's own parsing.

No embedder: every expected answer must exist, in the version kb serves for the question's region and moment.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import copy_samples

from kb.documents import Document, start_of
from kb.ingest.convert import TEXT_FORMATS, format_of, to_markdown
from kb.ingest.frontmatter import read_document, split_front_matter
from kb.ingest.kinds import scan
from kb.ingest.markdown import parse_sections
from kb.ingest.metadata import merged_keys, metadata_files
from kb.regions import REGIONS_FILE, RegionTree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import Question, write_corpus  # noqa: E402
from bench.quality import Labelled, load_questions  # noqa: E402

UTC_ZONE = ZoneInfo("UTC")
CORPUS_DAY = datetime(2026, 11, 25, tzinfo=UTC)


class Folder:
    """Every version in a folder, and the headings of the one kb serves for a region chain and moment."""

    def __init__(self, root: Path) -> None:
        self.regions = RegionTree.load(root / REGIONS_FILE)
        self.series: dict[tuple[str, str], list[tuple[Document, set[str]]]] = defaultdict(list)
        for rel in scan(root):
            fmt = format_of(rel)
            assert fmt is not None, f"{rel}: the sample corpus holds only files kb reads"
            if fmt in TEXT_FORMATS:
                own, body = split_front_matter(rel, (root / rel).read_text(encoding="utf-8"))
            else:
                own, body = {}, to_markdown(rel, (root / rel).read_bytes(), fmt, 1 << 30)
            raw = {**merged_keys(rel, metadata_files(root, rel)), **own}
            title, sections = parse_sections(body)
            doc = read_document(rel, raw, body, UTC_ZONE, title)
            assert doc.version is not None and doc.effective_from is not None, f"{rel}: explicit version and date"
            headings = {h for s in sections for h in s.path} | ({""} if any(not s.path for s in sections) else set())
            self.series[(doc.doc_id, doc.region)].append((doc, headings))
        for versions in self.series.values():
            versions.sort(key=lambda v: v[0].version or 0)

    def _in_force(self, doc_id: str, region: str, at: datetime) -> set[str] | None:
        versions = self.series.get((doc_id, region), [])
        for i, (doc, headings) in enumerate(versions):
            ends = [d.effective_from for d, _ in versions[i + 1 : i + 2]] + (
                [doc.effective_to] if doc.effective_to else []
            )
            if doc.effective_from <= at and all(at < end for end in ends if end is not None):
                return headings
        return None

    def served(self, doc_id: str, region: str, at: datetime) -> set[str] | None:
        """Rule 6: the headings of the most specific variant in force on the region's chain, else None."""
        for link in self.regions.chain(region):
            headings = self._in_force(doc_id, link, at)
            if headings is not None:
                return headings
        return None


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Folder:
    return Folder(copy_samples(tmp_path_factory.mktemp("policies")))


@pytest.fixture(scope="module")
def questions() -> list[Labelled]:
    return load_questions()


def _moment(question: Labelled) -> datetime:
    assert question.as_of is not None, f"{question.text!r} has no as_of (nor the file a default)"
    return start_of(question.as_of, UTC_ZONE)


def test_the_quality_set_has_at_least_80_distinct_questions(questions: list[Labelled]) -> None:
    assert len(questions) >= 80
    keys = [(q.text.lower(), q.region, q.as_of) for q in questions]
    assert len(keys) == len(set(keys)), "duplicate questions"
    assert len({q.text.lower() for q in questions}) == len(questions), "the same text asked twice"


def test_every_expected_answer_is_served_for_its_region_and_moment(policies: Folder, questions: list[Labelled]) -> None:
    problems = []
    for q in questions:
        for doc_id, heading in ((q.doc_id, q.section), *q.also):
            headings = policies.served(doc_id, q.region, _moment(q))
            if headings is None:
                problems.append(f"{q.text!r}: {doc_id} is not in force for {q.region} at {q.as_of}")
            elif heading not in headings:
                problems.append(f"{q.text!r}: {doc_id} as served for {q.region} has no heading {heading!r}")
    assert not problems, "\n".join(problems)


def test_the_quality_set_covers_regions_documents_and_a_future_version(questions: list[Labelled]) -> None:
    assert {"global", "EU", "DE", "US", "UK"} <= {q.region for q in questions}
    assert len({q.doc_id for q in questions}) >= 10
    assert any(q.as_of and q.as_of > date(2026, 12, 1) for q in questions)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_write_corpus_is_deterministic(tmp_path: Path) -> None:
    first = write_corpus(tmp_path / "a", 120, seed=3)
    again = write_corpus(tmp_path / "b", 120, seed=3)
    other = write_corpus(tmp_path / "c", 120, seed=4)
    assert first == again
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c") and first != other
    assert len(scan(tmp_path / "a")) == 120
    assert all(isinstance(q, Question) for q in first)


def test_corpus_questions_are_answered_under_their_heading_in_the_variant_served(tmp_path: Path) -> None:
    questions = write_corpus(tmp_path, 300)
    corpus = Folder(tmp_path)
    assert len(questions) >= 210, "about one question per document in force"
    assert len({(q.text, q.region) for q in questions}) == len(questions)
    problems = []
    for q in questions:
        headings = corpus.served(q.doc_id, q.region, CORPUS_DAY)
        if headings is None or q.section not in headings:
            problems.append(f"{q}: served headings {sorted(headings or [])}")
    assert not problems, "\n".join(problems[:20])
    # Realistic shape: variants, history, several document types, headings shared across documents.
    regions = {region for _, region in corpus.series}
    assert {"global", "US"} <= regions and len(regions) >= 5
    assert any(len(versions) > 1 for versions in corpus.series.values())
    assert {v[0].doc_type.value for versions in corpus.series.values() for v in versions} >= {
        "policy", "product_spec", "faq", "procedure", "reference"
    }  # fmt: skip
    assert any(sum(q.section == other.section for other in questions) > 10 for q in questions), (
        "headings are shared, so the product or category decides the answer"
    )
