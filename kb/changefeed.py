"""The change feed of a knowledge base: date-driven events appended as their moment comes, pages read by cursor,
and the listeners told of each new event. The events themselves are made in kb/feed.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from kb import feed
from kb.errors import InvalidRequest
from kb.parts import Part, Parts
from kb.records import Event


class ChangeFeed(Part):
    def __init__(self, parts: Parts) -> None:
        super().__init__(parts)
        self._listeners: list[Callable[[], None]] = []
        self._due: datetime | None = None
        """The next moment a version starts or ends after the feed's mark; None when none (or not yet known)."""
        self._due_known = False
        self._mark: datetime | None = None
        """Date-driven events up to this moment are in the feed (the ledger keeps it across restarts)."""

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (quickly: it runs on the writing thread) after each new event in the feed."""
        self._listeners.append(callback)

    def notify(self) -> None:
        for callback in self._listeners:
            callback()

    def start(self) -> None:
        """A new ledger (or one written before the feed existed) starts its feed now, with no backlog."""
        self._mark = self.ledger.feed_until()
        if self._mark is None:
            self._mark = self.now()
            self.ledger.add_date_events([], self._mark)

    def expect(self, edge: datetime | None) -> None:
        """A write put a version boundary at ``edge``: the feed looks again no later than then."""
        if edge is not None and (self._due is None or edge < self._due):
            self._due = edge

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
            self.notify()

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
        chain = self.parts.chain(region) if region else None
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
