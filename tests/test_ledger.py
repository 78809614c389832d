"""The ledger on SQLite (always) and on a real PostgreSQL (slow tier): the same behaviour through one schema and
one migration history; a ledger written before migrations keeps its rows; a fenced writer that lost its lease
writes nothing; the change sequence keeps its last changes, and a follower that needed older ones stops."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Clock, write_doc
from sqlalchemy import create_engine, inspect, text

from kb import ledger as ledger_module
from kb.documents import Chunk, DocType, Document, RiskTier
from kb.embedder import Embedder
from kb.errors import FellBehind, LeaseLost, ReadOnly
from kb.feed import published
from kb.ingest.pipeline import sync
from kb.knowledge import KnowledgeBase
from kb.ledger import Ledger, ledger_url
from kb.records import Event
from kb.replica import Follower
from kb.settings import Settings

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    if request.param == "sqlite":
        return tmp_path / "ledger.sqlite3"
    return str(request.getfixturevalue("postgres_url"))


def _doc(source: str = "returns.md", version: int | None = 1, doc_id: str = "returns", region: str = "global",
         meta: dict[str, object] | None = None) -> Document:  # fmt: skip
    return Document(
        doc_id=doc_id, region=region, title="Returns", doc_type=DocType.policy, products=("blender",),
        version=version, effective_from=NOW, effective_to=None, review_by=None, review_every=None, owner="CX",
        risk_tier=RiskTier.medium, source=source, content_hash=f"c-{source}-{version}", meta=meta or {},
        references=("doc:warranty",), pii={"email": 1},
    )  # fmt: skip


def _chunks(*texts: str) -> list[Chunk]:
    return [Chunk(f"id-{t}", ("Returns", "Window"), t, f"Returns. {t}", None) for t in texts]


def test_versions_files_chunks_and_the_feed_behave_the_same_on_both_engines(where: Path | str) -> None:
    ledger = Ledger(where)
    try:
        v1 = ledger.commit_version(_doc(meta={"team": "cx"}), 1, NOW, NOW + timedelta(days=365),
                                   _chunks("30 days", "fee"), "h1", NOW, event=lambda r: published(r, NOW))  # fmt: skip
        assert (v1.version, v1.revision, v1.products, v1.references, v1.pii, v1.meta, v1.explicit_version) == (
            1, 1, ("blender",), ("doc:warranty",), {"email": 1}, {"team": "cx"}, True
        )  # fmt: skip
        fixed = ledger.commit_version(_doc(), 1, NOW, None, _chunks("60 days", "fee"), "h2", NOW + timedelta(hours=1),
                                      replaces=v1)  # fmt: skip
        assert [v.id for v in ledger.versions()] == [fixed.id]
        assert [(v.revision, v.replaced_at is not None) for v in ledger.history("returns")] == [(1, True), (2, False)]
        assert ledger.chunk_ids(fixed.id) == ["id-60 days", "id-fee"]
        assert ledger.chunk_ids_of([v1.id, fixed.id]) == {v1.id: ["id-30 days", "id-fee"],
                                                          fixed.id: ["id-60 days", "id-fee"]}  # fmt: skip
        assert ledger.chunks(["id-fee"])["id-fee"].section == ("Returns", "Window")
        assert ledger.versions_of_chunks(["id-6"]) == {"id-60 days": [fixed.id]}
        assert ledger.embed_texts_of(["id-fee"]) == {"id-fee": "Returns. fee"}
        assert ledger.all_chunk_ids() == {"id-30 days", "id-60 days", "id-fee"}

        ledger.record_file_error("returns.md", "h3", "broken", "parse_error", NOW + timedelta(hours=2))
        ledger.record_file_error("returns.md", "h4", "still broken", "parse_error", NOW + timedelta(hours=3))
        file = ledger.files()["returns.md"]
        assert (file.version_id, file.error, file.error_since) == (fixed.id, "still broken", NOW + timedelta(hours=2))
        ledger.move_file("returns.md", "moved.md", NOW)
        assert ledger.version(fixed.id).source == "moved.md" and ledger.file("returns.md") is None
        ledger.end_version(fixed.id, "retired_at", NOW)
        ledger.restore_version(fixed.id, "back.md", "h2", NOW)
        assert ledger.version(fixed.id).retired_at is None and ledger.file("back.md") is not None
        ledger.forget_file("back.md")

        later = Event(NOW + timedelta(days=1), "took_effect", "returns", "global", 1, "moved.md", "took effect")
        ledger.add_date_events([later], NOW + timedelta(days=2))
        assert ledger.feed_until() == NOW + timedelta(days=2)
        found, cursor = ledger.events_after(0, ["global"], 10)
        assert [e.kind for e in found] == ["published", "took_effect"] and cursor == found[-1].cursor
        assert ledger.webhook("http://hook").cursor == cursor
        ledger.webhook_failed("http://hook", 2, NOW, "refused")
        assert ledger.webhook("http://hook").attempts == 2
        ledger.webhook_delivered("http://hook", cursor)
        assert ledger.webhook("http://hook").attempts == 0

        # Every change to a series' versions is in the sequence replicas follow, in order.
        series, seq = ledger.changes_after(0)
        assert series == [("returns", "global")] * 5 and seq == ledger.change_seq()
        ledger.put_regions("de: eu\n")
        assert ledger.changes_after(seq) == ([(None, None)], seq + 1) and ledger.regions() == "de: eu\n"
        assert ledger.writes == 15
    finally:
        ledger.close()


# The schema of the ledger before migrations, exactly as kb wrote it (kb/ledger.py's _SCHEMA until then).
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, region TEXT NOT NULL, version INTEGER NOT NULL,
    revision INTEGER NOT NULL, title TEXT NOT NULL, doc_type TEXT NOT NULL, products TEXT NOT NULL, owner TEXT,
    risk_tier TEXT NOT NULL, meta TEXT NOT NULL, effective_from TEXT NOT NULL, effective_to TEXT, review_due TEXT,
    source TEXT NOT NULL, content_hash TEXT NOT NULL, file_hash TEXT NOT NULL, explicit_version INTEGER NOT NULL,
    ingested_at TEXT NOT NULL, replaced_at TEXT, retracted_at TEXT, retired_at TEXT,
    refs TEXT NOT NULL DEFAULT '[]', pii TEXT NOT NULL DEFAULT '{}', UNIQUE (doc_id, region, version, revision)
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, section TEXT NOT NULL, text TEXT NOT NULL, embed_text TEXT NOT NULL, page INTEGER
);
CREATE TABLE IF NOT EXISTS version_chunks (
    version_id INTEGER NOT NULL REFERENCES versions(id), ord INTEGER NOT NULL,
    chunk_id TEXT NOT NULL REFERENCES chunks(chunk_id), PRIMARY KEY (version_id, ord)
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, content_hash TEXT NOT NULL, doc_id TEXT, version_id INTEGER REFERENCES versions(id),
    error TEXT, error_since TEXT, error_kind TEXT, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL, doc_id TEXT, region TEXT,
    version INTEGER, source TEXT NOT NULL, summary TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_region ON events (region, id);
CREATE TABLE IF NOT EXISTS feed_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhooks (
    url TEXT PRIMARY KEY, cursor INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT,
    last_error TEXT
);
"""


def _old_ledger(path: Path, without: tuple[str, ...] = ()) -> None:
    """A ledger file as kb wrote it before migrations, with one version, its chunk, file and event."""
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        for table in without:
            db.execute(f"DROP TABLE {table}")
        db.execute("""INSERT INTO versions VALUES (7, 'returns', 'global', 1, 1, 'Returns', 'policy', '["blender"]',
                      'CX', 'medium', '{}', '2026-11-01T00:00:00+00:00', NULL, NULL, 'returns.md', 'c', 'h', 1,
                      '2026-11-01T00:00:00+00:00', NULL, NULL, NULL, '[]', '{}')""")
        db.execute("INSERT INTO chunks VALUES ('id-a', '[\"Returns\"]', '30 days', 'Returns. 30 days', NULL)")
        db.execute("INSERT INTO version_chunks VALUES (7, 0, 'id-a')")
        db.execute("INSERT INTO files VALUES ('returns.md', 'h', 'returns', 7, NULL, NULL, NULL, '2026-11-01')")
        if "events" not in without:
            db.execute(
                "INSERT INTO events (at, kind, doc_id, region, version, source, summary) VALUES "
                "('2026-11-01T00:00:00+00:00', 'published', 'returns', 'global', 1, 'returns.md', 'published')"
            )


@pytest.mark.parametrize("without", [(), ("events", "feed_state", "webhooks")])
def test_a_ledger_written_before_migrations_opens_with_its_rows_and_is_stamped(
    tmp_path: Path, without: tuple[str, ...]
) -> None:
    path = tmp_path / "ledger.sqlite3"
    _old_ledger(path, without)
    ledger = Ledger(path)
    try:
        assert [(v.id, v.doc_id, v.products) for v in ledger.versions()] == [(7, "returns", ("blender",))]
        assert ledger.chunk_ids(7) == ["id-a"] and ledger.files()["returns.md"].version_id == 7
        assert len(ledger.events_after(0, None, 10)[0]) == (0 if without else 1)
        record = ledger.commit_version(_doc(version=2), 2, NOW, None, _chunks("60 days"), "h2", NOW)
        assert record.id == 8 and ledger.changes_after(0)[0] == [("returns", "global")]
    finally:
        ledger.close()
    engine = create_engine(ledger_url(path))
    with engine.connect() as db:
        assert db.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
        assert {"changes", "writer_lease", "events"} <= set(inspect(db).get_table_names())
    engine.dispose()


def test_an_old_ledger_without_the_later_columns_gains_them(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    _old_ledger(path)
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE versions DROP COLUMN refs")
        db.execute("ALTER TABLE files DROP COLUMN error_kind")
    ledger = Ledger(path)
    ledger.record_file_error("x.md", "h", "broken", "parse_error", NOW)
    assert ledger.files()["x.md"].error_kind == "parse_error" and ledger.versions()[0].references == ()
    ledger.close()


def test_a_writer_that_lost_its_lease_commits_nothing(where: Path | str) -> None:
    """A paused writer wakes after a standby took over: its next write is refused inside the transaction."""
    old, new = Ledger(where), Ledger(where)
    try:
        lease = old.lease()
        epoch = old.take_lease("old", lease, 100.0)
        assert epoch == 1 and old.take_lease("again", lease, 100.0) is None, "a compare-and-set, not a grab"
        old.fence = ("old", epoch)
        old.commit_version(_doc(), 1, NOW, None, _chunks("a"), "h1", NOW)
        assert new.take_lease("new", new.lease(), 200.0) == 2
        new.fence = ("new", 2)
        with pytest.raises(LeaseLost):
            old.commit_version(_doc("other.md", doc_id="other"), 1, NOW, None, _chunks("b"), "h2", NOW)
        assert not old.renew_lease("old", epoch, 300.0)
        assert [v.doc_id for v in new.versions()] == ["returns"] and new.file("other.md") is None
        new.release_lease("new", 2)
        assert new.lease() == (None, 2, 0.0)
    finally:
        old.close()
        new.close()


def test_a_read_only_ledger_refuses_every_write(tmp_path: Path) -> None:
    Ledger(tmp_path / "ledger.sqlite3").close()
    replica = Ledger(tmp_path / "ledger.sqlite3", read_only=True)
    with pytest.raises(ReadOnly):
        replica.record_file("a.md", "h", None, None, NOW)
    assert replica.files() == {}
    replica.close()


def test_changes_past_the_kept_ones_are_forgotten_and_a_reader_needing_them_is_told_to_restart(
    where: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "KEPT_CHANGES", 5)
    ledger = Ledger(where)
    try:
        for i in range(12):
            ledger.put_regions(f"r{i}: global\n")
        newest = ledger.change_seq()
        assert ledger.changes_after(newest - 5) == ([(None, None)] * 5, newest)
        with pytest.raises(FellBehind, match="restart"):
            ledger.changes_after(newest - 6)
        with ledger._engine.connect() as db:
            assert db.execute(text("SELECT count(*) FROM changes")).scalar_one() == 5
    finally:
        ledger.close()


def test_a_follower_stalled_past_the_kept_changes_stops_and_says_so(
    settings: Settings, embedder: Embedder, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica that missed changes the ledger no longer keeps cannot catch up by following: it is stopped (the
    server then fails /healthz and exits, so that its supervisor starts it afresh), not left serving stale text."""
    monkeypatch.setattr(ledger_module, "KEPT_CHANGES", 2)
    kb = KnowledgeBase.open(settings, embedder, clock)
    try:
        for name in ("returns", "warranty", "delivery", "repairs"):
            write_doc(settings.docs, f"{name}.md", f"# {name}\n\nThe {name} rule.", doc_id=name, version=1)
        sync(kb)
        kb.parts.followed = 0  # as if it had stalled before the first of them
        told: list[FellBehind] = []
        follower = Follower(kb, poll=0.01, on_fell_behind=told.append)
        follower.start()
        follower._thread.join(5)
        assert not follower._thread.is_alive() and len(told) == 1 and told[0].status == 503
    finally:
        kb.close()
