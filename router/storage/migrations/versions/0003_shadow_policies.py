"""Shadow policies and the promotion gate: the shadows' probabilities on decisions, every
``router promote`` decision with its evidence, and the promoted (served) bandit configuration.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("shadow_probabilities", sa.JSON, nullable=True))
    op.create_table(
        "policy_promotions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", tz, nullable=False),
        sa.Column("candidate", sa.String(300), nullable=False),
        sa.Column("window", sa.JSON, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("estimates", sa.JSON, nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_policy_promotions_created_at", "policy_promotions", ["created_at"])
    op.create_table(
        "active_policies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", tz, nullable=False),
        sa.Column("candidate", sa.String(300), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("bandit", sa.JSON, nullable=False),
        sa.Column(
            "promotion_id", sa.Integer, sa.ForeignKey("policy_promotions.id"), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_table("active_policies")
    op.drop_table("policy_promotions")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("shadow_probabilities")
