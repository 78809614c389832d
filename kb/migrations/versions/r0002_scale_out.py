"""Scale-out: the change sequence replicas follow, and the writer lease.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("doc_id", sa.Text),
        sa.Column("region", sa.Text),
        sqlite_autoincrement=True,
    )
    lease = op.create_table(
        "writer_lease",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("holder", sa.Text),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.bulk_insert(lease, [{"name": "writer", "holder": None, "epoch": 0, "expires_at": 0.0}])


def downgrade() -> None:
    op.drop_table("writer_lease")
    op.drop_table("changes")
