"""What ingestion has done and whether it is failing: for /readyz, /metrics and the log.

A failed batch (a full disk, a read-only or unreachable store) used to show only in the log while the
watcher retried; these counters make it visible where operators look.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from kb.ingest.pipeline import IngestReport


@dataclass
class IngestHealth:
    files_ingested: int = 0
    """Versions written, corrected or restored."""
    files_rejected: int = 0
    """Files that became a row of the report instead (parse_error, conflict, ...)."""
    chunks_embedded: int = 0
    batches_failed: int = 0
    """Whole ingest calls that raised (not a file's own error): each is retried."""
    failing: int = 0
    """Batches failed in a row; 0 once one succeeds."""
    last_error: str | None = None
    since: datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def succeeded(self, report: IngestReport) -> None:
        with self._lock:
            self.files_ingested += report.written
            self.files_rejected += len(report.failed)
            self.chunks_embedded += report.embedded
            self.failing, self.last_error, self.since = 0, None, None

    def failed(self, exc: BaseException, now: datetime) -> None:
        with self._lock:
            self.batches_failed += 1
            self.failing += 1
            self.last_error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self.since = self.since or now

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {
                "failing_batches": self.failing,
                "last_error": self.last_error,
                "since": self.since.isoformat() if self.since else None,
                "what_to_do": "changed files are retried every few seconds; check the disk and the store",
            }
