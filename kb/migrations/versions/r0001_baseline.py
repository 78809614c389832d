"""The ledger as it was before migrations: versions, chunks, files, the change feed and webhooks.

A ledger written by kb before Alembic (no ``alembic_version``) already holds some or all of these tables,
perhaps without the columns added later: it is adopted as it is, gaining what it lacks, and keeps its rows.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tables() -> list[sa.Table]:
    meta = sa.MetaData()
    text, integer = sa.Text, sa.Integer
    return [
        sa.Table(
            "versions", meta,
            sa.Column("id", integer, primary_key=True),
            *(sa.Column(name, text, nullable=False) for name in ("doc_id", "region")),
            sa.Column("version", integer, nullable=False),
            sa.Column("revision", integer, nullable=False),
            *(sa.Column(name, text, nullable=False) for name in ("title", "doc_type", "products")),
            sa.Column("owner", text),
            *(sa.Column(name, text, nullable=False) for name in ("risk_tier", "meta", "effective_from")),
            *(sa.Column(name, text) for name in ("effective_to", "review_due")),
            *(sa.Column(name, text, nullable=False) for name in ("source", "content_hash", "file_hash")),
            sa.Column("explicit_version", sa.Boolean, nullable=False),
            sa.Column("ingested_at", text, nullable=False),
            *(sa.Column(name, text) for name in ("replaced_at", "retracted_at", "retired_at")),
            sa.Column("refs", text, nullable=False, server_default="[]"),
            sa.Column("pii", text, nullable=False, server_default="{}"),
            sa.UniqueConstraint("doc_id", "region", "version", "revision"),
        ),
        sa.Table(
            "chunks", meta,
            sa.Column("chunk_id", text, primary_key=True),
            *(sa.Column(name, text, nullable=False) for name in ("section", "text", "embed_text")),
            sa.Column("page", integer),
        ),
        sa.Table(
            "version_chunks", meta,
            sa.Column("version_id", integer, sa.ForeignKey("versions.id"), primary_key=True),
            sa.Column("ord", integer, primary_key=True, autoincrement=False),
            sa.Column("chunk_id", text, sa.ForeignKey("chunks.chunk_id"), nullable=False),
        ),
        sa.Table(
            "files", meta,
            sa.Column("path", text, primary_key=True),
            sa.Column("content_hash", text, nullable=False),
            sa.Column("doc_id", text),
            sa.Column("version_id", integer, sa.ForeignKey("versions.id")),
            *(sa.Column(name, text) for name in ("error", "error_since", "error_kind")),
            sa.Column("updated_at", text, nullable=False),
        ),
        sa.Table(
            "events", meta,
            sa.Column("id", integer, primary_key=True),
            *(sa.Column(name, text, nullable=False) for name in ("at", "kind")),
            *(sa.Column(name, text) for name in ("doc_id", "region")),
            sa.Column("version", integer),
            *(sa.Column(name, text, nullable=False) for name in ("source", "summary")),
            sa.Index("events_region", "region", "id"),
            sqlite_autoincrement=True,
        ),
        sa.Table(
            "feed_state", meta,
            sa.Column("key", text, primary_key=True),
            sa.Column("value", text, nullable=False),
        ),
        sa.Table(
            "webhooks", meta,
            sa.Column("url", text, primary_key=True),
            sa.Column("cursor", integer, nullable=False),
            sa.Column("attempts", integer, nullable=False, server_default="0"),
            sa.Column("next_attempt_at", text),
            sa.Column("last_error", text),
        ),
    ]  # fmt: skip


ADDED_LATER = {"versions": ("refs", "pii"), "files": ("error_kind",), "chunks": ("page",)}
"""Columns a ledger from before migrations may lack: it was written before they existed."""


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table in _tables():
        if not inspector.has_table(table.name):
            table.create(bind)
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for name in ADDED_LATER.get(table.name, ()):
            if name not in present:
                column = table.c[name]
                op.add_column(table.name, sa.Column(name, column.type, nullable=column.nullable,
                                                    server_default=column.server_default))  # fmt: skip


def downgrade() -> None:
    for table in reversed(_tables()):
        op.drop_table(table.name)
