"""``tenants.decisions``: each tenant's decision count, kept up to date as decisions are
logged, so ``GET /v1/stats`` reads one row instead of counting the log. Existing rows start at
the count of the decisions already in the log.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("decisions", sa.BigInteger, nullable=False,
                                   server_default="0"))
    op.execute("UPDATE tenants SET decisions = (SELECT count(*) FROM decisions "
               "WHERE decisions.tenant_id = tenants.id)")


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("decisions")
