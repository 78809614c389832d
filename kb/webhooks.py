"""Webhooks: every change-feed event POSTed to each ``KB_WEBHOOKS`` URL, signed, in order, at least once.

The outbox is the ledger itself: the events table and, per receiver, the cursor of the last event it
acknowledged (any 2xx). One thread per receiver posts the events after its cursor one by one; a failure is
retried with exponential backoff (kept in the ledger, so a restart neither forgets nor hurries it), and the
events behind it wait, so a receiver sees them in order. Queries and ingest never wait for a receiver: a write
only wakes the threads. A receiver may get an event twice (kb stopped between its 2xx and the cursor's
update); ``X-KB-Cursor`` lets it drop the repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from kb.feed import payload
from kb.knowledge import KnowledgeBase
from kb.records import Event

log = logging.getLogger("kb.webhooks")

BATCH = 100
FIRST_RETRY = 0.5
"""Seconds before the first retry; each further failure doubles it, up to ``MAX_RETRY``."""
MAX_RETRY = 60.0
IDLE = 60.0
"""Longest sleep with nothing due: a safety net, since writes and boundaries wake the threads anyway."""


def sign(secret: str, body: bytes) -> str:
    """The ``X-KB-Signature`` of a body: hex HMAC-SHA256 with ``KB_WEBHOOK_SECRET``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> float:
    return min(MAX_RETRY, FIRST_RETRY * 2 ** max(0, attempts - 1))


class _Receiver:
    def __init__(self, kb: KnowledgeBase, url: str, secret: str, timeout: float) -> None:
        self.kb, self.url, self.secret, self.timeout = kb, url, secret, timeout
        self.wake = threading.Event()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name=f"webhook {url}", daemon=True)

    def _post(self, event: Event) -> str | None:
        """None when the receiver acknowledged the event, else why not."""
        body = json.dumps(payload(event)).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json", "User-Agent": "kb-webhooks", "X-KB-Event": event.kind,
                "X-KB-Cursor": str(event.cursor), "X-KB-Signature": sign(self.secret, body),
            },
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - configured URL
                return None if 200 <= response.status < 300 else f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            return str(getattr(exc, "reason", exc))

    def deliver(self) -> float:
        """Post what is due; seconds until something else will be."""
        state = self.kb.ledger.webhook(self.url)
        now = datetime.now(UTC)
        if state.next_attempt_at is not None and state.next_attempt_at > now:
            return (state.next_attempt_at - now).total_seconds()
        events, _ = self.kb.ledger.events_after(state.cursor, None, BATCH)
        attempts = state.attempts
        for event in events:
            if self.stopping:
                return 0.0
            error = self._post(event)
            if error is not None:
                attempts += 1
                delay = backoff(attempts)
                log.warning("webhook %s: event %d not delivered (%s); retry %d in %.1fs",
                            self.url, event.cursor, error, attempts, delay)  # fmt: skip
                self.kb.ledger.webhook_failed(self.url, attempts, now + timedelta(seconds=delay), error)
                return delay
            self.kb.ledger.webhook_delivered(self.url, event.cursor)
            attempts = 0
        return 0.0 if len(events) == BATCH else IDLE

    def _run(self) -> None:
        while not self.stopping:
            self.wake.clear()
            try:
                self.kb.catch_up()
                wait = self.deliver()
                due = self.kb.next_boundary()
                if due is not None:
                    wait = min(wait, max(0.0, (due - self.kb.now()).total_seconds()))
            except Exception:  # a broken receiver or a closed ledger must not kill the thread silently
                log.exception("webhook %s: delivery loop failed; retrying", self.url)
                wait = MAX_RETRY
            if wait > 0:
                self.wake.wait(wait)


class WebhookDispatcher:
    """The receivers' threads; ``start`` subscribes them to the knowledge base's writes."""

    def __init__(self, kb: KnowledgeBase, urls: Sequence[str], secret: str, timeout: float = 10.0) -> None:
        self._receivers = [_Receiver(kb, url, secret, timeout) for url in urls]
        for url in urls:
            kb.ledger.webhook(url)  # a new receiver's place is taken now: it gets every event from here on
        kb.on_change(self.wake)

    def start(self) -> None:
        for receiver in self._receivers:
            receiver.thread.start()

    def wake(self) -> None:
        for receiver in self._receivers:
            receiver.wake.set()

    def stop(self) -> None:
        for receiver in self._receivers:
            receiver.stopping = True
            receiver.wake.set()
        for receiver in self._receivers:
            receiver.thread.join(timeout=30)
