"""Alembic migrations of the event log; applied by :func:`router.storage.database.migrate`."""
