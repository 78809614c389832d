"""The version ledger in SQLite: every version of every series, the chunks it consists of, and the files.

A version becomes visible in one transaction that writes its row, its chunk list and its file row
together; its vectors are in the store before that, so a crash at any moment leaves the previous
version in force. Validity is not stored: it is derived from these rows at query time (kb.timeline).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from kb.documents import Chunk, DocType, Document, RiskTier
from kb.records import Event, FileRecord, StoredChunk, VersionRecord, WebhookState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL,
    region TEXT NOT NULL,
    version INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    title TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    products TEXT NOT NULL,
    owner TEXT,
    risk_tier TEXT NOT NULL,
    meta TEXT NOT NULL,
    effective_from TEXT NOT NULL,
    effective_to TEXT,
    review_due TEXT,
    source TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    file_hash TEXT NOT NULL,
    explicit_version INTEGER NOT NULL,
    ingested_at TEXT NOT NULL,
    replaced_at TEXT,
    retracted_at TEXT,
    retired_at TEXT,
    refs TEXT NOT NULL DEFAULT '[]',
    pii TEXT NOT NULL DEFAULT '{}',
    UNIQUE (doc_id, region, version, revision)
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY,
    section TEXT NOT NULL,
    text TEXT NOT NULL,
    embed_text TEXT NOT NULL,
    page INTEGER
);
CREATE TABLE IF NOT EXISTS version_chunks (
    version_id INTEGER NOT NULL REFERENCES versions(id),
    ord INTEGER NOT NULL,
    chunk_id TEXT NOT NULL REFERENCES chunks(chunk_id),
    PRIMARY KEY (version_id, ord)
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    doc_id TEXT,
    version_id INTEGER REFERENCES versions(id),
    error TEXT,
    error_since TEXT,
    error_kind TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    doc_id TEXT,
    region TEXT,
    version INTEGER,
    source TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_region ON events (region, id);
CREATE TABLE IF NOT EXISTS feed_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    url TEXT PRIMARY KEY,
    cursor INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error TEXT
);
"""
"""Tables added after the first release (events, feed_state, webhooks) need no migration: a ledger written
before them gains them empty on open, and its feed starts at that moment."""
_ADDED_COLUMNS = {
    "versions": {"refs": "TEXT NOT NULL DEFAULT '[]'", "pii": "TEXT NOT NULL DEFAULT '{}'"},
    "files": {"error_kind": "TEXT"},
    "chunks": {"page": "INTEGER"},
}
"""Columns added after the first release: a ledger written before them gains them on open."""


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _version(row: sqlite3.Row) -> VersionRecord:
    return VersionRecord(
        id=row["id"],
        doc_id=row["doc_id"],
        region=row["region"],
        version=row["version"],
        revision=row["revision"],
        title=row["title"],
        doc_type=DocType(row["doc_type"]),
        products=tuple(json.loads(row["products"])),
        owner=row["owner"],
        risk_tier=RiskTier(row["risk_tier"]),
        meta=json.loads(row["meta"]),
        effective_from=datetime.fromisoformat(row["effective_from"]),
        effective_to=_moment(row["effective_to"]),
        review_due=_moment(row["review_due"]),
        source=row["source"],
        content_hash=row["content_hash"],
        file_hash=row["file_hash"],
        explicit_version=bool(row["explicit_version"]),
        ingested_at=datetime.fromisoformat(row["ingested_at"]),
        replaced_at=_moment(row["replaced_at"]),
        retracted_at=_moment(row["retracted_at"]),
        retired_at=_moment(row["retired_at"]),
        references=tuple(json.loads(row["refs"])),
        pii=json.loads(row["pii"]),
    )


def _event(row: sqlite3.Row) -> Event:
    return Event(
    datetime.fromisoformat(row["at"]), row["kind"], row["doc_id"], row["region"], row["version"],
    row["source"], row["summary"], row["id"],
    )  # fmt: skip


class Ledger:
    """One connection shared by the threads of one process, serialised by a lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        for table, columns in _ADDED_COLUMNS.items():
            present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in present:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
        self.writes = 0
        """Write transactions committed by this process: what is derived from the ledger is cached by it."""
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self.writes += 1

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- versions --------------------------------------------------------------------------------

    def versions(self) -> list[VersionRecord]:
        """Current revisions of every version (a corrected text's earlier revisions left out)."""
        return [_version(r) for r in self._rows("SELECT * FROM versions WHERE replaced_at IS NULL ORDER BY id")]

    def series(self, doc_id: str, region: str) -> list[VersionRecord]:
        """Current revisions of one series, oldest version first."""
        rows = self._rows(
            "SELECT * FROM versions WHERE doc_id = ? AND region = ? AND replaced_at IS NULL ORDER BY version",
            (doc_id, region),
        )
        return [_version(r) for r in rows]

    def history(self, doc_id: str) -> list[VersionRecord]:
        """Every revision of every version in every region of one document."""
        rows = self._rows("SELECT * FROM versions WHERE doc_id = ? ORDER BY region, version, revision", (doc_id,))
        return [_version(r) for r in rows]

    def version(self, version_id: int) -> VersionRecord:
        return _version(self._rows("SELECT * FROM versions WHERE id = ?", (version_id,))[0])

    def commit_version(
        self,
        doc: Document,
        version: int,
        effective_from: datetime,
        review_due: datetime | None,
        chunks: Sequence[Chunk],
        file_hash: str,
        now: datetime,
        replaces: VersionRecord | None = None,
        event: Callable[[VersionRecord], Event] | None = None,
    ) -> VersionRecord:
        """Write a new version (or a correcting revision of ``replaces``) and point its file at it; ``event``
        makes its entry in the change feed, written in the same transaction."""
        revision = replaces.revision + 1 if replaces else 1
        with self._transaction() as db:
            if replaces:
                db.execute("UPDATE versions SET replaced_at = ? WHERE id = ?", (_iso(now), replaces.id))
            cursor = db.execute(
                """INSERT INTO versions (doc_id, region, version, revision, title, doc_type, products, owner,
                   risk_tier, meta, effective_from, effective_to, review_due, source, content_hash, file_hash,
                   explicit_version, ingested_at, refs, pii) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                (
                    doc.doc_id, doc.region, version, revision, doc.title, doc.doc_type.value,
                    json.dumps(list(doc.products)), doc.owner, doc.risk_tier.value,
                    json.dumps(doc.meta, default=str), _iso(effective_from), _iso(doc.effective_to),
                    _iso(review_due), doc.source, doc.content_hash, file_hash, doc.version is not None, _iso(now),
                    json.dumps(list(doc.references)), json.dumps(doc.pii),
                ),
            )  # fmt: skip
            version_id = int(cursor.lastrowid or 0)
            db.executemany(
                "INSERT OR IGNORE INTO chunks (chunk_id, section, text, embed_text, page) VALUES (?,?,?,?,?)",
                [(c.chunk_id, json.dumps(list(c.section)), c.text, c.embed_text, c.page) for c in chunks],
            )
            db.executemany(
                "INSERT INTO version_chunks (version_id, ord, chunk_id) VALUES (?,?,?)",
                [(version_id, ord_, c.chunk_id) for ord_, c in enumerate(chunks)],
            )
            self._put_file(db, doc.source, file_hash, doc.doc_id, version_id, now)
            if event is not None:
                row = db.execute("SELECT * FROM versions WHERE id = ?", (version_id,)).fetchone()
                self._insert_events(db, [event(_version(row))])
        return self.version(version_id)

    def end_version(self, version_id: int, column: str, now: datetime, event: Event | None = None) -> None:
        """Mark a version retired (its file deleted while in force) or retracted (a future one deleted)."""
        if column not in ("retired_at", "retracted_at"):
            raise ValueError(column)
        with self._transaction() as db:
            db.execute(f"UPDATE versions SET {column} = ? WHERE id = ?", (_iso(now), version_id))
            self._insert_events(db, [event] if event else [])

    def restore_version(
        self, version_id: int, path: str, file_hash: str, now: datetime, event: Event | None = None
    ) -> None:
        """A deleted file came back unchanged: its version is in force again under ``path``."""
        with self._transaction() as db:
            db.execute(
                "UPDATE versions SET retired_at = NULL, retracted_at = NULL, source = ? WHERE id = ?",
                (path, version_id),
            )
            doc_id = db.execute("SELECT doc_id FROM versions WHERE id = ?", (version_id,)).fetchone()[0]
            self._put_file(db, path, file_hash, doc_id, version_id, now)
            self._insert_events(db, [event] if event else [])

    # -- chunks ----------------------------------------------------------------------------------

    def chunk_ids(self, version_id: int) -> list[str]:
        rows = self._rows("SELECT chunk_id FROM version_chunks WHERE version_id = ? ORDER BY ord", (version_id,))
        return [r[0] for r in rows]

    def chunk_ids_of(self, version_ids: Iterable[int]) -> dict[int, list[str]]:
        ids = list(version_ids)
        out: dict[int, list[str]] = {vid: [] for vid in ids}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            rows = self._rows(
                f"SELECT version_id, chunk_id FROM version_chunks WHERE version_id IN ({','.join('?' * len(part))})"
                " ORDER BY version_id, ord",
                part,
            )
            for row in rows:
                out[row[0]].append(row[1])
        return out

    def versions_of_chunks(self, prefixes: Sequence[str]) -> dict[str, list[int]]:
        """The versions holding each chunk whose id starts with one of ``prefixes`` (a draft may cite a short id)."""
        out: dict[str, list[int]] = {}
        for prefix in prefixes:
            like = prefix.replace("%", "").replace("_", "") + "%"
            rows = self._rows(
                "SELECT chunk_id, version_id FROM version_chunks WHERE chunk_id LIKE ? ORDER BY version_id", (like,)
            )
            for row in rows:
                out.setdefault(row[0], []).append(row[1])
        return out

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]:
        out: dict[str, StoredChunk] = {}
        for start in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[start : start + 500])
            rows = self._rows(
                f"SELECT chunk_id, section, text, page FROM chunks WHERE chunk_id IN ({','.join('?' * len(part))})",
                part,
            )
            out.update({r[0]: StoredChunk(r[0], tuple(json.loads(r[1])), r[2], r[3]) for r in rows})
        return out

    def embed_texts(self) -> dict[str, str]:
        """Every chunk's encoder input, to rebuild the vector store from the ledger alone."""
        return {r[0]: r[1] for r in self._rows("SELECT chunk_id, embed_text FROM chunks")}

    def all_chunk_ids(self) -> set[str]:
        """Every chunk the ledger names (without their texts: start-up compares them with the store)."""
        return {r[0] for r in self._rows("SELECT chunk_id FROM chunks")}

    def embed_texts_of(self, chunk_ids: Sequence[str]) -> dict[str, str]:
        """The encoder input (title and headings, then text) of these chunks: what BM25 counts too."""
        out: dict[str, str] = {}
        for start in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[start : start + 500])
            rows = self._rows(
                f"SELECT chunk_id, embed_text FROM chunks WHERE chunk_id IN ({','.join('?' * len(part))})", part
            )
            out.update({r[0]: r[1] for r in rows})
        return out

    # -- files -----------------------------------------------------------------------------------

    @staticmethod
    def _put_file(
        db: sqlite3.Connection,
        path: str,
        file_hash: str,
        doc_id: str | None,
        version_id: int | None,
        now: datetime,
    ) -> None:
        db.execute(
            """INSERT INTO files (path, content_hash, doc_id, version_id, error, error_since, error_kind, updated_at)
               VALUES (?,?,?,?,NULL,NULL,NULL,?) ON CONFLICT(path) DO UPDATE SET content_hash = excluded.content_hash,
               doc_id = excluded.doc_id, version_id = excluded.version_id, error = NULL, error_since = NULL,
               error_kind = NULL, updated_at = excluded.updated_at""",
            (path, file_hash, doc_id, version_id, _iso(now)),
        )

    def files(self) -> dict[str, FileRecord]:
        return {r["path"]: self._file(r) for r in self._rows("SELECT * FROM files")}

    def file(self, path: str) -> FileRecord | None:
        rows = self._rows("SELECT * FROM files WHERE path = ?", (path,))
        return self._file(rows[0]) if rows else None

    @staticmethod
    def _file(row: sqlite3.Row) -> FileRecord:
        return FileRecord(
            row["path"], row["content_hash"], row["doc_id"], row["version_id"], row["error"],
            _moment(row["error_since"]), row["error_kind"],
        )  # fmt: skip

    def record_file(self, path: str, file_hash: str, doc_id: str | None, version_id: int | None, now: datetime) -> None:
        """A file whose content maps to an existing version (unchanged, or renamed)."""
        with self._transaction() as db:
            self._put_file(db, path, file_hash, doc_id, version_id, now)

    def record_file_error(
        self,
        path: str,
        file_hash: str,
        reason: str,
        kind: str,
        now: datetime,
        doc_id: str | None = None,
        event: Event | None = None,
    ) -> None:
        """Keep what the file served before; remember why (and under which reason) its new content was rejected.
        ``doc_id`` is the document the rejected content claims, when it got that far. ``event`` is written only
        when this content or reason is news: a restart that finds the same broken file says nothing new."""
        with self._transaction() as db:
            known = db.execute("SELECT content_hash, error FROM files WHERE path = ?", (path,)).fetchone()
            if event is not None and (known is None or (known[0], known[1]) != (file_hash, reason)):
                self._insert_events(db, [event])
            db.execute(
                """INSERT INTO files (path, content_hash, doc_id, error, error_since, error_kind, updated_at)
                   VALUES (?,?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET content_hash = excluded.content_hash,
                   doc_id = COALESCE(files.doc_id, excluded.doc_id), error = excluded.error,
                   error_since = COALESCE(files.error_since, excluded.error_since),
                   error_kind = excluded.error_kind, updated_at = excluded.updated_at""",
                (path, file_hash, doc_id, reason, _iso(now), kind, _iso(now)),
            )

    def move_file(self, old: str, new: str, now: datetime) -> None:
        """A rename with unchanged content: same version, new citation."""
        with self._transaction() as db:
            db.execute("UPDATE files SET path = ?, updated_at = ? WHERE path = ?", (new, _iso(now), old))
            db.execute("UPDATE versions SET source = ? WHERE source = ? AND replaced_at IS NULL", (new, old))

    def forget_file(self, path: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM files WHERE path = ?", (path,))

    # -- change feed -----------------------------------------------------------------------------

    @staticmethod
    def _insert_events(db: sqlite3.Connection, events: Sequence[Event]) -> None:
        """Events, and the feed's mark moved up to the latest of them: a write's event at ``now`` means the
        dates up to now have been looked at (kb.feed), so no extra transaction is needed for the mark."""
        db.executemany(
            "INSERT INTO events (at, kind, doc_id, region, version, source, summary) VALUES (?,?,?,?,?,?,?)",
            [(_iso(e.at), e.kind, e.doc_id, e.region, e.version, e.source, e.summary) for e in events],
        )
        if events:
            # ISO strings of UTC moments sort as the moments do.
            db.execute(
                "INSERT INTO feed_state (key, value) VALUES ('until', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)",
                (_iso(max(e.at for e in events)),),
            )

    def feed_until(self) -> datetime | None:
        """The moment up to which date-driven events (took_effect, ended) are in the feed."""
        rows = self._rows("SELECT value FROM feed_state WHERE key = 'until'")
        return datetime.fromisoformat(rows[0][0]) if rows else None

    def add_date_events(self, events: Sequence[Event], until: datetime) -> None:
        """Date-driven events up to ``until``, and the new mark, in one transaction: none twice, none lost."""
        with self._transaction() as db:
            self._insert_events(db, events)
            db.execute(
                "INSERT INTO feed_state (key, value) VALUES ('until', ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                (_iso(until), _iso(until)),
            )

    def events_after(self, cursor: int, regions: Sequence[str] | None, limit: int) -> tuple[list[Event], int]:
        """Up to ``limit`` events after ``cursor`` (of these regions, when given), and the cursor to continue
        from: the last one returned, or the newest one scanned when fewer than ``limit`` matched."""
        where, params = "id > ?", [cursor]
        if regions is not None:
            where += f" AND region IN ({','.join('?' * len(regions))})"
            params.extend(regions)  # type: ignore[arg-type]
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM events WHERE {where} ORDER BY id LIMIT ?", (*params, limit))
            events = [_event(r) for r in rows.fetchall()]
            if len(events) == limit:
                return events, events[-1].cursor
            newest = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        return events, max(cursor, newest)

    # -- webhook outbox --------------------------------------------------------------------------

    def webhook(self, url: str) -> WebhookState:
        """A receiver's place in the feed; one seen for the first time starts after the newest event."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO webhooks (url, cursor) SELECT ?, COALESCE(MAX(id), 0) FROM events", (url,)
            )
            row = db.execute("SELECT * FROM webhooks WHERE url = ?", (url,)).fetchone()
        return WebhookState(row["url"], row["cursor"], row["attempts"], _moment(row["next_attempt_at"]),
                            row["last_error"])  # fmt: skip

    def webhook_delivered(self, url: str, cursor: int) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE webhooks SET cursor = ?, attempts = 0, next_attempt_at = NULL, last_error = NULL WHERE url = ?",
                (cursor, url),
            )

    def webhook_failed(self, url: str, attempts: int, next_attempt_at: datetime, error: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE webhooks SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE url = ?",
                (attempts, _iso(next_attempt_at), error[:500], url),
            )
