"""The change feed: every change to what agents are served, in order, with a cursor that never skips or repeats.

Changes someone makes (a publish, a correction, a deleted file, a rejected file) are written by the same ledger
transaction that makes them. Changes a date makes (a future version taking effect, a version ending) are
derived from the timeline: whenever the feed is read or written, the boundaries passed since the last time are
appended, each at its own moment. No scheduler runs; a boundary passed while kb was down appears at the start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kb.records import Event, VersionRecord
from kb.timeline import Validity, VersionStatus

MAX_LIMIT = 1000


class ChangeKind(StrEnum):
    published = "published"
    """A new version was ingested (in force now, or from its effective_from), or a deleted file came back."""
    corrected = "corrected"
    """A version was edited keeping its number: its new text is served from now on."""
    took_effect = "took_effect"
    """A version published ahead of its date came into force on that date."""
    ended = "ended"
    """A version stopped being in force on a date: its effective_to passed, or a later version took over."""
    retired = "retired"
    """The file of the version in force was deleted: the document is no longer served in that region."""
    retracted = "retracted"
    """The file of a future version was deleted before its date: it will never be served."""
    rejected = "rejected"
    """A file could not be read or validated; what was in force stays in force."""


@dataclass(frozen=True)
class ChangePage:
    changes: list[Event]
    next: int
    """Pass it back as ``since`` to continue exactly after the last change seen."""


def payload(event: Event) -> dict[str, object]:
    """An event as the feed and the webhooks send it."""
    return {
        "cursor": str(event.cursor), "at": event.at.isoformat().replace("+00:00", "Z"), "kind": event.kind,
        "doc_id": event.doc_id, "region": event.region, "version": event.version, "source": event.source,
        "summary": event.summary,
    }  # fmt: skip


def _name(record: VersionRecord) -> str:
    region = f" ({record.region})" if record.region != "global" else ""
    return f"{record.doc_id}{region} v{record.version}"


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def event(kind: ChangeKind, record: VersionRecord, at: datetime, summary: str) -> Event:
    return Event(at, kind.value, record.doc_id, record.region, record.version, record.source, summary)


def published(record: VersionRecord, now: datetime, corrected: bool = False, restored: bool = False) -> Event:
    when = "in force now" if record.effective_from <= now else f"takes effect {_day(record.effective_from)}"
    if corrected:
        return event(ChangeKind.corrected, record, now, f"{_name(record)} corrected ({record.title}); {when}")
    what = "restored (its file came back)" if restored else "published"
    return event(ChangeKind.published, record, now, f"{_name(record)} {what} ({record.title}); {when}")


def ended_by_file(record: VersionRecord, now: datetime, status: VersionStatus) -> Event:
    if status is VersionStatus.in_force:
        return event(ChangeKind.retired, record, now, f"{_name(record)} retired: its file {record.source} was deleted")
    return event(ChangeKind.retracted, record, now,
                 f"{_name(record)} retracted: its file was deleted before {_day(record.effective_from)}")  # fmt: skip


def rejected(path: str, reason: str, now: datetime, doc_id: str | None) -> Event:
    summary = f"{path} rejected: {reason}; what was in force stays in force"
    return Event(now, ChangeKind.rejected.value, doc_id, None, None, path, summary)


def next_boundary(series: Iterable[list[Validity]], after: datetime) -> datetime | None:
    """The first moment after ``after`` at which a version starts or ends: when the feed next changes by date."""
    edges = (edge for validities in series for v in validities if v.record.retracted_at is None
             for edge in (v.record.effective_from, v.end) if edge is not None and edge > after)  # fmt: skip
    return min(edges, default=None)


def date_events(series: Iterable[list[Validity]], after: datetime, until: datetime) -> list[Event]:
    """took_effect and ended for every boundary in ``(after, until]``, in order of their moment.

    Boundaries at or before ``after`` were either in the feed already or were the moment of a write (a
    version published in force at once says so in its ``published`` event).
    """
    out: list[tuple[datetime, int, Event]] = []
    for validities in series:
        for validity in validities:
            if validity.record.retracted_at is not None:
                continue
            took = _took_effect(validity, validities, after, until)
            if took is not None:
                out.append((took.at, 1, took))
            ended = _ended(validity, validities, after, until)
            if ended is not None:
                out.append((ended.at, 0, ended))
    out.sort(key=lambda item: (item[0], item[1], item[2].doc_id or "", item[2].region or ""))
    return [item[2] for item in out]


def _took_effect(validity: Validity, series: list[Validity], after: datetime, until: datetime) -> Event | None:
    """The version started in ``(after, until]`` (and was not over at once, replaced from its very start)."""
    record = validity.record
    start, end = record.effective_from, validity.end
    if not (after < start <= until and (end is None or end > start)):
        return None
    previous = [v.record for v in series if v.end == start and v.ended_by is VersionStatus.superseded]
    replaces = f"; replaces v{previous[0].version}" if previous else ""
    return event(ChangeKind.took_effect, record, start, f"{_name(record)} took effect ({record.title}){replaces}")


def _ended(validity: Validity, series: list[Validity], after: datetime, until: datetime) -> Event | None:
    """The version reached a dated end in ``(after, until]``: superseded or expired (a retirement is the event of
    its deletion)."""
    record, end = validity.record, validity.end
    if end is None or not record.effective_from < end or validity.ended_by is VersionStatus.retired:
        return None
    if not after < end <= until:
        return None
    if validity.ended_by is VersionStatus.superseded:
        nxt = next((v.record for v in series if v.record.effective_from == end), None)
        why = f"superseded by v{nxt.version}" if nxt else "superseded"
    else:
        why = "expired"
    return event(ChangeKind.ended, record, end, f"{_name(record)} ended: {why}")
