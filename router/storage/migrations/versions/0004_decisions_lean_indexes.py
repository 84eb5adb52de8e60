"""Drop ``ix_decisions_tenant_id``: the composite indexes ``uq_decisions_request`` and
``ix_decisions_project`` lead with ``tenant_id`` and serve every query by tenant, so the
single-column index only cost each decision insert one more B-tree update (about a tenth of
SQLite's per-row insert time; README "Benchmark").

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_decisions_tenant_id", table_name="decisions")


def downgrade() -> None:
    op.create_index("ix_decisions_tenant_id", "decisions", ["tenant_id"])
