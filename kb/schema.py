"""The ledger's tables, one schema for SQLite and PostgreSQL; kb/migrations brings a database to it.

Moments are ISO-8601 text, as the ledger has always stored them: UTC moments sort as strings do, on both
engines, and reading them back costs one ``datetime.fromisoformat``.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, Table, Text

metadata = MetaData()

versions = Table(
    "versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("doc_id", Text, nullable=False),
    Column("region", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("doc_type", Text, nullable=False),
    Column("products", Text, nullable=False),
    Column("owner", Text),
    Column("risk_tier", Text, nullable=False),
    Column("meta", Text, nullable=False),
    Column("effective_from", Text, nullable=False),
    Column("effective_to", Text),
    Column("review_due", Text),
    Column("source", Text, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("file_hash", Text, nullable=False),
    Column("explicit_version", Boolean, nullable=False),
    Column("ingested_at", Text, nullable=False),
    Column("replaced_at", Text),
    Column("retracted_at", Text),
    Column("retired_at", Text),
    Column("refs", Text, nullable=False, server_default="[]"),
    Column("pii", Text, nullable=False, server_default="{}"),
)  # fmt: skip

chunks = Table(
    "chunks", metadata,
    Column("chunk_id", Text, primary_key=True),
    Column("section", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("embed_text", Text, nullable=False),
    Column("page", Integer),
)  # fmt: skip

version_chunks = Table(
    "version_chunks", metadata,
    Column("version_id", Integer, ForeignKey("versions.id"), primary_key=True),
    Column("ord", Integer, primary_key=True, autoincrement=False),
    Column("chunk_id", Text, ForeignKey("chunks.chunk_id"), nullable=False),
)  # fmt: skip

files = Table(
    "files", metadata,
    Column("path", Text, primary_key=True),
    Column("content_hash", Text, nullable=False),
    Column("doc_id", Text),
    Column("version_id", Integer, ForeignKey("versions.id")),
    Column("error", Text),
    Column("error_since", Text),
    Column("error_kind", Text),
    Column("updated_at", Text, nullable=False),
)  # fmt: skip

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("doc_id", Text),
    Column("region", Text),
    Column("version", Integer),
    Column("source", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Index("events_region", "region", "id"),
    sqlite_autoincrement=True,
)  # fmt: skip

feed_state = Table(
    "feed_state", metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)  # fmt: skip

webhooks = Table(
    "webhooks", metadata,
    Column("url", Text, primary_key=True),
    Column("cursor", Integer, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Text),
    Column("last_error", Text),
)  # fmt: skip

changes = Table(
    "changes", metadata,
    Column("seq", Integer, primary_key=True),
    Column("doc_id", Text),
    Column("region", Text),
    sqlite_autoincrement=True,
)  # fmt: skip
"""The change sequence replicas follow: one row per series whose versions a write transaction changed, written
in that transaction; a row with no series means the region tree changed. The feed's events are not enough: a
rename changes a version's source without one."""

writer_lease = Table(
    "writer_lease", metadata,
    Column("name", Text, primary_key=True),
    Column("holder", Text),
    Column("epoch", Integer, nullable=False),
    Column("expires_at", Float, nullable=False),
)  # fmt: skip
"""One row, ``writer``: who may write, and the epoch every write transaction checks (kb/lease.py)."""
