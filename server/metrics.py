"""Prometheus text exposition of a few counters and gauges; no client library needed for so few."""

from __future__ import annotations

import threading
from collections import Counter

from kb.knowledge import KnowledgeBase
from kb.staleness import StalenessReason


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.queries = 0
        self.query_seconds = 0.0

    def observe_query(self, seconds: float) -> None:
        with self._lock:
            self.queries += 1
            self.query_seconds += seconds

    def render(self, kb: KnowledgeBase | None) -> str:
        lines = [
            "# HELP kb_queries_total Queries answered by /v1/query.",
            "# TYPE kb_queries_total counter",
            f"kb_queries_total {self.queries}",
            "# HELP kb_query_seconds_total Time spent answering /v1/query.",
            "# TYPE kb_query_seconds_total counter",
            f"kb_query_seconds_total {self.query_seconds:.6f}",
        ]
        if kb is None:
            return "\n".join(lines) + "\n"
        for name, value in kb.stats().items():
            lines += [f"# TYPE kb_{name} gauge", f"kb_{name} {value}"]
        lines += [
            "# HELP kb_staleness_rows Staleness report rows by reason.",
            "# TYPE kb_staleness_rows gauge",
        ]
        counts = Counter(row.reason for row in kb.staleness())
        # Every reason, zeros included: an alert rule must see a series drop to 0, not vanish.
        lines += [f'kb_staleness_rows{{reason="{reason.value}"}} {counts[reason]}' for reason in StalenessReason]
        return "\n".join(lines) + "\n"
