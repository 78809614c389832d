"""What content teams must look at, and the flags agents get beside a chunk that is still served."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from kb.ledger import FileRecord, VersionRecord
from kb.regions import REGIONS_FILE
from kb.timeline import Timeline, Validity, VersionStatus


class StalenessReason(StrEnum):
    review_overdue = "review_overdue"
    """The version in force is past its review date."""
    expiring_soon = "expiring_soon"
    """The version in force ends soon and nothing is scheduled to follow it."""
    expired = "expired"
    """Its effective_to passed and no version succeeds it: agents get nothing for this document."""
    orphaned = "orphaned"
    """The file of the version in force was deleted: the series is retired."""
    parse_error = "parse_error"
    """A file was rejected; the previous version (if any) is still served."""


class Severity(StrEnum):
    low = "low"
    """Worth a look this month."""
    medium = "medium"
    """Agents are served something doubtful or nothing at all."""
    high = "high"
    """A change the owner made is not live, or something vanished unexpectedly."""


_SEVERITY = {
    StalenessReason.review_overdue: Severity.medium,
    StalenessReason.expiring_soon: Severity.low,
    StalenessReason.expired: Severity.medium,
    StalenessReason.orphaned: Severity.high,
    StalenessReason.parse_error: Severity.high,
}


@dataclass(frozen=True)
class StalenessRow:
    doc_id: str | None
    region: str | None
    version: int | None
    title: str | None
    owner: str | None
    source: str
    reason: StalenessReason
    severity: Severity
    since: date
    detail: str


def _row(record: VersionRecord, reason: StalenessReason, since: datetime, detail: str) -> StalenessRow:
    return StalenessRow(
        record.doc_id, record.region, record.version, record.title, record.owner, record.source,
        reason, _SEVERITY[reason], since.date(), detail,
    )  # fmt: skip


def version_flags(validity: Validity, at: datetime, soon: timedelta) -> list[StalenessReason]:
    """Reasons that do not stop a chunk being served, for the ``flags`` of a query result."""
    flags = []
    due = validity.record.review_due
    if due is not None and due <= at:
        flags.append(StalenessReason.review_overdue)
    if validity.end is not None and validity.ended_by is not VersionStatus.superseded and validity.end - at <= soon:
        flags.append(StalenessReason.expiring_soon)
    return flags


def _series_rows(validities: list[Validity], now: datetime, soon: timedelta) -> Iterable[StalenessRow]:
    current = next((v for v in reversed(validities) if v.in_force(now)), None)
    if current is not None:
        for flag in version_flags(current, now, soon):
            if flag is StalenessReason.review_overdue:
                due = current.record.review_due or now
                detail = f"Review was due on {due.date()}; confirm or update the text and set a new review_by."
                yield _row(current.record, flag, due, detail)
            else:
                end = current.end or now
                detail = f"Ends on {end.date()} with no successor; publish a new version or extend effective_to."
                yield _row(current.record, flag, now, detail)
        return
    if any(v.status(now) is VersionStatus.future for v in validities):
        return  # a gap before a scheduled version is not an accident worth an alert
    ended = [
        v for v in validities if v.end is not None and v.end <= now and v.status(now) is not VersionStatus.retracted
    ]
    if not ended:
        return
    last = max(ended, key=lambda v: v.end or now)
    end = last.end or now
    if last.ended_by is VersionStatus.retired:
        detail = (
            f"The file {last.record.source} was deleted on {end.date()}; agents get nothing for this "
            "document now. Restore the file or publish a successor."
        )
        yield _row(last.record, StalenessReason.orphaned, end, detail)
    elif last.ended_by is VersionStatus.expired:
        detail = (
            f"Expired on {(end - timedelta(seconds=1)).date()} with no successor; agents get nothing for this "
            "document now. Publish a new version or confirm the retirement."
        )
        yield _row(last.record, StalenessReason.expired, end, detail)


def staleness_report(
    timeline: Timeline,
    files: Iterable[FileRecord],
    versions: dict[int, VersionRecord],
    now: datetime,
    soon: timedelta,
) -> list[StalenessRow]:
    """Every row, most severe first; ``versions`` names what a failing file served before."""
    rows: list[StalenessRow] = []
    for validities in timeline.all_series():
        rows.extend(_series_rows(validities, now, soon))
    for file in files:
        if file.error is None:
            continue
        previous = versions.get(file.version_id) if file.version_id is not None else None
        if previous is not None:
            kept = f"version {previous.version} stays in force"
        elif file.path == REGIONS_FILE:
            kept = "the last valid region tree stays in force"
        else:
            kept = "nothing from this file is served"
        rows.append(
            StalenessRow(
                previous.doc_id if previous else file.doc_id,
                previous.region if previous else None,
                previous.version if previous else None,
                previous.title if previous else None,
                previous.owner if previous else None,
                file.path,
                StalenessReason.parse_error,
                _SEVERITY[StalenessReason.parse_error],
                (file.error_since or now).date(),
                f"{file.error}. Fix the file; until then {kept}.",
            )  # fmt: skip
        )
    order = list(Severity)
    rows.sort(key=lambda r: (-order.index(r.severity), r.reason.value, r.doc_id or "", r.region or "", r.source))
    return rows


CSV_COLUMNS = (
    "doc_id",
    "region",
    "version",
    "title",
    "owner",
    "source",
    "reason",
    "severity",
    "since",
    "detail",
)


def to_csv(rows: Iterable[StalenessRow]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = [getattr(row, column) for column in CSV_COLUMNS]
        writer.writerow(["" if v is None else v for v in values])
    return out.getvalue()
