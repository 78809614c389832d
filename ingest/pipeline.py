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

from ingest.chunking import Chunker
from ingest.frontmatter import decode, file_hash, read_document, split_front_matter
from ingest.markdown import link_targets, parse_sections
from ingest.references import POLICY_SUFFIXES
from kb import pii
from kb.documents import Chunk, Document
from kb.errors import InvalidDocument, PersonalData
from kb.knowledge import Change, KnowledgeBase
from kb.ledger import FileRecord
from kb.pii import PiiPolicy
from kb.regions import REGIONS_FILE
from kb.settings import Settings
from kb.timeline import VersionStatus

log = logging.getLogger("kb.ingest")

GROUP_FILES = 32
"""Files parsed and embedded together: large enough for batched embedding, small enough that a bulk drop
becomes visible progressively."""


def is_policy_file(rel_path: str) -> bool:
    """Markdown files, leaving out hidden folders and editors' temporary files."""
    parts = Path(rel_path).parts
    name = parts[-1] if parts else ""
    if any(part.startswith(".") for part in parts) or name.startswith(("~", "#")) or name.endswith("~"):
        return False
    return name.lower().endswith(POLICY_SUFFIXES)


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
        line = text.count("\n", 0, len(text) - len(body)) + body.count("\n", 0, findings[0].start) + 1
        raise PersonalData(
            path,
            f"holds {pii.describe(found)} (the first on line {line}); agents must not be fed customer data: "
            "remove them, or list a team's own address in KB_PII_ALLOW",
        )
    return (pii.redact(body, findings) if settings.pii is PiiPolicy.redact else body), found


def parse_file(kb: KnowledgeBase, chunker: Chunker, path: str, data: bytes, doc_id: str | None) -> ParsedFile:
    """Pure but for the settings it reads: bytes in, a document and its chunks out."""
    text = decode(path, data, kb.settings.max_file_bytes)
    raw, body = split_front_matter(path, text)
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
    return ParsedFile(doc, chunks, file_hash(data))


def chunker_for(kb: KnowledgeBase) -> Chunker:
    return Chunker(kb.embedder.tokens, kb.embedder.max_text_tokens)


def _describe(doc: Document, change: Change, version: int, chunks: int, embedded: int, effective: str) -> str:
    region = f" ({doc.region})" if doc.region != "global" else ""
    what = {Change.new_version: "ingested", Change.corrected: "corrected", Change.restored: "restored"}[change]
    return f"{doc.doc_id}{region} v{version} {what}: {chunks} chunks, {embedded} embedded, effective {effective}"


def _read(root: Path, path: str) -> bytes | str:
    """The file's bytes, or why they may not be read: nothing outside the folder is ever read (a link to
    /etc/passwd must not be served), while a link that stays inside the folder is an ordinary file."""
    try:
        real = (root / path).resolve(strict=True)
        if not real.is_relative_to(root.resolve()):
            return "is a symbolic link to a file outside the policy folder; only files inside --docs are read"
        return real.read_bytes()
    except OSError as exc:
        return f"cannot read the file ({exc.strerror or exc})"


def display_path(path: str) -> str:
    """A path as it can be stored and shown: bytes that are not UTF-8 written as ``\\xff``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _unnamable(path: str) -> bool:
    """A name with bytes that are not UTF-8 (Python keeps them as lone surrogates) cannot be stored or cited."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _write_group(
    kb: KnowledgeBase,
    chunker: Chunker,
    files: list[tuple[str, bytes]],
    known: dict[str, FileRecord],
    report: IngestReport,
) -> None:
    """Parse, embed in one batch, then make each file visible in its own transaction."""
    parsed: list[ParsedFile] = []
    for path, data in files:
        kb.embedder.yield_to_queries()
        try:
            parsed.append(parse_file(kb, chunker, path, data, known[path].doc_id if path in known else None))
        except InvalidDocument as exc:
            kb.record_error(path, file_hash(data), exc.reason, exc.kind)
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


def ingest_paths(kb: KnowledgeBase, paths: Iterable[str], report: IngestReport | None = None) -> IngestReport:
    """Bring these paths (relative to the docs folder) in line with the disk: add, change, move, remove.

    ``report`` is filled in as the work goes, for whoever shows its progress."""
    root = kb.settings.docs
    report = report if report is not None else IngestReport()
    wanted = set(paths)
    if REGIONS_FILE in wanted:
        error = kb.reload_regions()
        if error:
            report.fail(REGIONS_FILE, error)
    known = kb.files()
    present: dict[str, bytes] = {}
    vanished: list[str] = []
    # The readable form of a bad name stands for that name: it is never "vanished" while the file exists.
    stands_for_bad_name = {display_path(p) for p in wanted if _unnamable(p)}
    for path in sorted(wanted - stands_for_bad_name):
        if not is_policy_file(path):
            continue
        if _unnamable(path):
            _reject_name(kb, root, path, known, report, vanished)
            continue
        if not (root / path).is_file():
            if path in known:
                vanished.append(path)
            continue
        data = _read(root, path)
        if isinstance(data, str):
            kb.record_error(path, "", data)
            report.fail(path, data)
        elif path in known and known[path].content_hash == file_hash(data):
            report.unchanged += 1
        else:
            present[path] = data

    # A new path with the very bytes of a vanished one is a move: same version, new citation. The old path
    # may not be among these paths: the watcher can see a move into a new folder as a creation now and a
    # deletion half a second later, so any known file that is gone from the disk counts.
    candidates = [p for p in vanished if p in known]
    new_hashes = {file_hash(data) for path, data in present.items() if path not in known}
    candidates += [p for p, f in known.items() if f.content_hash in new_hashes and p not in wanted]
    by_hash = {
        known[p].content_hash: p
        for p in candidates
        if known[p].version_id is not None and not known[p].error and not (root / p).is_file()
    }
    for path, data in list(present.items()):
        old = by_hash.pop(file_hash(data), None)
        if old is not None and path not in known:
            kb.move_file(old, path)
            if old in vanished:
                vanished.remove(old)
            del present[path]
            report.change(f"{old} moved to {path}: same version, new source")

    chunker = chunker_for(kb)
    batch = list(present.items())
    report.total += len(batch)
    for start in range(0, len(batch), GROUP_FILES):
        group = batch[start : start + GROUP_FILES]
        _write_group(kb, chunker, group, known, report)
        report.done += len(group)

    for path in vanished:
        outcome = kb.remove_file(path)
        if outcome is VersionStatus.in_force:
            report.change(f"{path} deleted: its version was in force, the document is retired (orphaned)")
        elif outcome is VersionStatus.future:
            report.change(f"{path} deleted: its future version is retracted and will not come into force")
        elif outcome is None:
            report.change(f"{path} deleted: it had been rejected, so agents see no change")
        else:
            report.change(f"{path} deleted: its version was {outcome.value}, history kept")

    return report


EMBED_AHEAD_SLICE = 16
"""Chunks of a big file embedded between two looks at other saves: about a quarter of a second."""


def embed_ahead(kb: KnowledgeBase, path: str, between: Callable[[], None]) -> None:
    """Store a changed file's new vectors slice by slice, calling ``between`` after each slice so that other
    saves need not wait for a big file; ``ingest_paths`` then finds them stored and only switches the ledger.
    A file that will be rejected is left to ``ingest_paths`` to report (vectors stored for a file that then
    changes again are removed at the next start-up)."""
    data = _read(kb.settings.docs, path)
    known = kb.files().get(path)
    if isinstance(data, str) or (known is not None and known.content_hash == file_hash(data)):
        return
    try:
        parsed = parse_file(kb, chunker_for(kb), path, data, known.doc_id if known else None)
    except InvalidDocument:
        return
    for start in range(0, len(parsed.chunks), EMBED_AHEAD_SLICE):
        kb.ensure_embedded(parsed.chunks[start : start + EMBED_AHEAD_SLICE])
        between()


def scan(root: Path) -> list[str]:
    """Policy files below ``root``, as paths relative to it."""
    return sorted(
        rel for rel in (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if is_policy_file(rel)
    )


def sync(kb: KnowledgeBase, report: IngestReport | None = None) -> IngestReport:
    """Reconcile the whole folder with the ledger: what changed while nobody watched is applied now."""
    return ingest_paths(kb, [REGIONS_FILE, *scan(kb.settings.docs), *kb.files()], report)
