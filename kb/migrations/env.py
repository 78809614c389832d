"""Alembic's entry point: the ledger hands over its open connection (kb.ledger.migrate); there is no ini file."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
