"""The knowledge base: one object that owns the ledger, the vector store, the index and the clock.

Reads (query, documents, staleness) and writes (apply a validated document, remove a file) both go
through it; ``ingest`` decides *what* to write, this module keeps every write all-or-nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import IO

import numpy as np

from kb import feed, outlook, pii
from kb.documents import Chunk, Document, normalize_region
from kb.embedder import Embedder, load_embedder
from kb.errors import (
    CannotEdit,
    ConfigError,
    ConflictingDocument,
    DataDirLocked,
    DocumentNotFound,
    InvalidRequest,
    VersionNotFound,
)
from kb.index import Hit, VectorIndex
from kb.ledger import Ledger
from kb.records import Event, FileRecord, StoredChunk, VersionRecord
from kb.regions import REGIONS_FILE, RegionTree
from kb.retrieval import QueryAnswer, QueryRequest, QueryResult, RetrievalMode
from kb.settings import Settings
from kb.staleness import Inspector, StalenessReason, StalenessRow, StalenessRules, ended_gap
from kb.store import ChunkStore
from kb.timeline import Resolution, Timeline, Validity, VersionStatus
from kb.writes import Write, WritePlan, plan_write

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


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


@dataclass(frozen=True)
class SeriesSummary:
    current: Validity
    """The version in force, else the latest one."""
    status: VersionStatus
    versions: int


def lock_data(data_dir: Path) -> IO[str]:
    """Hold ``--data`` for this process (released when the handle closes or the process ends)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "kb.lock", "a+")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DataDirLocked(
            f"the data folder {data_dir} is in use by another kb process (pid {holder}); stop it, "
            "or give this one its own --data"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class KnowledgeBase:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        ledger: Ledger,
        store: ChunkStore,
        clock: Clock,
        lock: IO[str],
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.ledger = ledger
        self.store = store
        self.clock = clock
        self._lock_file = lock
        self._lock = threading.RLock()
        self.writer = threading.RLock()
        """Held by whoever ingests (the start-up sync, the watcher, ``kb ingest``): one writer at a time."""
        self._regions_backup = settings.data / "regions.last-good.yaml"
        self.regions = RegionTree.load(self._regions_backup)
        self.followed = ledger.change_seq()
        """The ledger's change sequence up to which this process's memory is current (read before the versions,
        so that a change committed while they load is applied again, not missed)."""
        self.timeline = Timeline(ledger.versions())
        self.index = VectorIndex(embedder.dim, self._load_blocks)
        self._resolutions: dict[tuple[str, ...], list[Resolution]] = {}
        self._staleness_counts: tuple[tuple[int, int, datetime], Counter[StalenessReason]] | None = None
        self._listeners: list[Callable[[], None]] = []
        self._due: datetime | None = None
        """The next moment a version starts or ends after the feed's mark; None when none (or not yet known)."""
        self._due_known = False
        self._mark: datetime | None = None
        """Date-driven events up to this moment are in the feed (the ledger keeps it across restarts)."""

    @classmethod
    def open(
        cls,
        settings: Settings,
        embedder: Embedder | None = None,
        clock: Clock = utc_now,
        lock: IO[str] | None = None,
        read_only: bool = False,
    ) -> KnowledgeBase:
        """Lock ``--data`` (unless ``lock`` already holds it), repair the store from the ledger, and load what is
        in force into memory.

        ``read_only``: an API replica (or a standby writer) of a shared ledger: it loads what is in force and the
        writer's region tree, and writes nothing (no repair, no feed mark); ``follow`` keeps it current."""
        lock = lock or lock_data(settings.data)
        try:
            embedder = embedder or load_embedder(settings.model, settings.embedder, settings.data / "models")
            ledger = Ledger(settings.ledger_url or settings.data / "ledger.sqlite3", read_only=read_only)
            store = ChunkStore.open(settings.data, settings.chroma_url, embedder.model_id, embedder.dim)
            kb = cls(settings, embedder, ledger, store, clock, lock)
            if read_only:
                kb._regions_from_ledger()
                kb._warm()
            else:
                kb.reload_regions()
                kb._repair()
                kb._warm()
                kb._start_feed()
                kb.catch_up()
        except BaseException:
            lock.close()
            raise
        return kb

    def close(self) -> None:
        self.ledger.close()
        self._lock_file.close()

    def now(self) -> datetime:
        return self.clock()

    @property
    def chunking(self) -> str | None:
        """How the ledger's chunks were cut (the chunker's signature); None before the first sync, or when they
        were cut before signatures were kept."""
        path = self.settings.data / "chunking"
        return path.read_text(encoding="utf-8") if path.exists() else None

    def record_chunking(self, signature: str) -> None:
        (self.settings.data / "chunking").write_text(signature, encoding="utf-8")

    def reload_regions(self) -> str | None:
        """Take ``regions.yaml`` from the folder. A broken one keeps the last valid tree, is listed as a
        parse error, and its reason returned."""
        source = self.settings.docs / REGIONS_FILE
        try:
            regions = RegionTree.load(source)
        except ConfigError as exc:
            data = source.read_bytes() if source.exists() else b""
            self.record_error(REGIONS_FILE, hashlib.sha256(data).hexdigest(), exc.message)
            return exc.message
        if regions.dump() != self.regions.dump():
            self._regions_backup.write_text(regions.dump(), encoding="utf-8")
        if self.ledger.regions() != regions.dump():
            self.ledger.put_regions(regions.dump())  # for replicas, which have no folder
        if self.ledger.file(REGIONS_FILE) is not None:
            self.ledger.forget_file(REGIONS_FILE)
        with self._lock:
            self.regions = regions
            self._resolutions.clear()
        return None

    def _regions_from_ledger(self) -> None:
        dump = self.ledger.regions()
        if dump is not None:
            with self._lock:
                self.regions = RegionTree.loads(dump)
                self._resolutions.clear()

    # -- replicas and standby writers ----------------------------------------------------------------

    def follow(self, changed: Sequence[tuple[str | None, str | None]], seq: int) -> None:
        """The writer changed these series (a (None, None): the region tree) up to change ``seq``: refresh them."""
        if (None, None) in changed:
            self._regions_from_ledger()
        series = [(doc_id, region) for doc_id, region in dict.fromkeys(changed) if doc_id and region]
        self._refresh(*series)
        self.followed = seq

    def promote(self) -> None:
        """A standby that took the writer lease writes from now on: the normal start-up repair, so that what the
        previous writer left half done (vectors of an uncommitted version) is put right."""
        self.ledger.read_only = False
        self.reload_regions()
        self._repair()
        self._start_feed()
        self.catch_up()

    # -- start-up ----------------------------------------------------------------------------------

    def _repair(self) -> None:
        """Embed what the ledger names but the store lacks; drop vectors a crash left unreferenced."""
        wanted = self.ledger.all_chunk_ids()
        stored = self.store.ids()
        missing = sorted(wanted - stored)
        if missing:
            log.info("re-embedding %d chunks the vector store lacks", len(missing))
            texts = self.ledger.embed_texts_of(missing)
            self._embed_into_store(missing, [texts[cid] for cid in missing])
        orphans = [cid for cid in stored if cid not in wanted]
        if orphans:
            self.ledger.check_fence()  # a writer paused since it listed them must not delete a successor's vectors
            log.info("removing %d vectors no version refers to (left by an interrupted ingest)", len(orphans))
            self.store.delete(orphans)

    def _warm(self) -> None:
        now = self.now()
        live = [
            (v.record.region, v.record.id)
            for series in self.timeline.all_series()
            for v in series
            if v.status(now) in (VersionStatus.in_force, VersionStatus.future)
        ]
        # Region by region: a chain's rows then lie in a few long ranges of the index's matrix.
        self.index.load([vid for _, vid in sorted(live)])

    def _load_blocks(self, version_ids: Collection[int]) -> dict[int, tuple[list[str], np.ndarray, list[str]]]:
        """Chunk ids, vectors (from the store) and encoder texts (for BM25, from the ledger) of versions."""
        chunk_ids = self.ledger.chunk_ids_of(version_ids)
        flat = [cid for ids in chunk_ids.values() for cid in ids]
        vectors = self.store.vectors(flat) if flat else np.zeros((0, self.embedder.dim), np.float32)
        texts = self.ledger.embed_texts_of(list(dict.fromkeys(flat)))
        out, start = {}, 0
        for vid, ids in chunk_ids.items():
            out[vid] = (ids, vectors[start : start + len(ids)], [texts[cid] for cid in ids])
            start += len(ids)
        return out

    # -- writes --------------------------------------------------------------------------------------

    def _embed_into_store(self, ids: Sequence[str], texts: Sequence[str]) -> dict[str, np.ndarray]:
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
        return self._embed_into_store(missing, [unique[cid] for cid in missing])

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

    def _refresh(self, *series: tuple[str, str], records: Sequence[VersionRecord] | None = None) -> None:
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
                edge = feed.next_boundary([self.timeline.series(*key)], now)
                if edge is not None and (self._due is None or edge < self._due):
                    self._due = edge
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
            previous = self.ledger.file(doc.source)
            previous_id = previous.version_id if previous is not None else None
            ids = [c.chunk_id for c in chunks]
            plan = plan_write(doc, series, previous_id, file_hash, ids, self.ledger.chunk_ids)
            self._refuse_a_second_source(doc, plan)
            self._release_the_series_left(previous_id, doc, now)
            self.catch_up(writing=True)
            same = plan.same
            if plan.write is Write.unchanged and same is not None:
                self.ledger.record_file(doc.source, file_hash, doc.doc_id, same.id, now)
                return Applied(Change.unchanged, same, len(chunks))
            if plan.write is Write.restore and same is not None:
                self.ledger.restore_version(
                    same.id, doc.source, file_hash, now, feed.published(same, now, restored=True)
                )
                self._notify()
                self._refresh(same.series)
                return Applied(Change.restored, self.ledger.version(same.id), len(chunks))
            matrix = self._vectors(chunks, series, vectors or {})
            effective_from = doc.effective_from or (same.effective_from if same else now)
            # A review cycle counts from the last review when there was one (DESIGN: review_every).
            cycle_start = doc.last_reviewed or effective_from
            review_due = doc.review_by or cycle_start + (doc.review_every or self.settings.default_review_interval)
            record = self.ledger.commit_version(
                doc, plan.number, effective_from, review_due, chunks, file_hash, now, replaces=same,
                event=lambda written: feed.published(written, now, corrected=same is not None),
            )  # fmt: skip
            if same is not None:
                self.index.drop(same.id)
            self.index.put(record.id, ids, matrix, [c.embed_text for c in chunks])
            self._refresh(record.series, records=[*(r for r in series if same is None or r.id != same.id), record])
            self._notify()
            return Applied(Change.corrected if same else Change.new_version, record, len(chunks))

    def _release(self, version_id: int, now: datetime) -> VersionStatus | None:
        """Rule 4 for a version that lost its file: retired if in force, retracted if future, else kept."""
        record = self.ledger.version(version_id)
        validity = next((v for v in self.timeline.series(*record.series) if v.record.id == record.id), None)
        status = validity.status(now) if validity else None
        self.catch_up(writing=True)
        if status is VersionStatus.in_force:
            self.ledger.end_version(record.id, "retired_at", now, feed.ended_by_file(record, now, status))
        elif status is VersionStatus.future:
            self.ledger.end_version(record.id, "retracted_at", now, feed.ended_by_file(record, now, status))
        self._refresh(record.series)
        if status in (VersionStatus.in_force, VersionStatus.future):
            self._notify()
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
                self._refresh(self.ledger.version(file.version_id).series)

    def record_error(
        self, path: str, file_hash: str, reason: str, kind: str = "parse_error", doc_id: str | None = None
    ) -> None:
        now = self.now()
        with self._lock:
            self.catch_up(writing=True)
            self.ledger.record_file_error(
                path, file_hash, reason, kind, now, doc_id, feed.rejected(path, reason, now, doc_id)
            )
        self._notify()

    # -- change feed ---------------------------------------------------------------------------------

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (quickly: it runs on the writing thread) after each new event in the feed."""
        self._listeners.append(callback)

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()

    def _start_feed(self) -> None:
        """A new ledger (or one written before the feed existed) starts its feed now, with no backlog."""
        self._mark = self.ledger.feed_until()
        if self._mark is None:
            self._mark = self.now()
            self.ledger.add_date_events([], self._mark)

    def catch_up(self, writing: bool = False) -> None:
        """Append the date-driven events (took_effect, ended) whose moment has come since the last call.

        ``writing``: an event of a write follows at this moment, so the mark moves to now whatever happens; a
        version in force from this very moment is news of that write, not of its date.
        """
        if self.ledger.read_only:
            return  # the writer appends them; a replica reads them from the ledger
        now = self.now()
        with self._lock:
            since = self._mark
            if since is None or now <= since:
                return
            events: list[Event] = []
            # Scanning every series is only for when a boundary is due; reads in between cost nothing.
            if not self._due_known or (self._due is not None and self._due <= now):
                events = feed.date_events(self.timeline.all_series(), since, now)
                self._due = feed.next_boundary(self.timeline.all_series(), now)
                self._due_known = True
            if events:
                self.ledger.add_date_events(events, now)
            if events or writing:
                # With no event due, a write's own event moves the stored mark (Ledger._insert_events); a write
                # that makes none changes no date, so a restart may look at (stored mark, now] again safely.
                self._mark = now
        if events:
            self._notify()

    def next_boundary(self) -> datetime | None:
        """When the next version starts or ends: the moment a date-driven event is due (or a bit earlier)."""
        self.catch_up()
        return self._due

    def changes(self, since: str | None = None, region: str | None = None, limit: int = 100) -> feed.ChangePage:
        """The feed after cursor ``since``; a region sees the events of its chain (DE: DE, EU and global) that
        change what it is served."""
        try:
            cursor = int(since) if since not in (None, "") else 0
        except ValueError:
            raise InvalidRequest(f"since must be a cursor from an earlier answer's next, got {since!r}") from None
        if cursor < 0:
            raise InvalidRequest("since must not be negative")
        if not 1 <= limit <= feed.MAX_LIMIT:
            raise InvalidRequest(f"limit must be between 1 and {feed.MAX_LIMIT}, got {limit}")
        chain = self.chain(region) if region else None
        self.catch_up()
        events: list[Event] = []
        after = cursor
        while len(events) < limit:
            want = limit - len(events)
            batch, after = self.ledger.events_after(after, list(chain) if chain else None, want)
            events += [e for e in batch if chain is None or self._changes_what_is_served(e, chain)]
            if len(batch) < want:
                break
        return feed.ChangePage(events, after)

    def _changes_what_is_served(self, event: Event, chain: tuple[str, ...]) -> bool:
        """Rule 6 for the feed: an event of a series shadowed on the chain then (a global version while the EU
        variant is in force, for DE) changes nothing a DE agent is served."""
        if event.region is None or event.doc_id is None:
            return event.region is not None
        with self._lock:
            return not any(
                v.in_force(event.at)
                for own in chain[: chain.index(event.region)]
                for v in self.timeline.series(event.doc_id, own)
            )

    def files(self) -> dict[str, FileRecord]:
        return self.ledger.files()

    # -- reads ---------------------------------------------------------------------------------------

    def _resolve(self, chain: tuple[str, ...], at: datetime) -> Resolution:
        with self._lock:
            cached = self._resolutions.setdefault(chain, [])
            for resolution in cached:
                if resolution.holds_at(at):
                    return resolution
            resolution = self.timeline.resolve(chain, at)
            cached.insert(0, resolution)
            del cached[4:]
            return resolution

    def chain(self, region: str) -> tuple[str, ...]:
        try:
            return self.regions.chain(region)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None

    def query(self, request: QueryRequest) -> QueryAnswer:
        request.check()
        at = request.moment(self.now(), self.settings.zone)
        chain = self.chain(request.region)
        resolution = self._resolve(chain, at)
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
        inspector = self._inspector(at)
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
        if len(chain) > 1 and region not in self.regions and not self.timeline.has_region(region):
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

    def _rules(self) -> StalenessRules:
        settings = self.settings
        return StalenessRules(settings.expiring_soon, settings.review_due_soon, settings.stale_after, settings.pii)

    def _inspector(self, at: datetime) -> Inspector:
        """The flags of a query: it never reads the files table (and a query must stay cheap)."""
        return Inspector(self.timeline, self.regions, {}, at, self._rules())

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
            wanted = self.chain(region)[0]
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
            return self._inspector(now).newer_base(record, now)

    def upcoming(self, days: int, region: str | None = None) -> list[outlook.Upcoming]:
        """Versions that take effect or end (with nothing after them) in the next ``days`` days."""
        if not 1 <= days <= outlook.MAX_DAYS:
            raise InvalidRequest(f"days must be between 1 and {outlook.MAX_DAYS}, got {days}")
        now = self.now()
        with self._lock:
            found = outlook.upcoming(self.timeline.all_series(), now, now + timedelta(days=days))
        return [u for u in found if region is None or u.record.region == self.chain(region)[0]]

    def coverage(self) -> tuple[list[str], list[outlook.Coverage]]:
        """Every region (global, those with documents, those regions.yaml names) and what each is served now."""
        with self._lock:
            regions = {"global", *self.regions.names()} | {v[0].record.region for v in self.timeline.all_series() if v}
            ordered = sorted(regions, key=lambda r: (r != "global", r))
            chains = {region: self.regions.chain(region) for region in ordered}
            return ordered, outlook.coverage(self.timeline, chains, self.now())

    def staleness(self) -> list[StalenessRow]:
        files = self.ledger.files()
        # Only a rejected file's previous version is named in the report: not every version of the ledger.
        versions = {f.version_id: self.ledger.version(f.version_id) for f in files.values()
                    if f.error and f.version_id is not None}  # fmt: skip
        with self._lock:  # a snapshot, so that writes and queries need not wait for the whole report
            timeline, regions = self.timeline.snapshot(), self.regions
        rules = self._rules()
        return Inspector(timeline, regions, files, self.now(), rules).report(versions)

    def staleness_counts(self) -> Counter[StalenessReason]:
        """Report rows by reason, for /metrics: worked out again after a write or once a minute, never on every
        scrape (a scrape once recomputed the whole report, holding queries back meanwhile)."""
        key = (self.ledger.writes, self.followed, self.now().replace(second=0, microsecond=0))
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
            "chunks_stored": self.store.count(),
            "files_failing": sum(1 for f in self.ledger.files().values() if f.error),
        }
