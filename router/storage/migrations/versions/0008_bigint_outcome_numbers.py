"""Outcome numbers are 64-bit on PostgreSQL: ``outcomes.seq`` and its sequence (SERIAL made
both 32-bit: 2.1 billion numbers, holes included), ``checkpoints.last_seq`` and
``decisions.learner_seq``. SQLite's INTEGER is already 64-bit and ``outcomes.seq`` must stay its
rowid (INTEGER PRIMARY KEY), so nothing changes there. On PostgreSQL each ALTER rewrites its table
under an exclusive lock (docs/operations.md).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = (("outcomes", "seq"), ("checkpoints", "last_seq"), ("decisions", "learner_seq"))


def _retype(kind: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {kind}")
    op.execute(f"ALTER SEQUENCE outcomes_seq_seq AS {kind}")


def upgrade() -> None:
    _retype("bigint")


def downgrade() -> None:
    _retype("integer")
