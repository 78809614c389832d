"""Queries: what is in force for a region at a moment, ranked, with citations, flags and warnings (rules 6, 7)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from kb import pii
from kb.index import Hit
from kb.parts import Part
from kb.records import StoredChunk
from kb.retrieval import QueryAnswer, QueryRequest, QueryResult, RetrievalMode
from kb.staleness import StalenessReason, ended_gap
from kb.timeline import Resolution, Validity, VersionStatus


class Reader(Part):
    def resolve(self, chain: tuple[str, ...], at: datetime) -> Resolution:
        with self._lock:
            cached = self._resolutions.setdefault(chain, [])
            for resolution in cached:
                if resolution.holds_at(at):
                    return resolution
            resolution = self.timeline.resolve(chain, at)
            cached.insert(0, resolution)
            del cached[4:]
            return resolution

    def query(self, request: QueryRequest) -> QueryAnswer:
        request.check()
        at = request.moment(self.now(), self.settings.zone)
        chain = self.parts.chain(request.region)
        resolution = self.resolve(chain, at)
        by_id = resolution.by_version_id
        admitted = None
        if request.doc_types or request.products or request.max_risk_tier:
            admitted = {vid for vid, v in by_id.items() if request.admits(v)}
        vector = self.embedder.encode_query(request.query)
        hybrid = (request.mode or self.settings.retrieval) is RetrievalMode.hybrid
        hits = self.index.search(vector, resolution.version_set, request.k, admitted, request.query if hybrid else None)
        floor = self.settings.min_score if request.min_score is None else request.min_score
        # Compared as served (six decimals), so a client that passes a score back as min_score keeps that result.
        kept = [h for h in hits if round(h.score, 6) >= floor]
        served = [by_id[vid] for vid in dict.fromkeys(h.version_id for h in kept)]
        warnings = self._warnings(chain, served, at)
        if hits and not kept:
            warnings.append(f"nothing in force answers this well: the best passage scores {hits[0].score:.3f}, "
                            f"under min_score {floor:g}; say you do not know rather than quote it")  # fmt: skip
        return QueryAnswer(at, chain, self._results(kept, by_id, at), warnings)

    def _results(self, hits: Sequence[Hit], by_id: Mapping[int, Validity], at: datetime) -> list[QueryResult]:
        """The hits as served: their text, citation and flags."""
        stored = self.ledger.chunks([h.chunk_id for h in hits])
        inspector = self.parts.inspector(at)
        flags = {vid: inspector.flags(by_id[vid], at) for vid in {h.version_id for h in hits}}
        results = []
        for hit in hits:
            chunk, validity = stored[hit.chunk_id], by_id[hit.version_id]
            served_flags = [f.value for f in self._chunk_flags(flags[hit.version_id], validity, chunk)]
            results.append(QueryResult(hit.chunk_id, chunk.text, round(hit.score, 6), round(hit.cosine, 6),
                                       chunk.section, validity, served_flags, chunk.page))  # fmt: skip
        return results

    def _chunk_flags(
        self, flags: list[StalenessReason], validity: Validity, chunk: StoredChunk
    ) -> list[StalenessReason]:
        """A version's flags, plus ``pii_detected`` when this very chunk still carries personal data."""
        if validity.record.pii and pii.scan(chunk.text, self.settings.pii_allow):
            return [*flags, StalenessReason.pii_detected]
        return flags

    def _warnings(self, chain: tuple[str, ...], served: list[Validity], at: datetime) -> list[str]:
        region = chain[0]
        out = []
        if len(chain) > 1 and region not in self.parts.regions and not self.timeline.has_region(region):
            out.append(f"region {region} has no documents of its own and is not in regions.yaml; serving {chain[-1]}")
        for validity in served:
            record = validity.record
            for own in chain[: chain.index(record.region)]:
                last = ended_gap(self.timeline.series(record.doc_id, own), at)
                if last is not None:
                    end = last.end or at
                    if last.ended_by is VersionStatus.expired:
                        how = f"expired after {(end - timedelta(seconds=1)).date()}"
                    else:
                        how = f"was retired on {end.date()} (its file was deleted)"
                    out.append(f"{record.doc_id}: the {own} variant {how}; serving the {record.region} version "
                               f"{record.version} instead")  # fmt: skip
                    break
        return out
