"""Answer audit: check an agent's draft against what is in force, and against everything else the ledger holds.

Each claim (kb/claims.py) is searched twice with the same hybrid ranking as /v1/query: among the chunks in force
for the region chain at the moment (the query's own view), and among what else the ledger holds of the documents
those passages come from (superseded, expired, retired, retracted and future versions of every region, and the
variants other regions are served), plus every version of documents the chain is served nothing of. Both are
index views (kb/index.py): history vectors are read from Chroma on first use and stay resident.

The candidates of both views are then re-scored with what an embedding cannot see: the share of the claim's
words a passage has (a quote has all of them) and whether the passage has the claim's figures. A claim is
``current`` unless a passage outside the view in force matches it clearly better (by ``MARGIN``); a passage shared
by both (a paragraph unchanged between versions has one chunk id) is a tie, so current. Thresholds were chosen on
bench/audit.py (docs/benchmarks.md).
"""

from __future__ import annotations

import weakref
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from kb import claims as text
from kb.errors import InvalidRequest
from kb.index import Hit
from kb.retrieval import QueryRequest, QueryResult, RetrievalMode
from kb.timeline import Resolution, Validity, VersionStatus

if TYPE_CHECKING:
    from kb.knowledge import KnowledgeBase

MAX_AUDIT_CHARS = 10_000
MAX_CLAIMS = 100
"""About 20 ms of work each: a draft is an answer to a customer, not a document."""
CANDIDATES = 8
"""Passages of each view re-scored per claim."""
COVERAGE_WEIGHT = 0.3
"""How much a passage having the claim's words adds to its search score (a quote: the full weight)."""
FIGURE_WEIGHT = 0.15
"""Added when a passage has every figure of the claim, taken away when it lacks one."""
MARGIN = 0.02
"""A passage outside what is in force must beat the best one in force by this much to flag a claim."""
MIN_COSINE = 0.45
"""Under this cosine and without the claim's words, nothing supports it."""
MIN_COVERAGE = 0.5


class ClaimStatus(StrEnum):
    current = "current"
    """Its best support is in force for the region at the moment."""
    outdated = "outdated"
    """It matches a superseded, expired, retired or retracted version better than anything in force."""
    other_region = "other_region"
    """It matches a variant another region is served."""
    future = "future"
    """It matches a version not yet in force."""
    unsupported = "unsupported"
    """Nothing kb holds says it: neither in force nor in history."""


SEVERITY = [ClaimStatus.current, ClaimStatus.unsupported, ClaimStatus.future, ClaimStatus.other_region,
            ClaimStatus.outdated]  # fmt: skip
"""The verdict is the most serious status found, last being most serious: quoting a rule that no longer
applies misleads a customer more surely than a sentence kb cannot place."""


@dataclass(frozen=True)
class AuditRequest:
    text: str
    region: str = "global"
    as_of: datetime | date | None = None
    mode: RetrievalMode = RetrievalMode.hybrid

    def check(self) -> None:
        if not self.text.strip():
            raise InvalidRequest("text must not be empty")
        if len(self.text) > MAX_AUDIT_CHARS:
            raise InvalidRequest(f"text is longer than {MAX_AUDIT_CHARS} characters")


@dataclass(frozen=True)
class AuditedClaim:
    text: str
    status: ClaimStatus
    support: QueryResult | None
    """The passage that best supports the claim, wherever it is."""
    in_force: QueryResult | None
    """For a claim not current: the passage of the same document served now, when there is one."""
    changes: list[str] = field(default_factory=list)
    """What differs between the claim's source sentence and the sentence in force, word for word."""
    reason: str = ""


@dataclass(frozen=True)
class AuditReport:
    as_of: datetime
    region_chain: tuple[str, ...]
    verdict: ClaimStatus
    claims: list[AuditedClaim]


@dataclass(frozen=True)
class _History:
    by_id: dict[int, Validity]
    """Every version the chain is not served at the moment."""
    by_doc: dict[str, frozenset[int]]
    served: dict[str, Validity]
    """The version the chain is served of each document."""
    orphans: frozenset[int]
    """Versions of documents the chain is served nothing of (retired, expired, another region's only)."""

    def near(self, doc_ids: Collection[str]) -> frozenset[int]:
        """What a claim is checked against besides what is in force: the other versions of the documents its
        best passages in force come from, and the orphans. A quote of an old version or a variant is closest to
        its own document's text in force, so this finds them without ranking all of history, whose size grows
        with every edit (10 versions of 100k chunks in force would be 1.1M rows a claim)."""
        out = set(self.orphans)
        for doc_id in doc_ids:
            out |= self.by_doc.get(doc_id, frozenset())
        return frozenset(out)


_histories: weakref.WeakKeyDictionary[Resolution, _History] = weakref.WeakKeyDictionary()
"""A resolution is replaced whenever the ledger changes or its moment passes, so its history is too."""


def _history(kb: KnowledgeBase, resolution: Resolution) -> _History:
    found = _histories.get(resolution)
    if found is None:
        served = {v.record.doc_id for v in resolution.by_version_id.values()}
        by_doc: dict[str, set[int]] = {}
        with kb.parts.lock:
            others = {v.record.id: v for series in kb.timeline.all_series() for v in series
                      if v.record.id not in resolution.by_version_id}  # fmt: skip
        for vid, validity in others.items():
            by_doc.setdefault(validity.record.doc_id, set()).add(vid)
        orphans = frozenset(vid for doc_id, vids in by_doc.items() if doc_id not in served for vid in vids)
        found = _History(others, {d: frozenset(v) for d, v in by_doc.items()},
                         {v.record.doc_id: v for v in resolution.by_version_id.values()}, orphans)  # fmt: skip
        _histories[resolution] = found
    return found


def _still_said(plain: str, other: _Candidate, now: list[_Candidate]) -> bool:
    """The sentence the claim matches outside what is in force is also, word for word, in a passage in force: a
    paragraph kept by a new version or a variant, cut into chunks differently."""
    said = " ".join(["", *text.words(text.closest_sentence(other.text, plain)), ""])
    return any(said in " ".join(["", *text.words(c.text), ""]) for c in now)  # whole words: "7 days" is not "17 days"


def standing(validity: Validity, resolution: Resolution, at: datetime) -> ClaimStatus:
    """What quoting this version means for an agent served ``resolution`` at ``at``."""
    if validity.record.id in resolution.by_version_id:
        return ClaimStatus.current
    if validity.record.region not in resolution.chain:
        return ClaimStatus.other_region
    status = validity.status(at)
    if status is VersionStatus.future:
        return ClaimStatus.future
    if status is VersionStatus.in_force:
        return ClaimStatus.other_region  # in force, but shadowed by a more specific variant on the chain
    return ClaimStatus.outdated


Citation = tuple[ClaimStatus, Validity, str]
"""A claim's citation of what is not in force: what quoting it means, the version cited, and why."""


@dataclass(frozen=True)
class _Candidate:
    hit: Hit
    validity: Validity
    text: str
    fit: float


class _Audit:
    def __init__(self, kb: KnowledgeBase, request: AuditRequest) -> None:
        request.check()
        self.kb = kb
        self.hybrid = request.mode is RetrievalMode.hybrid
        self.at = QueryRequest("audit", as_of=request.as_of).moment(kb.now(), kb.settings.zone)
        self.resolution = kb.reads.resolve(kb.chain(request.region), self.at)
        self.history = _history(kb, self.resolution)

    def _candidates(self, plain: str, vector: np.ndarray, versions: frozenset[int], by_id: dict[int, Validity],
                    only: Collection[int] | None = None) -> list[_Candidate]:  # fmt: skip
        hits = self.kb.index.search(vector, versions, CANDIDATES, only, plain if self.hybrid else None)
        stored = self.kb.ledger.chunks([h.chunk_id for h in hits])
        wanted = text.figures(plain)
        out = []
        for hit in hits:
            passage = stored[hit.chunk_id].text
            fit = hit.score + COVERAGE_WEIGHT * text.coverage(plain, passage)
            if wanted:
                # In the sentence the claim comes from: a chunk stating "30 days" elsewhere does not back it.
                said = text.figures(text.closest_sentence(passage, plain))
                fit += FIGURE_WEIGHT if wanted <= said else -FIGURE_WEIGHT
            out.append(_Candidate(hit, by_id[hit.version_id], passage, fit))
        return sorted(out, key=lambda c: -c.fit)

    def result(self, candidate: _Candidate) -> QueryResult:
        hit = candidate.hit
        stored = self.kb.ledger.chunks([hit.chunk_id])[hit.chunk_id]
        return QueryResult(hit.chunk_id, stored.text, round(hit.score, 6), round(hit.cosine, 6), stored.section,
                           candidate.validity, [], stored.page)  # fmt: skip

    def served_for(self, doc_id: str) -> Validity | None:
        return self.history.served.get(doc_id)

    def validity(self, version_id: int) -> Validity | None:
        return self.resolution.by_version_id.get(version_id) or self.history.by_id.get(version_id)

    def claim(self, claim: text.DraftClaim, vector: np.ndarray) -> AuditedClaim:
        now = self._candidates(claim.plain, vector, self.resolution.version_set, self.resolution.by_version_id)
        near = self.history.near({c.validity.record.doc_id for c in now})
        other = self._candidates(claim.plain, vector, near, self.history.by_id) if near else []
        cited = self._cited(claim) if claim.chunks or claim.versions else None
        if cited is not None:
            return self._flagged_citation(claim, vector, cited, other + now)
        best_now = now[0] if now else None
        best_other = other[0] if other else None
        if not self._supported(claim.plain, best_now, best_other, now + other):
            closest = self.result(best_now) if best_now else None
            return AuditedClaim(claim.text, ClaimStatus.unsupported, None, closest,
                                reason="no passage kb holds says this")  # fmt: skip
        if best_other is None or _in_force_holds(claim.plain, best_now, best_other, now):
            assert best_now is not None
            return AuditedClaim(claim.text, ClaimStatus.current, self.result(best_now), None)
        status = standing(best_other.validity, self.resolution, self.at)
        return self._flagged(claim, status, best_other, vector, "")

    def _flagged_citation(
        self, claim: text.DraftClaim, vector: np.ndarray, cited: Citation, found: list[_Candidate]
    ) -> AuditedClaim:
        """A claim that cites what is not in force is flagged whatever its wording; its passage is the cited
        version's best match (searched in that version alone when neither view found it)."""
        status, validity, reason = cited
        source = next((c for c in found if c.validity.record.id == validity.record.id), None)
        if source is None:
            own = frozenset([validity.record.id])
            by_id = {validity.record.id: validity}
            source = next(iter(self._candidates(claim.plain, vector, own, by_id)), None)
        return self._flagged(claim, status, source, vector, reason)

    def _supported(
        self, plain: str, best_now: _Candidate | None, best_other: _Candidate | None, candidates: list[_Candidate]
    ) -> bool:
        """The best passage of either view says this: close enough in meaning or in words, with no made-up figure."""
        best = max((c for c in (best_now, best_other) if c), key=lambda c: c.fit, default=None)
        if best is None:
            return False
        wanted = text.figures(plain)
        if wanted and not any(wanted <= text.figures(c.text) for c in candidates):
            return False  # a figure no version ever stated: made up, whatever the words around it
        return best.hit.cosine >= MIN_COSINE or text.coverage(plain, best.text) >= MIN_COVERAGE

    def _flagged(self, claim: text.DraftClaim, status: ClaimStatus, source: _Candidate | None, vector: np.ndarray,
                 reason: str) -> AuditedClaim:  # fmt: skip
        replacement = None
        if source is not None:
            served = self.served_for(source.validity.record.doc_id)
            if served is not None:
                found = self._candidates(claim.plain, vector, self.resolution.version_set,
                                         self.resolution.by_version_id, [served.record.id])  # fmt: skip
                replacement = found[0] if found else None
        diff: list[str] = []
        if source is not None and replacement is not None and replacement.hit.chunk_id != source.hit.chunk_id:
            was = text.closest_sentence(source.text, claim.plain)
            diff = text.changes(was, text.closest_sentence(replacement.text, was))
        if not reason and source is not None:
            r = source.validity.record
            reason = f"matches {r.doc_id} ({r.region}) version {r.version}, {source.validity.status(self.at).value}"
        return AuditedClaim(claim.text, status, self.result(source) if source else None,
                            self.result(replacement) if replacement else None, diff, reason)  # fmt: skip

    def _cited(self, claim: text.DraftClaim) -> Citation | None:
        """The first citation of the claim that is not in force for the chain, whatever the wording."""
        return self._cited_chunk(claim) or self._cited_version(claim)

    def _cited_chunk(self, claim: text.DraftClaim) -> Citation | None:
        if not claim.chunks:
            return None
        holders = self.kb.ledger.versions_of_chunks(claim.chunks)
        for cited in claim.chunks:
            ids = [vid for chunk_id, vids in holders.items() if chunk_id.startswith(cited) for vid in vids]
            if not ids or any(vid in self.resolution.by_version_id for vid in ids):
                continue  # unknown ids are not evidence either way; the wording decides
            known = [v for v in map(self.validity, ids) if v is not None]
            validity = max(known, key=lambda v: v.record.id, default=None)
            if validity is not None:
                why = f"cites chunk {cited}, which is not in force for {self.resolution.chain[0]}"
                return standing(validity, self.resolution, self.at), validity, why
        return None

    def _cited_version(self, claim: text.DraftClaim) -> Citation | None:
        for doc_id, number in claim.versions:
            served = self.served_for(doc_id)
            if served is not None and served.record.version == number:
                continue
            own = self.history.by_doc.get(doc_id, frozenset())
            matches = [v for v in map(self.validity, own) if v is not None and v.record.version == number]
            matches.sort(key=lambda v: v.record.region not in self.resolution.chain)
            if matches:
                why = f"cites {doc_id} v{number}; v{served.record.version} is in force" if served else \
                    f"cites {doc_id} v{number}, which is not served to {self.resolution.chain[0]}"  # fmt: skip
                return standing(matches[0], self.resolution, self.at), matches[0], why
        return None


def _in_force_holds(plain: str, best_now: _Candidate | None, best_other: _Candidate, now: list[_Candidate]) -> bool:
    """What is in force backs the claim as well as anything else (within ``MARGIN``), or says the same words."""
    return best_now is not None and (best_now.fit >= best_other.fit - MARGIN or _still_said(plain, best_other, now))


def audit(kb: KnowledgeBase, request: AuditRequest) -> AuditReport:
    """Each claim of the draft with its status, support, the passage in force, and what changed."""
    run = _Audit(kb, request)
    drafted = text.split_claims(request.text)
    if len(drafted) > MAX_CLAIMS:
        raise InvalidRequest(f"the text has {len(drafted)} claims; audit at most {MAX_CLAIMS} at a time")
    vectors = kb.embedder.encode_queries([c.plain for c in drafted])
    audited = [run.claim(c, v) for c, v in zip(drafted, vectors, strict=True)]
    verdict = max((c.status for c in audited), key=SEVERITY.index)
    return AuditReport(run.at, run.resolution.chain, verdict, audited)
