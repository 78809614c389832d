"""The version ledger: every version of every series, the chunks it consists of, and the files.

A version becomes visible in one transaction that writes its row, its chunk list and its file row
together; its vectors are in the store before that, so a crash at any moment leaves the previous
version in force. Validity is not stored: it is derived from these rows at query time (kb.timeline).

The same tables (kb/schema.py) live in SQLite (the default, a file under ``--data``) or PostgreSQL
(``KB_LEDGER_URL``, shared by a writer and its replicas); kb/migrations brings either up to date on open.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, case, create_engine, delete, func, inspect, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import Executable

from kb.documents import Chunk, DocType, Document, RiskTier
from kb.errors import ConfigError, FellBehind, LeaseLost, LedgerError, ReadOnly
from kb.records import Event, FileRecord, StoredChunk, VersionRecord, WebhookState
from kb.schema import changes, events, feed_state, files, version_chunks, versions, webhooks, writer_lease
from kb.schema import chunks as chunk_rows

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x6B62_0001
"""PostgreSQL advisory lock taken around migrations: a writer and its replicas may start at once."""
KEPT_CHANGES = 100_000
"""Changes kept for replicas to follow (kb.replica); older ones are deleted as new ones are written. A replica
polls every 100 ms and a restarted one loads everything afresh: only a replica stalled for this many writes
needs a change that is gone, and it is told to restart (:class:`FellBehind`)."""
_PRUNED = "changes_pruned_through"

_VERSION_COLUMNS = (
    versions.c.id, versions.c.doc_id, versions.c.region, versions.c.version, versions.c.revision,
    versions.c.title, versions.c.doc_type, versions.c.products, versions.c.owner, versions.c.risk_tier,
    versions.c.meta, versions.c.effective_from, versions.c.effective_to, versions.c.review_due,
    versions.c.source, versions.c.content_hash, versions.c.file_hash, versions.c.explicit_version,
    versions.c.ingested_at, versions.c.replaced_at, versions.c.retracted_at, versions.c.retired_at,
    versions.c.refs, versions.c.pii,
)  # fmt: skip
"""In the order of VersionRecord's fields: rows are read as plain tuples (start-up reads every version)."""
_EVENT_COLUMNS = (events.c.at, events.c.kind, events.c.doc_id, events.c.region, events.c.version,
                  events.c.source, events.c.summary, events.c.id)  # fmt: skip
_FILE_COLUMNS = (files.c.path, files.c.content_hash, files.c.doc_id, files.c.version_id, files.c.error,
                 files.c.error_since, files.c.error_kind)  # fmt: skip
_DOC_TYPES = {t.value: t for t in DocType}
_RISK_TIERS = {t.value: t for t in RiskTier}
_IN = 500
"""Ids per ``IN (...)``: under SQLite's bound-parameter limit."""


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _version(row: Sequence[Any], lists: dict[str, tuple[str, ...]]) -> VersionRecord:
    """``lists``: JSON lists already decoded (products and references repeat across thousands of versions)."""
    products, meta, refs, pii = row[7], row[10], row[22], row[23]
    if products not in lists:
        lists[products] = tuple(json.loads(products))
    if refs not in lists:
        lists[refs] = tuple(json.loads(refs))
    return VersionRecord(
        row[0], row[1], row[2], row[3], row[4], row[5], _DOC_TYPES[row[6]], lists[products], row[8],
        _RISK_TIERS[row[9]], {} if meta == "{}" else json.loads(meta), datetime.fromisoformat(row[11]),
        _moment(row[12]), _moment(row[13]), row[14], row[15], row[16], bool(row[17]), datetime.fromisoformat(row[18]),
        _moment(row[19]), _moment(row[20]), _moment(row[21]), lists[refs], {} if pii == "{}" else json.loads(pii),
    )  # fmt: skip


def _event(row: Sequence[Any]) -> Event:
    return Event(datetime.fromisoformat(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], row[7])


def _file(row: Sequence[Any]) -> FileRecord:
    return FileRecord(row[0], row[1], row[2], row[3], row[4], _moment(row[5]), row[6])


def ledger_url(where: Path | str) -> str:
    """A database URL (``KB_LEDGER_URL``) as it is, or a file path as a SQLite URL."""
    if isinstance(where, Path):
        return f"sqlite:///{where}"
    return where


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"KB_LEDGER_URL must be sqlite:///path or postgresql://user@host/db, got {url!r}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the threads of the process, serialised by the ledger's lock, as ever.
        engine = create_engine(parsed, poolclass=StaticPool, connect_args={"check_same_thread": False})

        @sa_event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _: Any) -> None:
            connection.isolation_level = None  # kb says when a transaction begins (below), not the driver
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
                connection.execute(f"PRAGMA {pragma}")

        @sa_event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            # A write takes the write lock at once (no upgrade deadlock); a read needs no transaction at all.
            if connection.get_execution_options().get("kb_write"):
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, a dependency (not psycopg2)
        # A writer paused inside a transaction (SIGSTOP, a VM freeze) would hold its lock on the lease row and
        # stall a takeover for ever: the server ends such a session, and the standby proceeds.
        options = "-c idle_in_transaction_session_timeout=3000"
        return create_engine(parsed, pool_size=8, max_overflow=8, pool_pre_ping=True, connect_args={"options": options})
    raise ConfigError(f"KB_LEDGER_URL: kb keeps its ledger in SQLite or PostgreSQL, not {backend}")


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema. A ledger written before migrations existed (its tables, no
    ``alembic_version``) is adopted by the first revision and keeps its rows."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect().execution_options(kb_write=True) as connection:
        postgres = engine.dialect.name == "postgresql"
        if postgres:
            connection.execute(select(func.pg_advisory_lock(_MIGRATION_LOCK)))
            connection.commit()
        try:
            current = None
            if inspect(connection).has_table("alembic_version"):
                current = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            connection.rollback()
            if current != head:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()
        finally:
            if postgres:
                connection.execute(select(func.pg_advisory_unlock(_MIGRATION_LOCK)))
                connection.commit()


class Ledger:
    """The ledger of one process. SQLite: one connection shared by its threads, serialised by a lock.
    PostgreSQL: a pool, so that reads run side by side; writes are still one at a time.

    ``read_only``: an API replica's ledger, whose every write is refused (kb.errors.ReadOnly).
    ``fence``: (holder, epoch) of the writer lease this process holds (kb.lease); every write transaction
    checks, inside the transaction, that the lease is still this one and aborts otherwise."""

    def __init__(self, where: Path | str, read_only: bool = False) -> None:
        self.url = ledger_url(where)
        self._engine = _engine(self.url)
        self.read_only = read_only
        self.fence: tuple[str, int] | None = None
        try:
            migrate(self._engine)
        except SQLAlchemyError as exc:
            self._engine.dispose()
            raise LedgerError(f"cannot open the ledger at {self._engine.url!r}: {exc}") from exc
        self.writes = 0
        """Write transactions committed by this process: what is derived from the ledger is cached by it."""
        self._lock = threading.RLock()
        self._serial = self._engine.dialect.name == "sqlite"

    def close(self) -> None:
        with self._lock:
            self._engine.dispose()

    def _insert(self, table: Any) -> Any:
        """An INSERT that can say ON CONFLICT in this database's words."""
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    @contextmanager
    def _transaction(self, lease: bool = False) -> Iterator[Connection]:
        """A write transaction; ``lease``: one of the lease's own (a standby, read-only so far, may take it)."""
        if self.read_only and not lease:
            raise ReadOnly("this kb process is an API replica: it never writes; the writer does")
        with self._lock, self._engine.connect().execution_options(kb_write=True) as db:
            with db.begin():
                if not lease and self.fence is not None:
                    self._check_fence(db, *self.fence)
                yield db
            self.writes += 1

    @staticmethod
    def _check_fence(db: Connection, holder: str, epoch: int) -> None:
        # FOR UPDATE: a takeover waits for this transaction, or this one sees the takeover (SQLite's
        # BEGIN IMMEDIATE already serialises the two).
        row = db.execute(
            select(writer_lease.c.holder, writer_lease.c.epoch).where(writer_lease.c.name == "writer").with_for_update()
        ).one()
        if (row[0], row[1]) != (holder, epoch):
            raise LeaseLost(f"this writer's lease (epoch {epoch}) was taken over (epoch {row[1]}); not writing")

    def check_fence(self) -> None:
        """Raise LeaseLost unless this process still holds the lease it writes under (for what is not in the
        ledger: vectors it is about to delete from a shared store)."""
        if self.fence is not None:
            with self._reading(), self._engine.connect() as db:
                self._check_fence(db, *self.fence)

    def _reading(self) -> AbstractContextManager[Any]:
        return self._lock if self._serial else nullcontext()

    def _rows(self, statement: Executable) -> list[Any]:
        with self._reading(), self._engine.connect() as db:
            return list(db.execute(statement).all())

    # -- versions --------------------------------------------------------------------------------

    def versions(self) -> list[VersionRecord]:
        """Current revisions of every version (a corrected text's earlier revisions left out)."""
        lists: dict[str, tuple[str, ...]] = {}
        rows = self._rows(select(*_VERSION_COLUMNS).where(versions.c.replaced_at.is_(None)).order_by(versions.c.id))
        return [_version(r, lists) for r in rows]

    def series(self, doc_id: str, region: str) -> list[VersionRecord]:
        """Current revisions of one series, oldest version first."""
        statement = (
            select(*_VERSION_COLUMNS)
            .where(versions.c.doc_id == doc_id, versions.c.region == region, versions.c.replaced_at.is_(None))
            .order_by(versions.c.version)
        )
        lists: dict[str, tuple[str, ...]] = {}
        return [_version(r, lists) for r in self._rows(statement)]

    def history(self, doc_id: str) -> list[VersionRecord]:
        """Every revision of every version in every region of one document."""
        statement = (
            select(*_VERSION_COLUMNS)
            .where(versions.c.doc_id == doc_id)
            .order_by(versions.c.region, versions.c.version, versions.c.revision)
        )
        lists: dict[str, tuple[str, ...]] = {}
        return [_version(r, lists) for r in self._rows(statement)]

    def version(self, version_id: int) -> VersionRecord:
        return _version(self._rows(select(*_VERSION_COLUMNS).where(versions.c.id == version_id))[0], {})

    def _changed(self, db: Connection, series: Iterable[tuple[str | None, str | None]]) -> None:
        """Tell replicas (kb.replica) which series this transaction changed; forget changes older than the
        last :data:`KEPT_CHANGES`, and how far that went."""
        rows = [{"doc_id": doc_id, "region": region} for doc_id, region in dict.fromkeys(series)]
        if not rows:
            return
        db.execute(changes.insert(), rows)
        cut = int(db.execute(select(func.max(changes.c.seq))).scalar_one()) - KEPT_CHANGES
        if cut > 0 and db.execute(delete(changes).where(changes.c.seq <= cut)).rowcount:
            self._set_state(db, _PRUNED, str(cut))

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
                db.execute(update(versions).where(versions.c.id == replaces.id).values(replaced_at=_iso(now)))
            version_id = db.execute(
                versions.insert().returning(versions.c.id),
                {
                    "doc_id": doc.doc_id, "region": doc.region, "version": version, "revision": revision,
                    "title": doc.title, "doc_type": doc.doc_type.value, "products": json.dumps(list(doc.products)),
                    "owner": doc.owner, "risk_tier": doc.risk_tier.value,
                    "meta": json.dumps(doc.meta, default=str), "effective_from": _iso(effective_from),
                    "effective_to": _iso(doc.effective_to), "review_due": _iso(review_due), "source": doc.source,
                    "content_hash": doc.content_hash, "file_hash": file_hash,
                    "explicit_version": doc.version is not None, "ingested_at": _iso(now),
                    "refs": json.dumps(list(doc.references)), "pii": json.dumps(doc.pii),
                },
            ).scalar_one()  # fmt: skip
            if chunks:
                db.execute(
                    self._insert(chunk_rows).on_conflict_do_nothing(index_elements=["chunk_id"]),
                    [{"chunk_id": c.chunk_id, "section": json.dumps(list(c.section)), "text": c.text,
                      "embed_text": c.embed_text, "page": c.page} for c in chunks],
                )  # fmt: skip
                db.execute(
                    version_chunks.insert(),
                    [{"version_id": version_id, "ord": ord_, "chunk_id": c.chunk_id} for ord_, c in enumerate(chunks)],
                )
            self._put_file(db, doc.source, file_hash, doc.doc_id, version_id, now)
            if event is not None:
                row = db.execute(select(*_VERSION_COLUMNS).where(versions.c.id == version_id)).one()
                self._insert_events(db, [event(_version(row, {}))])
            self._changed(db, [(doc.doc_id, doc.region)])
        return self.version(version_id)

    def end_version(self, version_id: int, column: str, now: datetime, event: Event | None = None) -> None:
        """Mark a version retired (its file deleted while in force) or retracted (a future one deleted)."""
        if column not in ("retired_at", "retracted_at"):
            raise ValueError(column)
        with self._transaction() as db:
            db.execute(update(versions).where(versions.c.id == version_id).values({column: _iso(now)}))
            self._insert_events(db, [event] if event else [])
            series = db.execute(select(versions.c.doc_id, versions.c.region).where(versions.c.id == version_id)).one()
            self._changed(db, [(series[0], series[1])])

    def restore_version(
        self, version_id: int, path: str, file_hash: str, now: datetime, event: Event | None = None
    ) -> None:
        """A deleted file came back unchanged: its version is in force again under ``path``."""
        with self._transaction() as db:
            db.execute(
                update(versions)
                .where(versions.c.id == version_id)
                .values(retired_at=None, retracted_at=None, source=path)
            )
            doc_id, region = db.execute(
                select(versions.c.doc_id, versions.c.region).where(versions.c.id == version_id)
            ).one()
            self._put_file(db, path, file_hash, doc_id, version_id, now)
            self._insert_events(db, [event] if event else [])
            self._changed(db, [(doc_id, region)])

    # -- chunks ----------------------------------------------------------------------------------

    def chunk_ids(self, version_id: int) -> list[str]:
        rows = self._rows(
            select(version_chunks.c.chunk_id)
            .where(version_chunks.c.version_id == version_id)
            .order_by(version_chunks.c.ord)
        )
        return [r[0] for r in rows]

    def chunk_ids_of(self, version_ids: Iterable[int]) -> dict[int, list[str]]:
        ids = list(version_ids)
        out: dict[int, list[str]] = {vid: [] for vid in ids}
        for start in range(0, len(ids), _IN):
            rows = self._rows(
                select(version_chunks.c.version_id, version_chunks.c.chunk_id)
                .where(version_chunks.c.version_id.in_(ids[start : start + _IN]))
                .order_by(version_chunks.c.version_id, version_chunks.c.ord)
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
                select(version_chunks.c.chunk_id, version_chunks.c.version_id)
                .where(version_chunks.c.chunk_id.like(like))
                .order_by(version_chunks.c.version_id)
            )
            for row in rows:
                out.setdefault(row[0], []).append(row[1])
        return out

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]:
        out: dict[str, StoredChunk] = {}
        for start in range(0, len(chunk_ids), _IN):
            rows = self._rows(
                select(chunk_rows.c.chunk_id, chunk_rows.c.section, chunk_rows.c.text, chunk_rows.c.page).where(
                    chunk_rows.c.chunk_id.in_(list(chunk_ids[start : start + _IN]))
                )
            )
            out.update({r[0]: StoredChunk(r[0], tuple(json.loads(r[1])), r[2], r[3]) for r in rows})
        return out

    def embed_texts(self) -> dict[str, str]:
        """Every chunk's encoder input, to rebuild the vector store from the ledger alone."""
        return {r[0]: r[1] for r in self._rows(select(chunk_rows.c.chunk_id, chunk_rows.c.embed_text))}

    def all_chunk_ids(self) -> set[str]:
        """Every chunk the ledger names (without their texts: start-up compares them with the store)."""
        return {r[0] for r in self._rows(select(chunk_rows.c.chunk_id))}

    def embed_texts_of(self, chunk_ids: Sequence[str]) -> dict[str, str]:
        """The encoder input (title and headings, then text) of these chunks: what BM25 counts too."""
        out: dict[str, str] = {}
        for start in range(0, len(chunk_ids), _IN):
            rows = self._rows(
                select(chunk_rows.c.chunk_id, chunk_rows.c.embed_text).where(
                    chunk_rows.c.chunk_id.in_(list(chunk_ids[start : start + _IN]))
                )
            )
            out.update({r[0]: r[1] for r in rows})
        return out

    # -- files -----------------------------------------------------------------------------------

    def _put_file(
        self, db: Connection, path: str, file_hash: str, doc_id: str | None, version_id: int | None, now: datetime
    ) -> None:
        statement = self._insert(files).values(
            path=path, content_hash=file_hash, doc_id=doc_id, version_id=version_id, error=None, error_since=None,
            error_kind=None, updated_at=_iso(now),
        )  # fmt: skip
        new = statement.excluded
        db.execute(
            statement.on_conflict_do_update(
                index_elements=["path"],
                set_={
                    "content_hash": new.content_hash,
                    "doc_id": new.doc_id,
                    "version_id": new.version_id,
                    "error": None,
                    "error_since": None,
                    "error_kind": None,
                    "updated_at": new.updated_at,
                },
            )  # fmt: skip
        )

    def files(self) -> dict[str, FileRecord]:
        return {r[0]: _file(r) for r in self._rows(select(*_FILE_COLUMNS))}

    def file(self, path: str) -> FileRecord | None:
        rows = self._rows(select(*_FILE_COLUMNS).where(files.c.path == path))
        return _file(rows[0]) if rows else None

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
            known = db.execute(select(files.c.content_hash, files.c.error).where(files.c.path == path)).first()
            if event is not None and (known is None or (known[0], known[1]) != (file_hash, reason)):
                self._insert_events(db, [event])
            statement = self._insert(files).values(
                path=path, content_hash=file_hash, doc_id=doc_id, error=reason, error_since=_iso(now),
                error_kind=kind, updated_at=_iso(now),
            )  # fmt: skip
            new = statement.excluded
            db.execute(
                statement.on_conflict_do_update(
                    index_elements=["path"],
                    set_={
                        "content_hash": new.content_hash,
                        "doc_id": func.coalesce(files.c.doc_id, new.doc_id),
                        "error": new.error,
                        "error_since": func.coalesce(files.c.error_since, new.error_since),
                        "error_kind": new.error_kind,
                        "updated_at": new.updated_at,
                    },
                )  # fmt: skip
            )

    def move_file(self, old: str, new: str, now: datetime) -> None:
        """A rename with unchanged content: same version, new citation."""
        with self._transaction() as db:
            db.execute(update(files).where(files.c.path == old).values(path=new, updated_at=_iso(now)))
            current = (versions.c.source == old) & versions.c.replaced_at.is_(None)
            moved = db.execute(select(versions.c.doc_id, versions.c.region).where(current)).all()
            db.execute(update(versions).where(current).values(source=new))
            self._changed(db, [(r[0], r[1]) for r in moved])

    def forget_file(self, path: str) -> None:
        with self._transaction() as db:
            db.execute(delete(files).where(files.c.path == path))

    # -- state: what the writer keeps beside the versions -----------------------------------------

    def state(self, key: str) -> str | None:
        rows = self._rows(select(feed_state.c.value).where(feed_state.c.key == key))
        return rows[0][0] if rows else None

    def put_state(self, key: str, value: str) -> None:
        with self._transaction() as db:
            self._set_state(db, key, value)

    def regions(self) -> str | None:
        """The region tree the writer serves (regions.yaml as dumped), for replicas that have no folder."""
        return self.state("regions")

    def put_regions(self, dump: str) -> None:
        with self._transaction() as db:
            self._set_state(db, "regions", dump)
            self._changed(db, [(None, None)])

    def _set_state(self, db: Connection, key: str, value: str) -> None:
        statement = self._insert(feed_state).values(key=key, value=value)
        db.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": statement.excluded.value}))

    # -- change sequence (replicas) --------------------------------------------------------------

    def changes_after(self, seq: int, limit: int = 1000) -> tuple[list[tuple[str | None, str | None]], int]:
        """The series changed after ``seq`` (a (None, None) entry: the region tree), and the sequence number
        to continue from. :class:`FellBehind` when changes after ``seq`` were forgotten already."""
        pruned = int(self.state(_PRUNED) or 0)
        if seq < pruned:
            raise FellBehind(
                f"this process has followed the writer's changes up to {seq}, and the ledger keeps them only from "
                f"{pruned + 1} (the last {KEPT_CHANGES:,}): restart it to load what is in force afresh"
            )
        rows = self._rows(
            select(changes.c.seq, changes.c.doc_id, changes.c.region)
            .where(changes.c.seq > seq)
            .order_by(changes.c.seq)
            .limit(limit)
        )
        return [(r[1], r[2]) for r in rows], (rows[-1][0] if rows else seq)

    def change_seq(self) -> int:
        """The newest change's sequence number: what a replica that loads everything now has seen."""
        return int(self._rows(select(func.coalesce(func.max(changes.c.seq), 0)))[0][0])

    # -- writer lease (kb.lease) -----------------------------------------------------------------

    def lease(self) -> tuple[str | None, int, float]:
        """Holder, epoch and expiry (the holder's wall clock) of the writer lease."""
        row = self._rows(
            select(writer_lease.c.holder, writer_lease.c.epoch, writer_lease.c.expires_at).where(
                writer_lease.c.name == "writer"
            )
        )[0]
        return row[0], int(row[1]), float(row[2])

    def take_lease(self, holder: str, seen: tuple[str | None, int, float], expires_at: float) -> int | None:
        """Take the lease if it is still exactly as ``seen`` (a compare-and-set): the new epoch, else None."""
        with self._transaction(lease=True) as db:
            taken = db.execute(
                update(writer_lease)
                .where(writer_lease.c.name == "writer", writer_lease.c.epoch == seen[1],
                       writer_lease.c.expires_at == seen[2])
                .values(holder=holder, epoch=writer_lease.c.epoch + 1, expires_at=expires_at)
                .returning(writer_lease.c.epoch)
            ).first()  # fmt: skip
        return int(taken[0]) if taken else None

    def renew_lease(self, holder: str, epoch: int, expires_at: float) -> bool:
        """Extend the lease this process holds; False when it was taken over meanwhile."""
        with self._transaction(lease=True) as db:
            renewed = db.execute(
                update(writer_lease)
                .where(writer_lease.c.name == "writer", writer_lease.c.holder == holder, writer_lease.c.epoch == epoch)
                .values(expires_at=expires_at)
            ).rowcount
        return bool(renewed)

    def release_lease(self, holder: str, epoch: int) -> None:
        """Let a standby take over at once (a stop, not a crash)."""
        with self._transaction(lease=True) as db:
            db.execute(
                update(writer_lease)
                .where(writer_lease.c.name == "writer", writer_lease.c.holder == holder, writer_lease.c.epoch == epoch)
                .values(holder=None, expires_at=0.0)
            )

    # -- change feed -----------------------------------------------------------------------------

    def _insert_events(self, db: Connection, new: Sequence[Event]) -> None:
        """Events, and the feed's mark moved up to the latest of them: a write's event at ``now`` means the
        dates up to now have been looked at (kb.feed), so no extra transaction is needed for the mark."""
        if not new:
            return
        db.execute(
            events.insert(),
            [{"at": _iso(e.at), "kind": e.kind, "doc_id": e.doc_id, "region": e.region, "version": e.version,
              "source": e.source, "summary": e.summary} for e in new],
        )  # fmt: skip
        # ISO strings of UTC moments sort as the moments do.
        statement = self._insert(feed_state).values(key="until", value=_iso(max(e.at for e in new)))
        later = statement.excluded.value
        db.execute(
            statement.on_conflict_do_update(
                index_elements=["key"],
                set_={"value": case((later > feed_state.c.value, later), else_=feed_state.c.value)},
            )
        )

    def feed_until(self) -> datetime | None:
        """The moment up to which date-driven events (took_effect, ended) are in the feed."""
        rows = self._rows(select(feed_state.c.value).where(feed_state.c.key == "until"))
        return datetime.fromisoformat(rows[0][0]) if rows else None

    def add_date_events(self, new: Sequence[Event], until: datetime) -> None:
        """Date-driven events up to ``until``, and the new mark, in one transaction: none twice, none lost."""
        with self._transaction() as db:
            self._insert_events(db, new)
            self._set_state(db, "until", str(_iso(until)))

    def events_after(self, cursor: int, regions: Sequence[str] | None, limit: int) -> tuple[list[Event], int]:
        """Up to ``limit`` events after ``cursor`` (of these regions, when given), and the cursor to continue
        from: the last one returned, or the newest one scanned when fewer than ``limit`` matched."""
        statement = select(*_EVENT_COLUMNS).where(events.c.id > cursor)
        if regions is not None:
            statement = statement.where(events.c.region.in_(list(regions)))
        with self._reading(), self._engine.connect() as db:
            found = [_event(r) for r in db.execute(statement.order_by(events.c.id).limit(limit))]
            if len(found) == limit:
                return found, found[-1].cursor
            newest = db.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()
        return found, max(cursor, int(newest))

    # -- webhook outbox --------------------------------------------------------------------------

    def webhook(self, url: str) -> WebhookState:
        """A receiver's place in the feed; one seen for the first time starts after the newest event."""
        with self._transaction() as db:
            newest = db.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()
            db.execute(
                self._insert(webhooks).values(url=url, cursor=newest).on_conflict_do_nothing(index_elements=["url"])
            )
            row = db.execute(
                select(webhooks.c.url, webhooks.c.cursor, webhooks.c.attempts, webhooks.c.next_attempt_at,
                       webhooks.c.last_error).where(webhooks.c.url == url)
            ).one()  # fmt: skip
        return WebhookState(row[0], row[1], row[2], _moment(row[3]), row[4])

    def webhook_delivered(self, url: str, cursor: int) -> None:
        with self._transaction() as db:
            db.execute(
                update(webhooks)
                .where(webhooks.c.url == url)
                .values(cursor=cursor, attempts=0, next_attempt_at=None, last_error=None)
            )

    def webhook_failed(self, url: str, attempts: int, next_attempt_at: datetime, error: str) -> None:
        with self._transaction() as db:
            db.execute(
                update(webhooks)
                .where(webhooks.c.url == url)
                .values(attempts=attempts, next_attempt_at=_iso(next_attempt_at), last_error=error[:500])
            )
