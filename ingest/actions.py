"""What a content team does from the report: confirm a review, acknowledge a deliberately different variant.

Each action writes a few keys into the file of the version in force (its own front matter, or the sidecar of a
file that cannot hold any) and ingests that file at once, as the watcher would: the folder stays the one source
of truth, and the row leaves the report as soon as the answer comes back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.errors import CannotEdit, EditConflict, InvalidDocument, InvalidRequest, ReadOnly
from kb.ingest.convert import TEXT_FORMATS, format_of
from kb.ingest.editing import (
    Value,
    check_edit,
    edit_front_matter,
    edit_sidecar,
    front_matter_keys,
    sidecar_keys,
    write_atomically,
)
from kb.ingest.metadata import SIDECAR_SUFFIX, combined_hash, merged_keys, metadata_files
from kb.ingest.pipeline import ingest_paths
from kb.knowledge import KnowledgeBase
from kb.ledger import VersionRecord

MAX_NAME = 200
MAX_NOTE = 500


@dataclass(frozen=True)
class Edited:
    record: VersionRecord
    """The version in force after the edit (a corrected revision of the one before)."""
    written: str
    """The file written, relative to the folder: the policy file or its sidecar."""


def _holds_front_matter(source: str) -> bool:
    fmt = format_of(source)
    return fmt is not None and fmt in TEXT_FORMATS


def current_hash(kb: KnowledgeBase, source: str) -> str:
    """The file's identity as ingest computes it (its bytes and its metadata files'): what a page shows as
    ``expected_hash`` is the version's ``file_hash``, equal to this until someone saves the file again."""
    root = kb.settings.docs
    try:
        data = (root / source).read_bytes()
        return combined_hash(data, metadata_files(root, source))
    except (FileNotFoundError, InvalidDocument):
        raise EditConflict(f"{source} is gone or unreadable since the page was made; reload it") from None


def _checked(kb: KnowledgeBase, record: VersionRecord, expected_hash: str | None) -> None:
    if kb.ledger.read_only:
        raise ReadOnly("this is an API replica: it has no policy folder to edit; send reviews to the writer")
    file = kb.files().get(record.source)
    if file is not None and file.error:
        raise CannotEdit(f"{record.source} is rejected ({file.error}); fix the file first")
    now = current_hash(kb, record.source)
    if expected_hash and expected_hash.strip('"') != now:
        raise EditConflict(
            f"{record.source} changed on disk since the page was made; nothing was written: reload and try again"
        )


def _effective_keys(kb: KnowledgeBase, source: str) -> dict[str, Any]:
    """The keys the version takes from its folder defaults, its sidecar and its own front matter."""
    root = kb.settings.docs
    keys = merged_keys(source, metadata_files(root, source))
    if _holds_front_matter(source):
        keys |= front_matter_keys(source, (root / source).read_text(encoding="utf-8-sig"))
    return keys


def _write(kb: KnowledgeBase, record: VersionRecord, updates: Mapping[str, Value]) -> Edited:
    root = kb.settings.docs
    own = _holds_front_matter(record.source)
    rel = record.source if own else record.source + SIDECAR_SUFFIX
    target = root / rel
    old = target.read_bytes() if target.exists() else None
    try:
        text = (old or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise CannotEdit(f"{rel} is not UTF-8 text; edit it by hand") from None
    if own:
        before, new = front_matter_keys(rel, text), edit_front_matter(rel, text, updates)
        after = front_matter_keys(rel, new)
    else:
        before, new = sidecar_keys(rel, text), edit_sidecar(text, updates)
        after = sidecar_keys(rel, new)
    check_edit(rel, before, after, updates)
    write_atomically(target, new.encode("utf-8"))
    report = ingest_paths(kb, [rel])
    problem = report.failed.get(record.source)
    if problem is not None:
        _restore(target, old)
        ingest_paths(kb, [rel])
        raise CannotEdit(f"{rel} would be rejected after the edit ({problem}); it was left as it was")
    return Edited(kb.in_force(record.doc_id, record.region).record, rel)


def _restore(target: Path, old: bytes | None) -> None:
    if old is None:
        target.unlink(missing_ok=True)
    else:
        write_atomically(target, old)


def _one_line(name: str, value: str | None, limit: int) -> str | None:
    text = " ".join((value or "").split())
    if len(text) > limit:
        raise InvalidRequest(f"{name} must be at most {limit} characters")
    return text or None


def confirm_review(
    kb: KnowledgeBase,
    doc_id: str,
    region: str,
    reviewed_by: str,
    note: str | None = None,
    expected_hash: str | None = None,
) -> Edited:
    """Write ``last_reviewed`` (today), ``reviewed_by``, ``review_note`` and the next ``review_by`` (unless the
    file keeps a ``review_every`` cycle, which then counts from ``last_reviewed``)."""
    who = _one_line("reviewed_by", reviewed_by, MAX_NAME)
    if who is None:
        raise InvalidRequest("reviewed_by must name who reviewed the document")
    record = kb.in_force(doc_id, region).record
    _checked(kb, record, expected_hash)
    today = kb.now().astimezone(kb.settings.zone).date()
    updates: dict[str, Value] = {"last_reviewed": today, "reviewed_by": who,
                                 "review_note": _one_line("note", note, MAX_NOTE)}  # fmt: skip
    if "review_every" not in _effective_keys(kb, record.source):
        updates["review_by"] = today + kb.settings.default_review_interval
    return _write(kb, record, updates)


def acknowledge_variant(
    kb: KnowledgeBase,
    doc_id: str,
    region: str,
    base_version: int | None = None,
    expected_hash: str | None = None,
) -> Edited:
    """Write ``in_sync_with: <base version>`` into a regional variant that is deliberately different from its
    newer base: ``variant_out_of_sync`` stops until the base changes again. ``base_version``: the one the
    person saw; a base that moved on since is a conflict."""
    record = kb.in_force(doc_id, region).record
    base = kb.newer_base(record)
    if base is None:
        raise CannotEdit(f"the {record.region} variant of {doc_id} is not out of sync with a newer base")
    if base_version is not None and base_version != base.record.version:
        raise EditConflict(
            f"the {base.record.region} base of {doc_id} is at version {base.record.version} now, not "
            f"{base_version}; reload the page and check it again"
        )
    _checked(kb, record, expected_hash)
    return _write(kb, record, {"in_sync_with": base.record.version})
