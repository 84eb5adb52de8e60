"""Batch models: project, task type, language and model columns on decisions, complexity
rating and code metrics on outcomes, model registry.

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
    tz = sa.DateTime(timezone=True)
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("project_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("task_type", sa.String(128), nullable=True))
        batch.add_column(sa.Column("language", sa.String(128), nullable=True))
        batch.add_column(sa.Column("model", sa.String(128), nullable=True))
        batch.add_column(sa.Column("content_hash", sa.String(64), nullable=True))
        batch.create_index("ix_decisions_project", ["tenant_id", "project_id"])
        batch.create_unique_constraint("uq_decisions_content_hash", ["content_hash"])
    with op.batch_alter_table("outcomes") as batch:
        batch.add_column(sa.Column("complexity", sa.Float, nullable=True))
        batch.add_column(sa.Column("code_metrics", sa.JSON, nullable=True))
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("created_at", tz, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("data_from", tz, nullable=False),
        sa.Column("data_to", tz, nullable=False),
        sa.Column("holdout_from", tz, nullable=False),
        sa.Column("n_train", sa.Integer, nullable=False),
        sa.Column("n_holdout", sa.Integer, nullable=False),
        sa.Column("feature_spec_hash", sa.String(32), nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("gate", sa.JSON, nullable=False),
        sa.Column("artifact", sa.LargeBinary, nullable=False),
        sa.Column("model_card", sa.Text, nullable=False),
        sa.Column("promoted_at", tz, nullable=True),
    )
    op.create_index("ix_model_versions_status", "model_versions", ["status"])


def downgrade() -> None:
    op.drop_table("model_versions")
    with op.batch_alter_table("outcomes") as batch:
        batch.drop_column("code_metrics")
        batch.drop_column("complexity")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_constraint("uq_decisions_content_hash", type_="unique")
        batch.drop_index("ix_decisions_project")
        batch.drop_column("content_hash")
        batch.drop_column("model")
        batch.drop_column("language")
        batch.drop_column("task_type")
        batch.drop_column("project_id")
