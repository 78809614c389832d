"""What the pieces of the knowledge base share: the stores, the in-memory views of them, and the lock on the views.

``KnowledgeBase`` (kb/knowledge.py) builds one ``Parts`` and hands it to each piece: the change feed
(kb/changefeed.py), the write side (kb/commit.py), queries (kb/reads.py) and listings (kb/listings.py). Each
piece is a ``Part``, which reaches the shared objects under the names the pieces use, so a method reads the same
wherever it lives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kb.embedder import Embedder
from kb.errors import InvalidRequest
from kb.index import VectorIndex
from kb.ledger import Ledger
from kb.regions import RegionTree
from kb.settings import Settings
from kb.staleness import Inspector, StalenessRules
from kb.store import ChunkStore
from kb.timeline import Resolution, Timeline

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Parts:
    settings: Settings
    embedder: Embedder
    ledger: Ledger
    store: ChunkStore
    clock: Clock
    timeline: Timeline
    index: VectorIndex
    regions: RegionTree
    """Replaced whole when ``regions.yaml`` changes (``KnowledgeBase.reload_regions``), under ``lock``."""
    lock: threading.RLock = field(default_factory=threading.RLock)
    """Guards the in-memory views (timeline, index, regions, resolutions) while they are read or changed."""
    resolutions: dict[tuple[str, ...], list[Resolution]] = field(default_factory=dict)
    """Recent resolutions by region chain; cleared whenever the timeline or the regions change."""
    followed: int = 0
    """The ledger's change sequence up to which the views are current (a replica follows it, kb/replica.py)."""

    def now(self) -> datetime:
        return self.clock()

    def chain(self, region: str) -> tuple[str, ...]:
        try:
            return self.regions.chain(region)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None

    def rules(self) -> StalenessRules:
        settings = self.settings
        return StalenessRules(settings.expiring_soon, settings.review_due_soon, settings.stale_after, settings.pii)

    def inspector(self, at: datetime) -> Inspector:
        """The flags of a query: it never reads the files table (and a query must stay cheap)."""
        return Inspector(self.timeline, self.regions, {}, at, self.rules())


class Part:
    """One piece of the knowledge base, over the shared ``Parts``."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.settings = parts.settings
        self.embedder = parts.embedder
        self.ledger = parts.ledger
        self.store = parts.store
        self.timeline = parts.timeline
        self.index = parts.index
        self._lock = parts.lock
        self._resolutions = parts.resolutions

    def now(self) -> datetime:
        return self.parts.now()
