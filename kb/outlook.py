"""Two views of the timeline for content teams: what changes soon, and which variant each region is served.

Both read the timeline at one moment, like the staleness rules: nothing is stored or scheduled.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from kb.ledger import VersionRecord
from kb.staleness import csv_cell
from kb.timeline import Timeline, Validity, VersionStatus

MAX_DAYS = 366
"""The farthest the upcoming view looks ahead: a year."""


class UpcomingKind(StrEnum):
    takes_effect = "takes_effect"
    """A version's effective_from comes: agents of its region get it from then."""
    ends = "ends"
    """A version's effective_to comes and nothing follows it: its region falls back to a parent, or gets nothing."""


@dataclass(frozen=True)
class Upcoming:
    at: datetime
    kind: UpcomingKind
    record: VersionRecord
    replaces: int | None
    """The version it takes over from, when one is in force until then."""

    @property
    def day(self) -> date:
        """The first day in force, or the last one: an end is exclusive, so an effective_to date shows as itself."""
        return self.at.date() if self.kind is UpcomingKind.takes_effect else (self.at - timedelta(seconds=1)).date()


def upcoming(series: Iterable[Sequence[Validity]], now: datetime, until: datetime) -> list[Upcoming]:
    """Versions taking effect or ending (with no successor) in ``(now, until]``, soonest first."""
    out = []
    for validities in series:
        live = [v for v in validities if v.status(now) in (VersionStatus.in_force, VersionStatus.future)]
        for validity in live:
            record = validity.record
            if now < record.effective_from <= until:
                before = next((v for v in reversed(live) if v.end == record.effective_from and v is not validity), None)
                replaces = before.record.version if before is not None else None
                out.append(Upcoming(record.effective_from, UpcomingKind.takes_effect, record, replaces))
            end = validity.end
            if end is not None and now < end <= until and validity.ended_by is VersionStatus.expired:
                out.append(Upcoming(end, UpcomingKind.ends, record, None))
    out.sort(key=lambda u: (u.at, u.record.region, u.record.doc_id, u.kind.value))
    return out


@dataclass(frozen=True)
class Coverage:
    doc_id: str
    title: str
    served: dict[str, Validity | None]
    """For each region, the version its agents get now (maybe a parent region's), or None."""


def coverage(timeline: Timeline, chains: dict[str, tuple[str, ...]], now: datetime) -> list[Coverage]:
    """Each document by region: which variant each region's agents are served now (rule 6)."""
    resolved = {region: {v.record.doc_id: v for v in timeline.resolve(chain, now).by_version_id.values()}
                for region, chain in chains.items()}  # fmt: skip
    doc_ids = sorted({doc_id for served in resolved.values() for doc_id in served})
    out = []
    for doc_id in doc_ids:
        served = {region: resolved[region].get(doc_id) for region in chains}
        title = next(v.record.title for v in served.values() if v is not None)
        out.append(Coverage(doc_id, title, served))
    return out


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([csv_cell(value) for value in row] for row in rows)
    return out.getvalue()


def upcoming_csv(items: Iterable[Upcoming]) -> str:
    header = ("day", "kind", "region", "doc_id", "title", "version", "replaces", "owner", "source")
    return _csv(header, ((u.day, u.kind.value, u.record.region, u.record.doc_id, u.record.title, u.record.version,
                          u.replaces, u.record.owner, u.record.source) for u in items))  # fmt: skip


def coverage_csv(regions: Sequence[str], rows: Iterable[Coverage]) -> str:
    """One column per region: the region and version its agents are served (``EU v1``), empty for none."""

    def served(validity: Validity | None) -> str:
        return f"{validity.record.region} v{validity.record.version}" if validity is not None else ""

    return _csv(("doc_id", "title", *regions),
                ((row.doc_id, row.title, *(served(row.served[r]) for r in regions)) for row in rows))  # fmt: skip
