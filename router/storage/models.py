"""Tables of the event log. Decisions and outcomes are the source of truth (DESIGN.md rule 2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Outcome numbers: 64-bit on PostgreSQL; on SQLite INTEGER, so that ``outcomes.seq`` is the rowid.
SEQ = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Decisions logged for the tenant; services add what they logged every few tenths of a
    # second (router/services/tenant_stats.py), so GET /v1/stats reads one row.
    decisions: Mapped[int] = mapped_column(BigInteger, server_default="0")


class ApiKey(Base):
    """An API key, stored only as its HMAC-SHA256 under the server secret (router/auth.py);
    a revoked key stays (``revoked_at`` set) so that it is refused even if configured again."""

    __tablename__ = "api_keys"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CatalogVersion(Base):
    """Each catalog the service has run with, so logged action indices stay meaningful."""

    __tablename__ = "catalog_versions"

    fingerprint: Mapped[str] = mapped_column(String(32), primary_key=True)
    catalog: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Decision(Base):
    """One answer of ``/v1/route`` with everything off-policy evaluation needs."""

    __tablename__ = "decisions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "request_id", name="uq_decisions_request"),
        Index("ix_decisions_project", "tenant_id", "project_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # No index of its own: uq_decisions_request and ix_decisions_project lead with it.
    tenant_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    catalog_fingerprint: Mapped[str] = mapped_column(ForeignKey("catalog_versions.fingerprint"))
    objective: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    allowed: Mapped[list[Any]] = mapped_column(JSON)
    probabilities: Mapped[list[Any]] = mapped_column(JSON)
    chosen_action: Mapped[str] = mapped_column(String(300))
    chosen_position: Mapped[int] = mapped_column(Integer)
    propensity: Mapped[float] = mapped_column(Float)
    explored: Mapped[bool] = mapped_column(Boolean)
    policy_name: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(64))
    model_versions: Mapped[dict[str, Any]] = mapped_column(JSON)
    learner_seq: Mapped[int] = mapped_column(SEQ)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    project_id: Mapped[str | None] = mapped_column(String(128))
    task_type: Mapped[str | None] = mapped_column(String(128))
    language: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(128))
    # Imported history rows: hash of the row's content, so importing a file twice adds nothing.
    content_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # What each shadow policy would have done: {name: {"version": …, "probabilities": […]}},
    # probabilities over ``allowed`` in its order (router/services/shadow.py).
    shadow_probabilities: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Outcome(Base):
    """Feedback on a decision; ``seq`` orders the fold the online learners are."""

    __tablename__ = "outcomes"

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    decision_id: Mapped[str] = mapped_column(ForeignKey("decisions.id"), unique=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    verdict: Mapped[str] = mapped_column(String(16))
    quality: Mapped[float | None] = mapped_column(Float)
    generation_time_s: Mapped[float | None] = mapped_column(Float)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    tokens: Mapped[int | None] = mapped_column(Integer)
    regenerations: Mapped[int] = mapped_column(Integer)
    code: Mapped[str | None] = mapped_column(Text)
    reward: Mapped[float] = mapped_column(Float)
    reward_source: Mapped[str] = mapped_column(String(64))
    complexity: Mapped[float | None] = mapped_column(Float)
    code_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ModelVersion(Base):
    """One trained version of the batch models: artifact, metrics and promotion status."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), index=True)
    data_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data_to: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    holdout_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    n_train: Mapped[int] = mapped_column(Integer)
    n_holdout: Mapped[int] = mapped_column(Integer)
    feature_spec_hash: Mapped[str] = mapped_column(String(32))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    gate: Mapped[dict[str, Any]] = mapped_column(JSON)
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    model_card: Mapped[str] = mapped_column(Text)
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Checkpoint(Base):
    """A cache of online-learner state that includes every outcome up to ``last_seq``."""

    __tablename__ = "checkpoints"
    __table_args__ = (Index("ix_checkpoints_learner_seq", "learner", "last_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    learner: Mapped[str] = mapped_column(String(64))
    last_seq: Mapped[int] = mapped_column(SEQ)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ActivePolicy(Base):
    """A bandit configuration made the served one by ``router promote``; the newest row is in
    force (none: the config file's ``[bandit]``). Services poll it."""

    __tablename__ = "active_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    candidate: Mapped[str] = mapped_column(String(300))
    fingerprint: Mapped[str] = mapped_column(String(64))
    bandit: Mapped[dict[str, Any]] = mapped_column(JSON)
    promotion_id: Mapped[int] = mapped_column(ForeignKey("policy_promotions.id"))


class PolicyPromotion(Base):
    """Every ``router promote`` gate decision with its evidence."""

    __tablename__ = "policy_promotions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    candidate: Mapped[str] = mapped_column(String(300))
    window: Mapped[dict[str, Any]] = mapped_column(JSON)
    n: Mapped[int] = mapped_column(Integer)
    estimates: Mapped[dict[str, Any]] = mapped_column(JSON)
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
