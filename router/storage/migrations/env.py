"""Alembic environment: runs on the connection handed over by ``migrate`` (never creates one)."""

from __future__ import annotations

from alembic import context

from router.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through router.storage.database.migrate")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
