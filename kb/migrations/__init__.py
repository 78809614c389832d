"""The ledger's Alembic migrations: one history for SQLite and PostgreSQL, applied when a ledger opens
(kb.ledger.migrate). ``versions/`` holds one module per revision; ``script.py.mako`` is the template of
``alembic revision`` for the next one."""
