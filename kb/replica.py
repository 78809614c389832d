"""An API replica follows the ledger's change sequence: every write transaction that changes versions names
the series it changed (kb/schema.py ``changes``), in order; the replica polls for new entries and refreshes
just those series in memory, as the writer does after its own writes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kb.errors import FellBehind
from kb.knowledge import KnowledgeBase

log = logging.getLogger("kb.replica")

POLL = 0.1
"""Seconds between polls: a save on the writer is served here within about this much after it commits."""


class Follower:
    def __init__(
        self, kb: KnowledgeBase, poll: float = POLL, on_fell_behind: Callable[[FellBehind], None] | None = None
    ) -> None:
        self.kb, self.poll = kb, poll
        self._on_fell_behind = on_fell_behind
        self.head = self.kb.followed
        """The newest change the ledger held at the last poll."""
        self.polled = time.monotonic()
        """When the last poll succeeded."""
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kb-follow", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def step(self) -> int:
        """Apply what changed since the last step; the number of changes applied."""
        changed, seq = self.kb.ledger.changes_after(self.kb.followed)
        if changed:
            self.kb.follow(changed, seq)
        self.head = max(seq, self.head) if changed else self.kb.ledger.change_seq()
        self.polled = time.monotonic()
        return len(changed)

    def _run(self) -> None:
        while not self._stopping.wait(0 if self.head > self.kb.followed else self.poll):
            try:
                self.step()
            except FellBehind as exc:  # what it missed is gone from the ledger: only a restart catches up
                if self._on_fell_behind is None:
                    log.error("%s", exc.message)
                else:
                    self._on_fell_behind(exc)
                return
            except Exception as exc:  # the database away for a moment: serve what is loaded, retry
                log.warning("could not follow the ledger: %s", exc)
                self._stopping.wait(1)

    def lag(self) -> dict[str, float | int]:
        """How far behind the writer this replica is: changes not applied yet, and seconds since it looked."""
        return {"changes_behind": max(0, self.head - self.kb.followed),
                "seconds_since_poll": round(time.monotonic() - self.polled, 3)}  # fmt: skip
