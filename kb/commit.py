"""The write side of a knowledge base: it executes the plans of kb/writes.py (rules 3 and 4) so that every write
is all-or-nothing. Vectors go to the store first, then the ledger switches in one transaction with its change-feed
event, then the timeline and the index follow the ledger."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np

from kb import feed
from kb.changefeed import ChangeFeed
from kb.documents import Chunk, Document
from kb.errors import ConflictingDocument
from kb.parts import Part, Parts
from kb.records import VersionRecord
from kb.timeline import VersionStatus
from kb.writes import Write, WritePlan, plan_write


class Change(StrEnum):
    unchanged = "unchanged"
    """The file's content is already the version on record."""
    new_version = "new_version"
    """A new version of its series was written."""
    corrected = "corrected"
    """An existing version got a new text or new front matter; the old text stays in history."""
    restored = "restored"
    """A deleted file came back unchanged; its version is in force again."""


@dataclass(frozen=True)
class Applied:
    change: Change
    record: VersionRecord
    chunks: int


class Committer(Part):
    def __init__(self, parts: Parts, changefeed: ChangeFeed) -> None:
        super().__init__(parts)
        self.changefeed = changefeed

    def embed_into_store(self, ids: Sequence[str], texts: Sequence[str]) -> dict[str, np.ndarray]:
        batch = 256
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), batch):
            vectors = self.embedder.encode(texts[start : start + batch])
            self.store.add(ids[start : start + batch], vectors, texts[start : start + batch])
            out.update(zip(ids[start : start + batch], vectors, strict=True))
        return out

    def ensure_embedded(self, chunks: Sequence[Chunk]) -> dict[str, np.ndarray]:
        """Embed (in batches) and store the chunks the store lacks; returns the new vectors by chunk id."""
        unique = {c.chunk_id: c.embed_text for c in chunks}
        missing = self.store.missing(list(unique))
        return self.embed_into_store(missing, [unique[cid] for cid in missing])

    def _vectors(
        self, chunks: Sequence[Chunk], series: Sequence[VersionRecord], given: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """Vectors of a new version: from the caller, from resident versions of its series, else the store."""
        known: dict[str, np.ndarray] = {}
        for record in series:
            known.update(self.index.vectors(record.id))
        rest = [c for c in chunks if c.chunk_id not in given and c.chunk_id not in known]
        if rest:
            known.update(self.ensure_embedded(rest))
            stored = [c.chunk_id for c in rest if c.chunk_id not in known]
            if stored:
                known.update(zip(stored, self.store.vectors(stored), strict=True))
        return np.stack([given[c.chunk_id] if c.chunk_id in given else known[c.chunk_id] for c in chunks])

    def refresh(self, *series: tuple[str, str], records: Sequence[VersionRecord] | None = None) -> None:
        """Timeline and index in line with the ledger for these series. ``records``: the current revisions of
        the one series given, when the caller knows them; re-reading every version of a series after each
        write made writes slower as history grew (a fill at 50 versions a document ran 1.28x faster without)."""
        now = self.now()
        with self._lock:
            for key in series:
                self.timeline.replace_series(key, self.ledger.series(*key) if records is None else records)
                for validity in self.timeline.series(*key):
                    if validity.status(now) in (VersionStatus.in_force, VersionStatus.future):
                        self.index.load([validity.record.id])
                    else:
                        self.index.drop(validity.record.id)  # history is read back from the store on demand
                self.changefeed.expect(feed.next_boundary([self.timeline.series(*key)], now))
            self._resolutions.clear()

    def _refuse_a_second_source(self, doc: Document, plan: WritePlan) -> None:
        """A version another existing file defines is not redefined by this one (``conflict`` in the report)."""
        record = plan.same
        if doc.version is None or record is None or record.source == doc.source:
            return
        if not (self.settings.docs / record.source).exists():
            return
        owner = self.ledger.file(record.source)
        if owner is not None and owner.version_id == record.id:
            raise ConflictingDocument(
                doc.source,
                f"version {doc.version} of {doc.doc_id} ({doc.region}) is already defined by {record.source}; "
                "give one of the files another version or doc_id",
            )

    def _release_the_series_left(self, previous_id: int | None, doc: Document, now: datetime) -> None:
        """The file now claims another doc_id or region: the series it left has lost its file (rule 4)."""
        if previous_id is not None:
            moved_from = self.ledger.version(previous_id)
            if moved_from.series != (doc.doc_id, doc.region):
                self._release(moved_from.id, now)

    def apply(
        self, doc: Document, chunks: Sequence[Chunk], file_hash: str, vectors: Mapping[str, np.ndarray] | None = None
    ) -> Applied:
        """Rule 3: same explicit version corrects it; changed content with a new or no version is new.

        ``vectors`` are chunk vectors the caller already stored (a batch embedded ahead); the rest are
        taken from resident versions of the series, the store, or the embedder, in that order.
        """
        now = self.now()
        with self._lock:
            series = [v.record for v in self.timeline.series(doc.doc_id, doc.region)]
            plan = self._plan(doc, series, file_hash, [c.chunk_id for c in chunks], now)
            self.changefeed.catch_up(writing=True)
            same = plan.same
            if plan.write is Write.unchanged and same is not None:
                self.ledger.record_file(doc.source, file_hash, doc.doc_id, same.id, now)
                return Applied(Change.unchanged, same, len(chunks))
            if plan.write is Write.restore and same is not None:
                return self._restore(same, doc, file_hash, len(chunks), now)
            record = self._write_version(doc, chunks, file_hash, plan, series, vectors or {}, now)
            return Applied(Change.corrected if same else Change.new_version, record, len(chunks))

    def _plan(
        self, doc: Document, series: list[VersionRecord], file_hash: str, ids: list[str], now: datetime
    ) -> WritePlan:
        """The plan of rule 3 for this file, once it is sure the file may write it; the series the file left (a
        new doc_id or region) is released first."""
        previous = self.ledger.file(doc.source)
        previous_id = previous.version_id if previous is not None else None
        plan = plan_write(doc, series, previous_id, file_hash, ids, self.ledger.chunk_ids)
        self._refuse_a_second_source(doc, plan)
        self._release_the_series_left(previous_id, doc, now)
        return plan

    def _restore(self, same: VersionRecord, doc: Document, file_hash: str, chunks: int, now: datetime) -> Applied:
        self.ledger.restore_version(same.id, doc.source, file_hash, now, feed.published(same, now, restored=True))
        self.changefeed.notify()
        self.refresh(same.series)
        return Applied(Change.restored, self.ledger.version(same.id), chunks)

    def _write_version(
        self,
        doc: Document,
        chunks: Sequence[Chunk],
        file_hash: str,
        plan: WritePlan,
        series: list[VersionRecord],
        vectors: Mapping[str, np.ndarray],
        now: datetime,
    ) -> VersionRecord:
        """A new version, or a new revision of ``plan.same``: vectors first, then the ledger, then the views."""
        same = plan.same
        matrix = self._vectors(chunks, series, vectors)
        effective_from = doc.effective_from or (same.effective_from if same else now)
        record = self.ledger.commit_version(
            doc, plan.number, effective_from, self._review_due(doc, effective_from), chunks, file_hash, now,
            replaces=same, event=lambda written: feed.published(written, now, corrected=same is not None),
        )  # fmt: skip
        if same is not None:
            self.index.drop(same.id)
        self.index.put(record.id, [c.chunk_id for c in chunks], matrix, [c.embed_text for c in chunks])
        self.refresh(record.series, records=[*(r for r in series if same is None or r.id != same.id), record])
        self.changefeed.notify()
        return record

    def _review_due(self, doc: Document, effective_from: datetime) -> datetime:
        """``review_by`` when given, else a review cycle on from the last review, or from the start of the version."""
        cycle_start = doc.last_reviewed or effective_from
        return doc.review_by or cycle_start + (doc.review_every or self.settings.default_review_interval)

    def _release(self, version_id: int, now: datetime) -> VersionStatus | None:
        """Rule 4 for a version that lost its file: retired if in force, retracted if future, else kept."""
        record = self.ledger.version(version_id)
        validity = next((v for v in self.timeline.series(*record.series) if v.record.id == record.id), None)
        status = validity.status(now) if validity else None
        self.changefeed.catch_up(writing=True)
        if status is VersionStatus.in_force:
            self.ledger.end_version(record.id, "retired_at", now, feed.ended_by_file(record, now, status))
        elif status is VersionStatus.future:
            self.ledger.end_version(record.id, "retracted_at", now, feed.ended_by_file(record, now, status))
        self.refresh(record.series)
        if status in (VersionStatus.in_force, VersionStatus.future):
            self.changefeed.notify()
        return status

    def remove_file(self, path: str) -> VersionStatus | None:
        """The file is gone: what its version was then (None when it never made one)."""
        now = self.now()
        with self._lock:
            file = self.ledger.file(path)
            if file is None:
                return None
            self.ledger.forget_file(path)
            return self._release(file.version_id, now) if file.version_id is not None else None

    def move_file(self, old: str, new: str) -> None:
        with self._lock:
            self.ledger.move_file(old, new, self.now())
            file = self.ledger.file(new)
            if file is not None and file.version_id is not None:
                self.refresh(self.ledger.version(file.version_id).series)

    def record_error(
        self, path: str, file_hash: str, reason: str, kind: str = "parse_error", doc_id: str | None = None
    ) -> None:
        now = self.now()
        with self._lock:
            self.changefeed.catch_up(writing=True)
            self.ledger.record_file_error(
                path, file_hash, reason, kind, now, doc_id, feed.rejected(path, reason, now, doc_id)
            )
        self.changefeed.notify()
