"""What content teams must look at, and the flags agents get beside a chunk that is still served.

Every rule reads the ledger as it is (the timeline, the files, the region tree) at one moment: nothing is
stored, so the report is right to the day without a scheduler.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from enum import StrEnum

from kb import pii
from kb.pii import PiiPolicy
from kb.records import FileRecord, VersionRecord
from kb.regions import REGIONS_FILE, RegionTree
from kb.timeline import Timeline, Validity, VersionStatus


class StalenessReason(StrEnum):
    review_overdue = "review_overdue"
    """The version in force is past its review date."""
    review_due_soon = "review_due_soon"
    """The version in force is due for review within the review window."""
    expired = "expired"
    """Its effective_to passed and no version succeeds it: agents get nothing (or a parent region's text)."""
    expiring_soon = "expiring_soon"
    """The version in force ends soon and nothing is scheduled to follow it."""
    orphaned = "orphaned"
    """The file of the version in force was deleted: the series is retired."""
    parse_error = "parse_error"
    """A file was rejected; the previous version (if any) is still served."""
    conflict = "conflict"
    """Two files claim the same doc_id, region and version, or explicit validity windows overlap."""
    variant_out_of_sync = "variant_out_of_sync"
    """A regional variant is older than the newest version of its parent region's document."""
    broken_reference = "broken_reference"
    """A Markdown link or ``see:`` reference points to a document that is not in force."""
    pii_detected = "pii_detected"
    """The text holds e-mail addresses, phone numbers, card numbers or IBANs."""
    stale_age = "stale_age"
    """The text in force has not changed for longer than ``KB_MAX_AGE``."""
    unsupported_file = "unsupported_file"
    """A file of a type kb does not read (not Markdown, text, DOCX, PDF or HTML) sits in the folder: not served."""


class Severity(StrEnum):
    low = "low"
    """Worth a look this month."""
    medium = "medium"
    """Agents are served something doubtful or nothing at all."""
    high = "high"
    """A change the owner made is not live, something vanished unexpectedly, or customer data is exposed."""


_SEVERITY = {
    StalenessReason.review_overdue: Severity.medium,
    StalenessReason.review_due_soon: Severity.low,
    StalenessReason.expired: Severity.medium,
    StalenessReason.expiring_soon: Severity.low,
    StalenessReason.orphaned: Severity.high,
    StalenessReason.parse_error: Severity.high,
    StalenessReason.conflict: Severity.high,
    StalenessReason.variant_out_of_sync: Severity.medium,
    StalenessReason.broken_reference: Severity.low,
    StalenessReason.pii_detected: Severity.high,
    StalenessReason.stale_age: Severity.low,
    StalenessReason.unsupported_file: Severity.medium,
}


@dataclass(frozen=True)
class StalenessRules:
    """The windows and policies of the settings, in the units the rules use."""

    expiring_soon: timedelta
    review_due_soon: timedelta
    max_age: timedelta
    pii: PiiPolicy


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


def _row(
    record: VersionRecord, reason: StalenessReason, since: datetime, detail: str, severity: Severity | None = None
) -> StalenessRow:
    return StalenessRow(
        record.doc_id, record.region, record.version, record.title, record.owner, record.source,
        reason, severity or _SEVERITY[reason], since.date(), detail,
    )  # fmt: skip


def _day(moment: datetime) -> date:
    return moment.date()


def _last_day(end: datetime) -> date:
    """The last day in force of an exclusive end."""
    return (end - timedelta(seconds=1)).date()


def ended_gap(validities: list[Validity], at: datetime) -> Validity | None:
    """The version of a series that expired or was retired last, when nothing of the series is in force at
    ``at``: the gap the report lists and the fallback a query warns about."""
    if any(v.in_force(at) for v in validities):
        return None
    ended = [v for v in validities if v.end is not None and v.end <= at
             and v.ended_by in (VersionStatus.expired, VersionStatus.retired)]  # fmt: skip
    return max(ended, key=lambda v: v.end or at) if ended else None


class Inspector:
    """The rules applied to one ledger state at one moment."""

    def __init__(
        self,
        timeline: Timeline,
        regions: RegionTree,
        files: dict[str, FileRecord],
        now: datetime,
        rules: StalenessRules,
    ) -> None:
        self.timeline = timeline
        self.regions = regions
        self.files = files
        self.now = now
        self.rules = rules

    # -- helpers shared by the flags of a query and the report ---------------------------------------

    def _parent_series(self, doc_id: str, region: str) -> tuple[str, list[Validity]] | None:
        """The series of the same document in the nearest parent region that has one."""
        for parent in self.regions.chain(region)[1:]:
            series = self.timeline.series(doc_id, parent)
            if series:
                return parent, series
        return None

    def newer_base(self, record: VersionRecord, at: datetime) -> Validity | None:
        """The parent region's newest version, when it starts after this variant's version: the base changed."""
        parent = self._parent_series(record.doc_id, record.region)
        if parent is None:
            return None
        live = [v for v in parent[1] if v.status(at) in (VersionStatus.in_force, VersionStatus.future)]
        newest = live[-1] if live else None
        if newest is None or newest.record.effective_from <= record.effective_from:
            return None
        # A variant acknowledged as in sync with this very base version stays quiet until the base moves on.
        return None if record.meta.get("in_sync_with") == newest.record.version else newest

    def in_force_on_chain(self, doc_id: str, region: str, at: datetime) -> Validity | None:
        for link in self.regions.chain(region):
            current = next((v for v in self.timeline.series(doc_id, link) if v.in_force(at)), None)
            if current is not None:
                return current
        return None

    def flags(self, validity: Validity, at: datetime) -> list[StalenessReason]:
        """Served flags of a version at ``at``, but ``pii_detected``, which is decided per chunk text."""
        out = []
        due = validity.record.review_due
        if due is not None and due <= at:
            out.append(StalenessReason.review_overdue)
        elif due is not None and due - at <= self.rules.review_due_soon:
            out.append(StalenessReason.review_due_soon)
        end, ended_by = validity.end, validity.ended_by
        if end is not None and ended_by is not VersionStatus.superseded and end - at <= self.rules.expiring_soon:
            out.append(StalenessReason.expiring_soon)
        if validity.record.region != "global" and self.newer_base(validity.record, at) is not None:
            out.append(StalenessReason.variant_out_of_sync)
        return out

    # -- the report -------------------------------------------------------------------------------------

    def _served_rows(self, current: Validity) -> Iterator[StalenessRow]:
        record, now = current.record, self.now
        for flag in self.flags(current, now):
            if flag is StalenessReason.review_overdue:
                due = record.review_due or now
                yield _row(record, flag, due, f"Review was due on {_day(due)}; confirm or update the text and "
                           "set a new review_by.")  # fmt: skip
            elif flag is StalenessReason.review_due_soon:
                due = record.review_due or now
                yield _row(record, flag, due - self.rules.review_due_soon, f"Review is due on {_day(due)}; confirm "
                           "or update the text before then and set a new review_by.")  # fmt: skip
            elif flag is StalenessReason.expiring_soon:
                end = current.end or now
                yield _row(record, flag, end - self.rules.expiring_soon, f"Ends after {_last_day(end)} with no "
                           "successor; publish a new version or extend effective_to.")  # fmt: skip
            elif flag is StalenessReason.variant_out_of_sync:
                base = self.newer_base(record, now)
                assert base is not None  # flags() just found it
                b = base.record
                # Since the base changed: its date in force, or when it was written if that is still ahead.
                changed = min(b.effective_from, b.ingested_at)
                yield _row(record, flag, changed, f"The {b.region} version {b.version} (effective "
                           f"{_day(b.effective_from)}) is newer than this {record.region} variant (effective "
                           f"{_day(record.effective_from)}); check whether the {record.region} text needs the same "
                           "change and publish a new version of it.")  # fmt: skip
        stale_from = record.effective_from + self.rules.max_age
        if stale_from <= now:
            yield _row(record, StalenessReason.stale_age, stale_from, f"Unchanged since "
                       f"{_day(record.effective_from)}; check it still holds and publish a new version or "
                       "retire it.")  # fmt: skip
        if record.pii:
            yield self._pii_row(record)
        for reference in record.references:
            broken = self._broken(record, reference)
            if broken is not None:
                yield _row(record, StalenessReason.broken_reference, broken[1], broken[0])

    def _pii_row(self, record: VersionRecord) -> StalenessRow:
        found = pii.describe(record.pii)
        if self.rules.pii is PiiPolicy.redact:
            detail = (f"The file holds {found}; they are redacted before serving. Remove them from "
                      f"{record.source}.")  # fmt: skip
            return _row(record, StalenessReason.pii_detected, record.ingested_at, detail, Severity.medium)
        them = "it" if sum(record.pii.values()) == 1 else "them"
        detail = (f"The text served to agents holds {found}; remove {them} from {record.source}, or list a team's "
                  "own address in KB_PII_ALLOW.")  # fmt: skip
        return _row(record, StalenessReason.pii_detected, record.ingested_at, detail)

    def _broken(self, record: VersionRecord, reference: str) -> tuple[str, datetime] | None:
        """What is wrong with one reference and since when, or None when it resolves to a document in force."""
        kind, _, target = reference.partition(":")
        if kind == "file":
            file = self.files.get(target)
            if file is None or file.doc_id is None:
                return (f"Links to {target}, which is not a policy file in the folder; fix the link or restore "
                        "the file.", record.ingested_at)  # fmt: skip
            doc_id, named = file.doc_id, f"{target} ({file.doc_id})"
        else:
            doc_id, named = target, target
        if self.in_force_on_chain(doc_id, record.region, self.now) is not None:
            return None
        ended = [v.end for region in self.regions.chain(record.region)
                 for v in self.timeline.series(doc_id, region) if v.end is not None and v.end <= self.now]  # fmt: skip
        since = max([*ended, record.effective_from])
        return (f"Refers to {named}, which is not in force for {record.region}; point the reference at a "
                "current document or publish one.", since)  # fmt: skip

    def _gap_rows(self, validities: list[Validity]) -> Iterator[StalenessRow]:
        now = self.now
        if any(v.status(now) is VersionStatus.future for v in validities):
            return  # a gap before a scheduled version is not an accident worth an alert
        last = ended_gap(validities, now)
        if last is None:
            return
        record, end = last.record, last.end or now
        fallback = self.in_force_on_chain(record.doc_id, record.region, now) if record.region != "global" else None
        if fallback is not None:
            outcome = f"{record.region} agents now get the {fallback.record.region} version {fallback.record.version}"
        else:
            outcome = "agents get nothing for this document now"
        if last.ended_by is VersionStatus.retired:
            yield _row(record, StalenessReason.orphaned, end, f"The file {record.source} was deleted on "
                       f"{_day(end)}; {outcome}. Restore the file or publish a successor.")  # fmt: skip
        elif last.ended_by is VersionStatus.expired:
            yield _row(record, StalenessReason.expired, end, f"Expired after {_last_day(end)} with no successor; "
                       f"{outcome}. Publish a new version or confirm the retirement.")  # fmt: skip

    def _window_conflicts(self, validities: list[Validity]) -> Iterator[StalenessRow]:
        """Consecutive versions whose declared dates contradict each other, while it still matters."""
        live = [v for v in validities if v.record.retracted_at is None]
        for before, after in zip(live, live[1:], strict=False):
            a, b = before.record, after.record
            if after.status(self.now) not in (VersionStatus.in_force, VersionStatus.future):
                continue
            if b.effective_from < a.effective_from:
                yield _row(b, StalenessReason.conflict, b.ingested_at, f"Version {b.version} starts "
                           f"{_day(b.effective_from)}, before version {a.version} ({_day(a.effective_from)}), so "
                           f"version {a.version} is never served; fix the effective_from dates.")  # fmt: skip
            elif a.effective_to is not None and a.effective_to > b.effective_from:
                yield _row(b, StalenessReason.conflict, b.ingested_at, f"Version {a.version} declares "
                           f"effective_to {_last_day(a.effective_to)} but version {b.version} starts "
                           f"{_day(b.effective_from)}; agents get version {b.version} from then. Shorten "
                           f"version {a.version}'s effective_to or move version {b.version}'s date.")  # fmt: skip

    def _file_rows(self, versions: dict[int, VersionRecord]) -> Iterator[StalenessRow]:
        for file in self.files.values():
            if file.error is None:
                continue
            previous = versions.get(file.version_id) if file.version_id is not None else None
            reason = StalenessReason(file.error_kind or StalenessReason.parse_error)
            if reason is StalenessReason.unsupported_file:
                detail = f"{file.error}. Convert it to a supported format, or move it out of the folder."
            elif previous is not None:
                detail = f"{file.error}. Fix the file; until then version {previous.version} stays in force."
            elif file.path == REGIONS_FILE:
                detail = f"{file.error}. Fix the file; until then the last valid region tree stays in force."
            else:
                detail = f"{file.error}. Fix the file; until then nothing from this file is served."
            yield StalenessRow(
                previous.doc_id if previous else file.doc_id,
                previous.region if previous else None,
                previous.version if previous else None,
                previous.title if previous else None,
                previous.owner if previous else None,
                file.path,
                reason,
                _SEVERITY[reason],
                (file.error_since or self.now).date(),
                detail,
            )  # fmt: skip

    def report(self, versions: dict[int, VersionRecord]) -> list[StalenessRow]:
        """Every row, most severe first; ``versions`` names what a failing file served before."""
        rows: list[StalenessRow] = []
        for validities in self.timeline.all_series():
            current = next((v for v in reversed(validities) if v.in_force(self.now)), None)
            rows.extend(self._served_rows(current) if current is not None else self._gap_rows(validities))
            rows.extend(self._window_conflicts(validities))
        rows.extend(self._file_rows(versions))
        order = list(Severity)
        rows.sort(key=lambda r: (-order.index(r.severity), r.reason.value, r.doc_id or "", r.region or "", r.source))
        return rows


def select(
    rows: Iterable[StalenessRow],
    reasons: Collection[StalenessReason] = (),
    owners: Collection[str] = (),
    regions: Collection[str] = (),
    severities: Collection[Severity] = (),
) -> list[StalenessRow]:
    """Rows matching every given filter (an empty filter matches all); owners compare case-insensitively."""
    wanted_owners = {o.casefold() for o in owners}
    return [
        r
        for r in rows
        if (not reasons or r.reason in reasons)
        and (not wanted_owners or (r.owner or "").casefold() in wanted_owners)
        and (not regions or r.region in regions)
        and (not severities or r.severity in severities)
    ]


CSV_COLUMNS = tuple(f.name for f in fields(StalenessRow))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A text a spreadsheet would run as a formula (a title or owner from a file, ``=HYPERLINK(...)``) is
    written with a leading apostrophe, which spreadsheets show as plain text."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: Iterable[object]) -> str:
    """Rows with the fields of ``StalenessRow`` (the API's rows too), one line each."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([csv_cell(getattr(row, column)) for column in CSV_COLUMNS])
    return out.getvalue()
