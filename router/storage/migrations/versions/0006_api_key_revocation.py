"""API keys: HMAC-SHA256 hashes under the server secret and a revocation time.

The stored bare SHA-256 hashes can no longer match anything (keys are now hashed with a key
derived from the server secret), and the table is a mirror of the config that every start
rebuilds, so they are deleted rather than converted.

Revision ID: 0006
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM api_keys")
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM api_keys")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("revoked_at")
