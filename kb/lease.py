"""The writer lease: one kb process at a time writes a shared ledger; another waits as standby and takes over
when the writer stops renewing (killed, hung, cut off).

The lease is one row of the ledger (holder, epoch, expires_at). The writer renews it every ``renew`` seconds.
A standby takes it over once it has seen the very same row, unrenewed, for ``ttl`` seconds of its own
monotonic clock, so no two machines' clocks are compared; the takeover is a compare-and-set that bumps the
epoch. Every write transaction checks that epoch inside the transaction (Ledger.fence): a writer paused past
its lease wakes up unable to commit anything, and learns at its next renewal that it lost the lease.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from kb.errors import LeaseLost
from kb.ledger import Ledger

log = logging.getLogger("kb.lease")

TTL = 3.0
"""Seconds an unrenewed lease is honoured: a standby takes over at most this long (plus a poll) after a kill."""
RENEW = 1.0
POLL = 0.25


class WriterLease:
    def __init__(
        self,
        ledger: Ledger,
        on_lost: Callable[[LeaseLost], None],
        tick: Callable[[], None] | None = None,
        ttl: float = TTL,
        renew: float = RENEW,
        poll: float = POLL,
    ) -> None:
        self.ledger, self.on_lost, self.tick = ledger, on_lost, tick
        self.ttl, self.renew, self.poll = ttl, renew, poll
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.epoch: int | None = None
        self.waited = 0.0
        """Seconds spent as standby before the lease was taken."""
        self._stopping = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> bool:
        """Wait as standby until the lease is this process's (True), or until ``stop`` (False)."""
        started = seen_at = time.monotonic()
        seen: tuple[str | None, int, float] | None = None
        while not self._stopping.is_set():
            current = self.ledger.lease()
            if current != seen:
                if seen is None or current[1] != seen[1]:
                    log.info("standby: %s holds the writer lease (epoch %d)", current[0] or "nobody", current[1])
                seen, seen_at = current, time.monotonic()
            if current[0] is None or time.monotonic() - seen_at >= self.ttl:
                epoch = self.ledger.take_lease(self.holder, current, time.time() + self.ttl)
                if epoch is not None:
                    self.epoch, self.waited = epoch, time.monotonic() - started
                    self.ledger.fence = (self.holder, epoch)
                    log.info("took the writer lease (epoch %d, after %.1f s as standby)", epoch, self.waited)
                    self._renewer = threading.Thread(target=self._keep, name="kb-lease", daemon=True)
                    self._renewer.start()
                    return True
            self._stopping.wait(self.poll)
        return False

    def _keep(self) -> None:
        assert self.epoch is not None
        renewed = time.monotonic()
        while not self._stopping.wait(self.renew):
            try:
                held = self.ledger.renew_lease(self.holder, self.epoch, time.time() + self.ttl)
            except Exception as exc:  # the database unreachable: held until the TTL says otherwise
                log.warning("could not renew the writer lease: %s", exc)
                held = time.monotonic() - renewed < self.ttl
            else:
                renewed = time.monotonic() if held else renewed
            if not held:
                self._stopping.set()
                self.on_lost(LeaseLost(f"the writer lease (epoch {self.epoch}) was lost: another writer took over"))
                return
            if self.tick is not None:
                try:
                    self.tick()
                except Exception:
                    log.exception("the writer's periodic work failed")

    def stop(self) -> None:
        """Stop waiting or renewing; a held lease is released, so that a standby takes over at once."""
        self._stopping.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        if self.epoch is not None:
            try:
                self.ledger.release_lease(self.holder, self.epoch)
            except Exception as exc:
                log.warning("could not release the writer lease (a standby takes over after %.0f s): %s", self.ttl, exc)
