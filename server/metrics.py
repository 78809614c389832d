"""Prometheus text exposition of a few counters, gauges and one histogram; no client library needed for so few."""

from __future__ import annotations

import bisect
import threading

from kb.ingest.health import IngestHealth
from kb.ingest.pipeline import IngestReport
from kb.ingest.watcher import FolderWatcher
from kb.knowledge import KnowledgeBase
from kb.staleness import StalenessReason

QUERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds: a warm query takes a few milliseconds; the upper buckets show a loaded or cold service."""


def _metric(name: str, kind: str, help_text: str, *samples: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.queries = 0
        self.query_seconds = 0.0
        self._buckets = [0] * len(QUERY_BUCKETS)

    def observe_query(self, seconds: float) -> None:
        with self._lock:
            self.queries += 1
            self.query_seconds += seconds
            index = bisect.bisect_left(QUERY_BUCKETS, seconds)
            if index < len(self._buckets):
                self._buckets[index] += 1

    def _histogram(self) -> list[str]:
        with self._lock:
            counts, total, seconds = list(self._buckets), self.queries, self.query_seconds
        samples, running = [], 0
        for bound, count in zip(QUERY_BUCKETS, counts, strict=True):
            running += count
            samples.append(f'kb_query_duration_seconds_bucket{{le="{bound}"}} {running}')
        samples += [
            f'kb_query_duration_seconds_bucket{{le="+Inf"}} {total}',
            f"kb_query_duration_seconds_sum {seconds:.6f}",
            f"kb_query_duration_seconds_count {total}",
        ]
        return _metric("kb_query_duration_seconds", "histogram", "Time to answer /v1/query.", *samples)

    def render(self, kb: KnowledgeBase | None, watcher: FolderWatcher | None, startup: IngestReport) -> str:
        lines = [
            *_metric("kb_queries_total", "counter", "Queries answered by /v1/query.",
                     f"kb_queries_total {self.queries}"),
            *_metric("kb_query_seconds_total", "counter", "Time spent answering /v1/query.",
                     f"kb_query_seconds_total {self.query_seconds:.6f}"),
            *self._histogram(),
            *_ingest(watcher.health if watcher is not None else IngestHealth(), startup),
            *_metric("kb_watcher_queue", "gauge", "Changed paths waiting to be ingested.",
                     f"kb_watcher_queue {watcher.queued() if watcher is not None else 0}"),
        ]  # fmt: skip
        if kb is None:
            return "\n".join(lines) + "\n"
        lines += _metric("kb_store_errors_total", "counter", "Vector store operations that failed.",
                         f"kb_store_errors_total {kb.store.errors}")  # fmt: skip
        for name, value in kb.stats().items():
            lines += [f"# TYPE kb_{name} gauge", f"kb_{name} {value}"]
        counts = kb.staleness_counts()
        # Every reason, zeros included: an alert rule must see a series drop to 0, not vanish.
        lines += _metric(
            "kb_staleness_rows", "gauge", "Staleness report rows by reason.",
            *(f'kb_staleness_rows{{reason="{reason.value}"}} {counts[reason]}' for reason in StalenessReason),
        )  # fmt: skip
        return "\n".join(lines) + "\n"


def _ingest(health: IngestHealth, startup: IngestReport) -> list[str]:
    """Counters of the start-up sync and the watcher together."""
    return [
        *_metric("kb_ingest_files_total", "counter", "Files ingested as a new or corrected version.",
                 f"kb_ingest_files_total {health.files_ingested + startup.written}"),
        *_metric("kb_ingest_rejected_total", "counter", "Files rejected into the report (parse_error, ...).",
                 f"kb_ingest_rejected_total {health.files_rejected + len(startup.failed)}"),
        *_metric("kb_ingest_chunks_embedded_total", "counter", "Chunks embedded (unchanged ones never are).",
                 f"kb_ingest_chunks_embedded_total {health.chunks_embedded + startup.embedded}"),
        *_metric("kb_ingest_batches_failed_total", "counter",
                 "Ingest batches that failed as a whole (store or disk errors) and were retried.",
                 f"kb_ingest_batches_failed_total {health.batches_failed}"),
        *_metric("kb_ingest_failing", "gauge", "1 while the latest ingest batch has failed.",
                 f"kb_ingest_failing {int(health.failing > 0)}"),
    ]  # fmt: skip
