"""Which version is in force when and where, decided at query time: rules 1, 2, 6 and 7 of the README
("How versions behave").

A version is in force on ``[effective_from, end)``; ``end`` is the earliest of its own ``effective_to``, the
``effective_from`` of the next (not retracted) version of its series, and the moment its file was deleted.
A future version therefore ends its predecessor only on its own date: no scheduler, just arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cached_property

from kb.records import VersionRecord


class VersionStatus(StrEnum):
    in_force = "in_force"
    """Served to agents now (or at the asked ``as_of``)."""
    future = "future"
    """Its effective_from has not come yet; it switches on by itself."""
    superseded = "superseded"
    """A later version of its series took over."""
    expired = "expired"
    """Its own effective_to passed."""
    retired = "retired"
    """Its file was deleted while it was in force."""
    retracted = "retracted"
    """A future version whose file was deleted before its date: never served."""
    corrected = "corrected"
    """An earlier text of a version, replaced by an edit that kept the version number."""


@dataclass(frozen=True)
class Validity:
    record: VersionRecord
    end: datetime | None
    ended_by: VersionStatus | None
    """Why it ends: superseded, expired or retired; None while open-ended."""

    def status(self, at: datetime) -> VersionStatus:
        if self.record.replaced_at is not None:
            return VersionStatus.corrected
        if self.record.retracted_at is not None:
            return VersionStatus.retracted
        if at < self.record.effective_from:
            return VersionStatus.future
        if self.end is None or at < self.end:
            return VersionStatus.in_force
        return self.ended_by or VersionStatus.expired

    def in_force(self, at: datetime) -> bool:
        return self.status(at) is VersionStatus.in_force


def series_validity(records: Iterable[VersionRecord]) -> list[Validity]:
    """Validity of each current revision of one series, ordered by version."""
    ordered = sorted(records, key=lambda r: r.version)
    live = [r for r in ordered if r.retracted_at is None]
    following = {r.id: live[i + 1] for i, r in enumerate(live[:-1])}
    out = []
    for record in ordered:
        ends: list[tuple[datetime, VersionStatus]] = []
        if record.effective_to is not None:
            ends.append((record.effective_to, VersionStatus.expired))
        if record.id in following:
            ends.append((following[record.id].effective_from, VersionStatus.superseded))
        if record.retired_at is not None:
            ends.append((record.retired_at, VersionStatus.retired))
        end, why = min(ends, key=lambda e: e[0]) if ends else (None, None)
        out.append(Validity(record, end, why))
    return out


@dataclass(frozen=True, eq=False)
class Resolution:
    """The version of each doc_id served on a region chain at one moment, and how long that holds."""

    chain: tuple[str, ...]
    by_version_id: dict[int, Validity]
    """The version served for each doc_id, keyed by version id."""
    valid_from: datetime | None
    valid_until: datetime | None

    @cached_property
    def version_set(self) -> frozenset[int]:
        """The key of the index view: one object per resolution, so its hash is computed once."""
        return frozenset(self.by_version_id)

    def holds_at(self, at: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= at) and (
            self.valid_until is None or at < self.valid_until
        )


class Timeline:
    """All series in memory, grouped by region so a chain only visits its own regions."""

    def __init__(self, records: Iterable[VersionRecord] = ()) -> None:
        self._by_region: dict[str, dict[str, list[Validity]]] = {}
        grouped: dict[tuple[str, str], list[VersionRecord]] = {}
        for record in records:
            grouped.setdefault(record.series, []).append(record)
        for series, members in grouped.items():
            self.replace_series(series, members)

    def replace_series(self, series: tuple[str, str], records: Iterable[VersionRecord]) -> None:
        doc_id, region = series
        validities = series_validity(records)
        docs = self._by_region.setdefault(region, {})
        if validities:
            docs[doc_id] = validities
        else:
            docs.pop(doc_id, None)

    def series(self, doc_id: str, region: str) -> list[Validity]:
        return self._by_region.get(region, {}).get(doc_id, [])

    def snapshot(self) -> Timeline:
        """A copy that later writes leave alone, to read at leisure outside the lock writes take: the lists of
        validities are shared, as a write replaces a series' list and never changes one in place."""
        copy = Timeline()
        copy._by_region = {region: dict(docs) for region, docs in self._by_region.items()}
        return copy

    def all_series(self) -> Iterable[list[Validity]]:
        for docs in self._by_region.values():
            yield from docs.values()

    def has_region(self, region: str) -> bool:
        return bool(self._by_region.get(region))

    def regions_of(self, doc_id: str) -> list[str]:
        return sorted(region for region, docs in self._by_region.items() if doc_id in docs)

    def resolve(self, chain: tuple[str, ...], at: datetime) -> Resolution:
        """Rule 6: each doc_id from the most specific region of ``chain`` that has a version in force."""
        chosen: dict[str, Validity] = {}
        lo: datetime | None = None
        hi: datetime | None = None
        for region in chain:
            for doc_id, validities in self._by_region.get(region, {}).items():
                for validity in validities:
                    # The answer can only change at a boundary of a version we looked at.
                    for edge in (validity.record.effective_from, validity.end):
                        if edge is None:
                            continue
                        if edge <= at:
                            lo = edge if lo is None or edge > lo else lo
                        else:
                            hi = edge if hi is None or edge < hi else hi
                if doc_id in chosen:
                    continue
                for validity in reversed(validities):
                    if validity.in_force(at):
                        chosen[doc_id] = validity
                        break
        return Resolution(chain, {v.record.id: v for v in chosen.values()}, lo, hi)
