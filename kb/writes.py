"""The write rules as a pure decision: what a saved file does to its series.

Rule 3 of the README's "How versions behave": a file that keeps its explicit ``version`` corrects that version;
changed text with a new or no ``version`` is a new version; a file with no ``version`` whose text is unchanged
but whose front matter changed corrects the version it made. Rule 4's other half: a deleted file that comes
back unchanged restores its version. ``Committer.apply`` (kb/commit.py) carries the plan out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from kb.documents import Document
from kb.records import VersionRecord


class Write(StrEnum):
    unchanged = "unchanged"
    """The same file with the same chunks: nothing is written but the file's row."""
    restore = "restore"
    """A deleted file came back unchanged: its retired or retracted version serves again."""
    correct = "correct"
    """The same version number with new text or keys: a new revision replaces it, the old one kept in history."""
    new = "new"
    """A new version of the series."""


@dataclass(frozen=True)
class WritePlan:
    write: Write
    same: VersionRecord | None
    """The version corrected, restored or left unchanged; None for a new version."""
    number: int
    """The version number written (or kept)."""


def plan_write(
    doc: Document,
    series: Sequence[VersionRecord],
    previous_version_id: int | None,
    file_hash: str,
    chunk_ids: Sequence[str],
    stored_chunk_ids: Callable[[int], list[str]],
) -> WritePlan:
    """``series``: the current revisions of the file's series; ``previous_version_id``: the version its path
    held before; ``stored_chunk_ids``: a version's chunk ids as stored (a file cut anew by another chunk size is
    a correction even when its bytes did not change)."""
    same = _same_version(doc, series, previous_version_id)
    if same is not None and same.file_hash == file_hash and stored_chunk_ids(same.id) == list(chunk_ids):
        return WritePlan(Write.restore if same.retired_at or same.retracted_at else Write.unchanged, same, same.version)
    if same is not None:
        return WritePlan(Write.correct, same, same.version)
    return WritePlan(Write.new, None, doc.version or max((r.version for r in series), default=0) + 1)


def _same_version(
    doc: Document, series: Sequence[VersionRecord], previous_version_id: int | None
) -> VersionRecord | None:
    """The version this file writes again, if any: the one its explicit ``version`` names, else the one its path
    made, as long as the body is the same."""
    if doc.version is not None:
        return next((r for r in series if r.version == doc.version), None)
    same = next((r for r in series if previous_version_id is not None and r.id == previous_version_id), None)
    if same is not None and same.content_hash != doc.content_hash:
        return None  # the body changed: a new version, not a correction
    return same
