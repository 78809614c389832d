"""The knowledge base: one object that owns the data folder, the ledger, the vector store, the index and the clock.

It is put together from pieces that share those (kb/parts.py): opening and repair (kb/opening.py), the change
feed (kb/changefeed.py), the write side (kb/commit.py), queries (kb/reads.py) and listings (kb/listings.py).
``ingest`` decides *what* to write; the write side keeps every write all-or-nothing. The methods here are the
ones the server, ``ingest`` and the CLI call; each hands over to the piece that owns it.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import IO

import numpy as np

from kb import feed, opening, outlook
from kb.changefeed import ChangeFeed
from kb.commit import Applied, Change, Committer
from kb.documents import Chunk, Document
from kb.embedder import Embedder, load_embedder
from kb.errors import ConfigError
from kb.index import VectorIndex
from kb.ledger import Ledger
from kb.listings import Listings, SeriesSummary
from kb.opening import lock_data
from kb.parts import Clock, Parts, utc_now
from kb.reads import Reader
from kb.records import FileRecord, StoredChunk, VersionRecord
from kb.regions import REGIONS_FILE, RegionTree
from kb.retrieval import QueryAnswer, QueryRequest
from kb.settings import Settings
from kb.staleness import StalenessReason, StalenessRow
from kb.store import ChunkStore
from kb.timeline import Timeline, Validity, VersionStatus

__all__ = ["Applied", "Change", "Clock", "KnowledgeBase", "SeriesSummary", "lock_data", "utc_now"]


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
        self.writer = threading.RLock()
        """Held by whoever ingests (the start-up sync, the watcher, ``kb ingest``): one writer at a time."""
        self._regions_backup = settings.data / "regions.last-good.yaml"
        # The change sequence is read before the versions, so that a change committed while they load is applied
        # again by ``follow``, not missed.
        followed = ledger.change_seq()
        self.timeline = Timeline(ledger.versions())
        self.index = VectorIndex(embedder.dim, opening.block_loader(ledger, store, embedder.dim), store.vectors)
        self.parts = Parts(
            settings, embedder, ledger, store, clock, self.timeline, self.index, RegionTree.load(self._regions_backup)
        )
        self.parts.followed = followed
        self.feed = ChangeFeed(self.parts)
        self.commits = Committer(self.parts, self.feed)
        self.reads = Reader(self.parts)
        self.listings = Listings(self.parts)

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
                opening.warm(kb.timeline, kb.index, kb.now())
            else:
                kb.reload_regions()
                opening.repair(ledger, store, kb.commits.embed_into_store)
                opening.warm(kb.timeline, kb.index, kb.now())
                kb.feed.start()
                kb.catch_up()
            store.flush()  # the vectors read through Chroma while warming, for the next start
        except BaseException:
            lock.close()
            raise
        return kb

    def close(self) -> None:
        self.store.flush()
        self.ledger.close()
        self._lock_file.close()

    def now(self) -> datetime:
        return self.clock()

    @property
    def regions(self) -> RegionTree:
        return self.parts.regions

    @property
    def chunking(self) -> str | None:
        """How the ledger's chunks were cut (the chunker's signature); None before the first sync, or when they
        were cut before signatures were kept. Kept in the ledger, so that a standby writer taking over does not
        cut every file anew; a data folder from before that keeps it in a file."""
        path = self.settings.data / "chunking"
        return self.ledger.state("chunking") or (path.read_text(encoding="utf-8") if path.exists() else None)

    def record_chunking(self, signature: str) -> None:
        if self.ledger.state("chunking") != signature:
            self.ledger.put_state("chunking", signature)

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
        with self.parts.lock:
            self.parts.regions = regions
            self.parts.resolutions.clear()
        return None

    def _regions_from_ledger(self) -> None:
        dump = self.ledger.regions()
        if dump is not None:
            with self.parts.lock:
                self.parts.regions = RegionTree.loads(dump)
                self.parts.resolutions.clear()

    def chain(self, region: str) -> tuple[str, ...]:
        return self.parts.chain(region)

    # -- replicas and standby writers ------------------------------------------------------------------

    @property
    def followed(self) -> int:
        """The ledger's change sequence up to which this process's memory is current."""
        return self.parts.followed

    def follow(self, changed: Sequence[tuple[str | None, str | None]], seq: int) -> None:
        """The writer changed these series (a (None, None): the region tree) up to change ``seq``: refresh them."""
        if (None, None) in changed:
            self._regions_from_ledger()
        self.commits.refresh(*[(doc_id, region) for doc_id, region in dict.fromkeys(changed) if doc_id and region])
        self.parts.followed = seq

    def promote(self) -> None:
        """A standby that took the writer lease writes from now on: the normal start-up repair, so that what the
        previous writer left half done (vectors of an uncommitted version) is put right."""
        self.ledger.read_only = False
        self.reload_regions()
        opening.repair(self.ledger, self.store, self.commits.embed_into_store)
        self.feed.start()
        self.catch_up()

    # -- writes (kb/commit.py) -----------------------------------------------------------------------

    def ensure_embedded(self, chunks: Sequence[Chunk]) -> dict[str, np.ndarray]:
        return self.commits.ensure_embedded(chunks)

    def apply(
        self, doc: Document, chunks: Sequence[Chunk], file_hash: str, vectors: Mapping[str, np.ndarray] | None = None
    ) -> Applied:
        return self.commits.apply(doc, chunks, file_hash, vectors)

    def remove_file(self, path: str) -> VersionStatus | None:
        return self.commits.remove_file(path)

    def move_file(self, old: str, new: str) -> None:
        self.commits.move_file(old, new)

    def record_error(
        self, path: str, file_hash: str, reason: str, kind: str = "parse_error", doc_id: str | None = None
    ) -> None:
        self.commits.record_error(path, file_hash, reason, kind, doc_id)

    # -- change feed (kb/changefeed.py) --------------------------------------------------------------

    def on_change(self, callback: Callable[[], None]) -> None:
        self.feed.on_change(callback)

    def catch_up(self) -> None:
        self.feed.catch_up()

    def next_boundary(self) -> datetime | None:
        return self.feed.next_boundary()

    def changes(self, since: str | None = None, region: str | None = None, limit: int = 100) -> feed.ChangePage:
        return self.feed.changes(since, region, limit)

    # -- reads (kb/reads.py, kb/listings.py) ---------------------------------------------------------

    def query(self, request: QueryRequest) -> QueryAnswer:
        return self.reads.query(request)

    def files(self) -> dict[str, FileRecord]:
        return self.listings.files()

    def documents(self, include_all: bool = False) -> list[SeriesSummary]:
        return self.listings.documents(include_all)

    def history(self, doc_id: str) -> list[tuple[Validity, VersionStatus]]:
        return self.listings.history(doc_id)

    def version(
        self, doc_id: str, number: int, region: str | None
    ) -> tuple[Validity, VersionStatus, list[StoredChunk]]:
        return self.listings.version(doc_id, number, region)

    def texts(self, version_ids: Collection[int]) -> dict[int, list[StoredChunk]]:
        return self.listings.texts(version_ids)

    def in_force(self, doc_id: str, region: str) -> Validity:
        return self.listings.in_force(doc_id, region)

    def newer_base(self, record: VersionRecord) -> Validity | None:
        return self.listings.newer_base(record)

    def upcoming(self, days: int, region: str | None = None) -> list[outlook.Upcoming]:
        return self.listings.upcoming(days, region)

    def coverage(self) -> tuple[list[str], list[outlook.Coverage]]:
        return self.listings.coverage()

    def staleness(self) -> list[StalenessRow]:
        return self.listings.staleness()

    def staleness_counts(self) -> Counter[StalenessReason]:
        return self.listings.staleness_counts()

    def stats(self) -> dict[str, int]:
        return self.listings.stats()
