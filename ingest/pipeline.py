"""Turning the folder into versions: one function for the CLI, start-up and (later) the watcher.

``sync(kb)`` reconciles the whole folder with the ledger; ``ingest_paths(kb, paths)`` does the same for
some paths. Unchanged files are skipped by hash before parsing; all new chunks of a batch are embedded
together (throughput), then each file becomes visible in its own ledger transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kb import pii
from kb.documents import Chunk, Document
from kb.errors import InvalidDocument, PersonalData
from kb.ingest.chunking import Chunker
from kb.ingest.convert import TEXT_FORMATS, format_of, page_at, to_markdown
from kb.ingest.files import OutsideFolder, read_inside
from kb.ingest.frontmatter import decode, read_document, split_front_matter
from kb.ingest.kinds import FileKind, classify, display_path, is_policy_file, scan, unnamable, unsupported_reason
from kb.ingest.markdown import link_targets, parse_sections
from kb.ingest.metadata import MetadataFile, combined_hash, described_file, is_sidecar, merged_keys
from kb.ingest.metadata import metadata_files as _metadata_files
from kb.knowledge import Change, KnowledgeBase
from kb.pii import PiiPolicy
from kb.records import FileRecord
from kb.regions import REGIONS_FILE
from kb.settings import Settings
from kb.timeline import VersionStatus

log = logging.getLogger("kb.ingest")

GROUP_FILES = 32
"""Files parsed and embedded together: large enough for batched embedding, small enough that a bulk drop
becomes visible progressively."""


@dataclass(frozen=True)
class ParsedFile:
    doc: Document
    chunks: list[Chunk]
    file_hash: str


@dataclass
class IngestReport:
    changes: list[str] = field(default_factory=list)
    """One sentence per version written, moved, retired or retracted."""
    failed: dict[str, str] = field(default_factory=dict)
    unsupported: list[str] = field(default_factory=list)
    """Files of a type kb does not read, newly listed in the report."""
    unchanged: int = 0
    embedded: int = 0
    chunks: int = 0
    total: int = 0
    """Files found changed and to be parsed and embedded (progress of a long sync)."""
    done: int = 0
    """Of those, how many are written or rejected so far."""
    written: int = 0
    """Versions written, corrected or restored."""

    def change(self, sentence: str) -> None:
        self.changes.append(sentence)
        log.info(sentence)

    def fail(self, path: str, reason: str) -> None:
        self.failed[path] = reason
        log.warning("%s rejected: %s; what was in force stays in force", path, reason)


def _screen(path: str, text: str, body: str, settings: Settings) -> tuple[str, dict[str, int]]:
    """Apply ``KB_PII`` to the body: the body to use and what was found in it."""
    findings = pii.scan(body, settings.pii_allow)
    if not findings:
        return body, {}
    found = pii.counts(findings)
    if settings.pii is PiiPolicy.reject:
        page = page_at(body, findings[0].start)
        line = text.count("\n", 0, len(text) - len(body)) + body.count("\n", 0, findings[0].start) + 1
        where = f"page {page}" if page is not None else f"line {line}"  # a converted PDF's lines mean nothing
        raise PersonalData(
            path,
            f"holds {pii.describe(found)} (the first on {where}); agents must not be fed customer data: "
            "remove them, or list a team's own address in KB_PII_ALLOW",
        )
    return (pii.redact(body, findings) if settings.pii is PiiPolicy.redact else body), found


def parse_file(
    kb: KnowledgeBase,
    chunker: Chunker,
    path: str,
    data: bytes,
    doc_id: str | None,
    metadata: list[MetadataFile] | None = None,
) -> ParsedFile:
    """Pure but for the settings it reads: bytes (and the metadata files governing them) in, a document and its
    chunks out. Own front matter beats the sidecar, which beats the folders' defaults."""
    metadata = metadata or []
    fmt = format_of(path)
    if fmt is None or fmt in TEXT_FORMATS:
        text = decode(path, data, kb.settings.max_file_bytes)
        own, body = split_front_matter(path, text)
    else:
        text = body = to_markdown(path, data, fmt, kb.settings.max_converted_bytes)
        own = {}
    raw = {**merged_keys(path, metadata), **own}
    body, found = _screen(path, text, body, kb.settings)
    title, sections = parse_sections(body)
    doc = read_document(path, raw, body, kb.settings.zone, title, doc_id, link_targets(body), found)
    chunks = chunker.chunk(doc.title, sections)
    if not chunks:
        raise InvalidDocument(path, "the document has no text below its front matter")
    limit = kb.settings.max_chunks_per_file
    if len(chunks) > limit:
        raise InvalidDocument(
            path,
            f"{len(chunks):,} chunks, over the limit of {limit:,} (KB_MAX_CHUNKS_PER_FILE); split it into documents",
        )
    return ParsedFile(doc, chunks, combined_hash(data, metadata))


def chunker_for(kb: KnowledgeBase) -> Chunker:
    return Chunker(kb.embedder.tokens, min(kb.settings.chunk_tokens, kb.embedder.max_text_tokens))


def _describe(doc: Document, change: Change, version: int, chunks: int, embedded: int, effective: str) -> str:
    region = f" ({doc.region})" if doc.region != "global" else ""
    what = {Change.new_version: "ingested", Change.corrected: "corrected", Change.restored: "restored"}[change]
    return f"{doc.doc_id}{region} v{version} {what}: {chunks} chunks, {embedded} embedded, effective {effective}"


def _read(root: Path, path: str) -> bytes | str:
    """The file's bytes, or why they may not be read: nothing outside the folder is ever read (a link to
    /etc/passwd must not be served), while a link that stays inside the folder is an ordinary file."""
    try:
        return read_inside(root, path)
    except OutsideFolder:
        return "is a symbolic link to a file outside the policy folder; only files inside --docs are read"
    except OSError as exc:
        return f"cannot read the file ({exc.strerror or exc})"


@dataclass(frozen=True)
class _OnDisk:
    data: bytes
    metadata: list[MetadataFile]
    hash: str


def _write_group(
    kb: KnowledgeBase,
    chunker: Chunker,
    files: list[tuple[str, _OnDisk]],
    known: dict[str, FileRecord],
    report: IngestReport,
) -> None:
    """Parse, embed in one batch, then make each file visible in its own transaction."""
    parsed: list[ParsedFile] = []
    for path, disk in files:
        kb.embedder.yield_to_queries()
        doc_id = known[path].doc_id if path in known else None
        try:
            parsed.append(parse_file(kb, chunker, path, disk.data, doc_id, disk.metadata))
        except InvalidDocument as exc:
            kb.record_error(path, disk.hash, exc.reason, exc.kind)
            report.fail(path, exc.reason)

    new_vectors = kb.ensure_embedded([c for p in parsed for c in p.chunks])
    report.embedded += len(new_vectors)
    fresh = set(new_vectors)
    for item in parsed:
        kb.embedder.yield_to_queries()
        try:
            applied = kb.apply(item.doc, item.chunks, item.file_hash, new_vectors)
        except InvalidDocument as exc:
            kb.record_error(item.doc.source, item.file_hash, exc.reason, exc.kind, item.doc.doc_id)
            report.fail(item.doc.source, exc.reason)
            continue
        if applied.change is Change.unchanged:
            report.unchanged += 1
            continue
        embedded = sum(1 for c in item.chunks if c.chunk_id in fresh)
        fresh -= {c.chunk_id for c in item.chunks}
        report.chunks += applied.chunks
        report.written += 1
        effective = applied.record.effective_from.astimezone(kb.settings.zone).date().isoformat()
        report.change(_describe(item.doc, applied.change, applied.record.version, applied.chunks, embedded, effective))


def _reject_name(
    kb: KnowledgeBase, root: Path, path: str, known: dict[str, FileRecord], report: IngestReport, vanished: list[str]
) -> None:
    """A file whose name is not UTF-8 is one parse_error row under a readable form of its name."""
    shown = display_path(path)
    if (root / path).is_file():
        reason = "the file name is not valid UTF-8; rename the file (its content was not read)"
        kb.record_error(shown, "", reason)
        report.fail(shown, reason)
    elif shown in known:
        vanished.append(shown)


def ingest_paths(
    kb: KnowledgeBase, paths: Iterable[str], report: IngestReport | None = None, rechunk: bool = False
) -> IngestReport:
    """Bring these paths (relative to the docs folder) in line with the disk: add, change, move, remove.

    ``report`` is filled in as the work goes, for whoever shows its progress. ``rechunk``: read unchanged
    files too, so that versions cut by another chunker are cut anew."""
    with kb.writer:
        return _ingest_paths(kb, paths, report if report is not None else IngestReport(), rechunk)


def _ingest_paths(kb: KnowledgeBase, paths: Iterable[str], report: IngestReport, rechunk: bool) -> IngestReport:
    root = kb.settings.docs
    wanted = set(paths)
    if REGIONS_FILE in wanted:
        error = kb.reload_regions()
        if error:
            report.fail(REGIONS_FILE, error)
    known = kb.files()
    wanted |= _governed(root, wanted, known)
    present, vanished = _look(kb, wanted, known, report, rechunk)
    _moves(kb, wanted, known, present, vanished, report)

    chunker = chunker_for(kb)
    batch = list(present.items())
    report.total += len(batch)
    for start in range(0, len(batch), GROUP_FILES):
        group = batch[start : start + GROUP_FILES]
        _write_group(kb, chunker, group, known, report)
        report.done += len(group)

    for path in vanished:
        report.change(_deleted(path, kb.remove_file(path)))
    return report


def _look(
    kb: KnowledgeBase, wanted: set[str], known: dict[str, FileRecord], report: IngestReport, rechunk: bool
) -> tuple[dict[str, _OnDisk], list[str]]:
    """What is on disk of the wanted paths: the files to (re)write, and the known ones that are gone. Unreadable
    files, bad names and unsupported types are recorded on the way; unchanged files are counted."""
    root = kb.settings.docs
    present: dict[str, _OnDisk] = {}
    vanished: list[str] = []
    # The readable form of a bad name stands for that name: it is never "vanished" while the file exists.
    stands_for_bad_name = {display_path(p) for p in wanted if unnamable(p)}
    for path in sorted(wanted - stands_for_bad_name):
        kind = classify(path)
        if kind not in (FileKind.policy, FileKind.unsupported):
            continue
        if unnamable(path):
            _reject_name(kb, root, path, known, report, vanished)
        elif not (root / path).is_file():
            if path in known:
                vanished.append(path)
        else:
            disk = _on_disk(kb, path, kind, report)
            if disk is None:
                continue
            if not rechunk and path in known and known[path].content_hash == disk.hash:
                report.unchanged += 1
            elif kind is FileKind.unsupported:
                kb.record_error(path, disk.hash, unsupported_reason(path), "unsupported_file")
                report.unsupported.append(path)
                log.warning("%s ignored: %s", path, unsupported_reason(path))
            else:
                present[path] = disk
    return present, vanished


def _on_disk(kb: KnowledgeBase, path: str, kind: FileKind, report: IngestReport) -> _OnDisk | None:
    """The file's bytes with the metadata files that govern it, or None (recorded) when they cannot be read."""
    root = kb.settings.docs
    data = _read(root, path)
    if isinstance(data, str):
        kb.record_error(path, "", data)
        report.fail(path, data)
        return None
    try:
        metadata = _metadata_files(root, path) if kind is FileKind.policy else []
    except InvalidDocument as exc:
        kb.record_error(path, "", exc.reason)
        report.fail(path, exc.reason)
        return None
    return _OnDisk(data, metadata, combined_hash(data, metadata))


def _moves(
    kb: KnowledgeBase,
    wanted: set[str],
    known: dict[str, FileRecord],
    present: dict[str, _OnDisk],
    vanished: list[str],
    report: IngestReport,
) -> None:
    """A new path with the very bytes of a vanished one is a move: same version, new citation. The old path
    may not be among these paths: the watcher can see a move into a new folder as a creation now and a
    deletion half a second later, so any known file that is gone from the disk counts."""
    by_hash = _gone_by_hash(kb.settings.docs, wanted, known, present, vanished)
    for path, disk in list(present.items()):
        old = by_hash.pop(disk.hash, None)
        if old is not None and path not in known:
            kb.move_file(old, path)
            if old in vanished:
                vanished.remove(old)
            del present[path]
            report.change(f"{old} moved to {path}: same version, new source")


def _gone_by_hash(
    root: Path, wanted: set[str], known: dict[str, FileRecord], present: dict[str, _OnDisk], vanished: list[str]
) -> dict[str, str]:
    """The known files a move may have come from, by their hash: those gone from the disk that had made a version
    (a rejected file moved is simply read again at its new path)."""
    candidates = [p for p in vanished if p in known]
    new_hashes = {disk.hash for path, disk in present.items() if path not in known}
    candidates += [p for p, f in known.items() if f.content_hash in new_hashes and p not in wanted]
    return {
        known[p].content_hash: p
        for p in candidates
        if known[p].version_id is not None and not known[p].error and not (root / p).is_file()
    }


def _deleted(path: str, outcome: VersionStatus | None) -> str:
    if outcome is VersionStatus.in_force:
        return f"{path} deleted: its version was in force, the document is retired (orphaned)"
    if outcome is VersionStatus.future:
        return f"{path} deleted: its future version is retracted and will not come into force"
    if outcome is None:
        return f"{path} deleted: it had been rejected, so agents see no change"
    return f"{path} deleted: its version was {outcome.value}, history kept"


def _governed(root: Path, paths: set[str], known: dict[str, FileRecord]) -> set[str]:
    """The files that sidecars and defaults files among ``paths`` give keys to: exactly those are re-read."""
    out: set[str] = set()
    for path in paths:
        if classify(path) is not FileKind.metadata:
            continue
        if is_sidecar(path):
            out.add(described_file(path))
            continue
        folder = Path(path).parent.as_posix()
        below = "" if folder == "." else folder + "/"
        on_disk = scan(root / below) if (root / below).is_dir() else []
        out |= {below + rel for rel in on_disk if is_policy_file(rel)}
        out |= {rel for rel in known if rel.startswith(below) and is_policy_file(rel)}
    return out


EMBED_AHEAD_SLICE = 16
"""Chunks of a big file embedded between two looks at other saves: about a quarter of a second."""


def embed_ahead(kb: KnowledgeBase, path: str, between: Callable[[], None]) -> None:
    """Store a changed file's new vectors slice by slice, calling ``between`` after each slice so that other
    saves need not wait for a big file; ``ingest_paths`` then finds them stored and only switches the ledger.
    A file that will be rejected is left to ``ingest_paths`` to report (vectors stored for a file that then
    changes again are removed at the next start-up)."""
    root = kb.settings.docs
    data = _read(root, path)
    known = kb.files().get(path)
    try:
        if isinstance(data, str) or classify(path) is not FileKind.policy:
            return
        metadata = _metadata_files(root, path)
        if known is not None and known.content_hash == combined_hash(data, metadata):
            return
        parsed = parse_file(kb, chunker_for(kb), path, data, known.doc_id if known else None, metadata)
    except InvalidDocument:
        return
    for start in range(0, len(parsed.chunks), EMBED_AHEAD_SLICE):
        kb.ensure_embedded(parsed.chunks[start : start + EMBED_AHEAD_SLICE])
        between()


def sync(kb: KnowledgeBase, report: IngestReport | None = None) -> IngestReport:
    """Reconcile the whole folder with the ledger: what changed while nobody watched is applied now, and
    every file is cut anew when the chunking settings changed since the last sync."""
    with kb.writer:
        signature = chunker_for(kb).signature
        rechunk = kb.chunking != signature and bool(kb.files())
        if rechunk:
            log.info("the chunking changed (%s -> %s): every file is cut anew", kb.chunking, signature)
        report = ingest_paths(kb, [REGIONS_FILE, *scan(kb.settings.docs), *kb.files()], report, rechunk)
        kb.record_chunking(signature)
        return report
