"""Initial event log: tenants, API keys, catalog versions, decisions, outcomes, checkpoints.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", tz, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("created_at", tz, nullable=False),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_table(
        "catalog_versions",
        sa.Column("fingerprint", sa.String(32), primary_key=True),
        sa.Column("catalog", sa.LargeBinary, nullable=False),
        sa.Column("created_at", tz, nullable=False),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("created_at", tz, nullable=False),
        sa.Column(
            "catalog_fingerprint",
            sa.String(32),
            sa.ForeignKey("catalog_versions.fingerprint"),
            nullable=False,
        ),
        sa.Column("objective", sa.String(64), nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("allowed", sa.JSON, nullable=False),
        sa.Column("probabilities", sa.JSON, nullable=False),
        sa.Column("chosen_action", sa.String(300), nullable=False),
        sa.Column("chosen_position", sa.Integer, nullable=False),
        sa.Column("propensity", sa.Float, nullable=False),
        sa.Column("explored", sa.Boolean, nullable=False),
        sa.Column("policy_name", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("model_versions", sa.JSON, nullable=False),
        sa.Column("learner_seq", sa.Integer, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.UniqueConstraint("tenant_id", "request_id", name="uq_decisions_request"),
    )
    op.create_index("ix_decisions_tenant_id", "decisions", ["tenant_id"])
    op.create_index("ix_decisions_created_at", "decisions", ["created_at"])
    op.create_table(
        "outcomes",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "decision_id", sa.String(32), sa.ForeignKey("decisions.id"), nullable=False, unique=True
        ),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("created_at", tz, nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("quality", sa.Float, nullable=True),
        sa.Column("generation_time_s", sa.Float, nullable=True),
        sa.Column("cost_usd", sa.Float, nullable=True),
        sa.Column("tokens", sa.Integer, nullable=True),
        sa.Column("regenerations", sa.Integer, nullable=False),
        sa.Column("code", sa.Text, nullable=True),
        sa.Column("reward", sa.Float, nullable=False),
        sa.Column("reward_source", sa.String(64), nullable=False),
    )
    op.create_index("ix_outcomes_tenant_id", "outcomes", ["tenant_id"])
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("learner", sa.String(64), nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("created_at", tz, nullable=False),
    )
    op.create_index("ix_checkpoints_learner_seq", "checkpoints", ["learner", "last_seq"])


def downgrade() -> None:
    for table in ("checkpoints", "outcomes", "decisions", "catalog_versions", "api_keys"):
        op.drop_table(table)
    op.drop_table("tenants")
