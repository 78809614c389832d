"""Listings of a knowledge base: the documents and their history, versions and their texts, what is coming up,
coverage by region, the staleness report and its counts, and stats. Each takes a snapshot of the timeline under
the lock and does the slow part outside it where it can."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from kb import outlook
from kb.documents import normalize_region
from kb.errors import CannotEdit, DocumentNotFound, InvalidRequest, VersionNotFound
from kb.parts import Part, Parts
from kb.records import FileRecord, StoredChunk, VersionRecord
from kb.staleness import Inspector, StalenessReason, StalenessRow
from kb.timeline import Validity, VersionStatus


@dataclass(frozen=True)
class SeriesSummary:
    current: Validity
    """The version in force, else the latest one."""
    status: VersionStatus
    versions: int


class Listings(Part):
    def __init__(self, parts: Parts) -> None:
        super().__init__(parts)
        self._staleness_counts: tuple[tuple[int, int, datetime], Counter[StalenessReason]] | None = None

    def files(self) -> dict[str, FileRecord]:
        return self.ledger.files()

    def documents(self, include_all: bool = False) -> list[SeriesSummary]:
        now = self.now()
        out = []
        with self._lock:
            for validities in self.timeline.all_series():
                current = next((v for v in reversed(validities) if v.in_force(now)), None)
                if current is None and not include_all:
                    continue
                shown = current or validities[-1]
                out.append(SeriesSummary(shown, shown.status(now), len(validities)))
        out.sort(key=lambda s: (s.current.record.doc_id, s.current.record.region))
        return out

    def history(self, doc_id: str) -> list[tuple[Validity, VersionStatus]]:
        """Every version and corrected revision of a document in every region, with its status now."""
        now = self.now()
        records = self.ledger.history(doc_id)
        if not records:
            raise DocumentNotFound(doc_id)
        with self._lock:
            live = {v.record.id: v for region in self.timeline.regions_of(doc_id)
                    for v in self.timeline.series(doc_id, region)}  # fmt: skip
        out = []
        for record in records:
            validity = live.get(record.id, Validity(record, None, None))
            out.append((validity, validity.status(now)))
        return out

    def version(
        self, doc_id: str, number: int, region: str | None
    ) -> tuple[Validity, VersionStatus, list[StoredChunk]]:
        history = [
            (v, s) for v, s in self.history(doc_id) if v.record.version == number and s is not VersionStatus.corrected
        ]
        if region is not None:
            wanted = self.parts.chain(region)[0]
            history = [(v, s) for v, s in history if v.record.region == wanted]
        if not history:
            raise VersionNotFound(doc_id, number, region)
        if len(history) > 1:
            regions = ", ".join(sorted(v.record.region for v, _ in history))
            raise InvalidRequest(f"version {number} of {doc_id} exists in regions {regions}; pass ?region=")
        validity, status = history[0]
        ids = self.ledger.chunk_ids(validity.record.id)
        stored = self.ledger.chunks(ids)
        return validity, status, [stored[cid] for cid in ids]

    def texts(self, version_ids: Collection[int]) -> dict[int, list[StoredChunk]]:
        """The chunks of each version, in order: what a person reads when comparing versions."""
        ids = self.ledger.chunk_ids_of(version_ids)
        stored = self.ledger.chunks([cid for chunk_ids in ids.values() for cid in chunk_ids])
        return {vid: [stored[cid] for cid in chunk_ids] for vid, chunk_ids in ids.items()}

    def in_force(self, doc_id: str, region: str) -> Validity:
        """The version of one series in force now: what an action of the report (a review) applies to."""
        try:
            region = normalize_region(region)
        except ValueError as exc:
            raise InvalidRequest(f"region: {exc}") from None
        now = self.now()
        with self._lock:
            if not self.timeline.regions_of(doc_id):
                raise DocumentNotFound(doc_id)
            current = next((v for v in self.timeline.series(doc_id, region) if v.in_force(now)), None)
        if current is None:
            raise CannotEdit(f"{doc_id} has no version in force in region {region}")
        return current

    def newer_base(self, record: VersionRecord) -> Validity | None:
        """The parent region's version that makes this variant out of sync now (None when it is not)."""
        now = self.now()
        with self._lock:
            return self.parts.inspector(now).newer_base(record, now)

    def upcoming(self, days: int, region: str | None = None) -> list[outlook.Upcoming]:
        """Versions that take effect or end (with nothing after them) in the next ``days`` days."""
        if not 1 <= days <= outlook.MAX_DAYS:
            raise InvalidRequest(f"days must be between 1 and {outlook.MAX_DAYS}, got {days}")
        now = self.now()
        with self._lock:
            found = outlook.upcoming(self.timeline.all_series(), now, now + timedelta(days=days))
        return [u for u in found if region is None or u.record.region == self.parts.chain(region)[0]]

    def coverage(self) -> tuple[list[str], list[outlook.Coverage]]:
        """Every region (global, those with documents, those regions.yaml names) and what each is served now."""
        with self._lock:
            tree = self.parts.regions
            regions = {"global", *tree.names()} | {v[0].record.region for v in self.timeline.all_series() if v}
            ordered = sorted(regions, key=lambda r: (r != "global", r))
            chains = {region: tree.chain(region) for region in ordered}
            return ordered, outlook.coverage(self.timeline, chains, self.now())

    def staleness(self) -> list[StalenessRow]:
        files = self.ledger.files()
        # Only a rejected file's previous version is named in the report: not every version of the ledger.
        versions = {f.version_id: self.ledger.version(f.version_id) for f in files.values()
                    if f.error and f.version_id is not None}  # fmt: skip
        with self._lock:  # a snapshot, so that writes and queries need not wait for the whole report
            timeline, regions = self.timeline.snapshot(), self.parts.regions
        rules = self.parts.rules()
        return Inspector(timeline, regions, files, self.now(), rules).report(versions)

    def staleness_counts(self) -> Counter[StalenessReason]:
        """Report rows by reason, for /metrics: worked out again after a write or once a minute, never on every
        scrape (a scrape once recomputed the whole report, holding queries back meanwhile)."""
        key = (self.ledger.writes, self.parts.followed, self.now().replace(second=0, microsecond=0))
        cached = self._staleness_counts
        if cached is None or cached[0] != key:
            cached = self._staleness_counts = (key, Counter(row.reason for row in self.staleness()))
        return cached[1]

    def stats(self) -> dict[str, int]:
        now = self.now()
        with self._lock:
            series = list(self.timeline.all_series())
            in_force = sum(1 for vs in series if any(v.in_force(now) for v in vs))
        return {
            "series": len(series),
            "series_in_force": in_force,
            "chunks_resident": len(self.index),
            "chunks_stored": self.store.held(),
            "files_failing": sum(1 for f in self.ledger.files().values() if f.error),
        }
