"""Statistics and model administration: what ``GET /v1/stats``, ``GET /v1/models`` and
``/v1/admin/models/*`` do."""

from __future__ import annotations

import math

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from learners.batch.report import ModelReport
from learners.batch.training import TrainingError
from learners.sealed import SealError
from router.errors import (
    ForbiddenError,
    InvalidRequestError,
    ModelVersionNotFoundError,
    PromotionRefusedError,
)
from router.schemas import (
    Averages,
    DriftAlarmView,
    DriftView,
    ModelReportView,
    ModelVersionView,
    PromotionView,
    Stats,
)
from router.services.learning import LearnerService
from router.services.models import ModelService
from router.services.promotion import TrainReport, promote_version, train_and_register
from router.services.tenant_stats import DecisionCounter
from router.settings import Settings
from router.storage.registry import ModelRegistry, RegistryError, VersionInfo
from router.storage.repository import EventLog


def _finite(values: dict[str, float]) -> dict[str, float | None]:
    return {name: value if math.isfinite(value) else None for name, value in values.items()}


def report_view(report: ModelReport) -> ModelReportView:
    """``report`` with its non-finite numbers as null (what JSON can carry)."""
    return ModelReportView(
        name=report.name, n_train=report.n_train, n_holdout=report.n_holdout,
        metrics=_finite(report.metrics), baseline=_finite(report.baseline),
        primary=report.primary, lower_is_better=report.lower_is_better,
        beats_baseline=report.beats_baseline, params=_finite(report.params))


def version_view(info: VersionInfo) -> ModelVersionView:
    return ModelVersionView(
        version=info.version,
        status=info.status,
        created_at=info.created_at.isoformat(),
        data_from=info.data_from.isoformat(),
        data_to=info.data_to.isoformat(),
        n_train=info.n_train,
        n_holdout=info.n_holdout,
        feature_spec_hash=info.feature_spec_hash,
        metrics={name: report_view(report) for name, report in info.metrics.items()},
        gate={} if info.gate is None else msgspec.structs.asdict(info.gate),
        promoted_at=None if info.promoted_at is None else info.promoted_at.isoformat(),
    )


class AdminService:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        settings: Settings,
        log: EventLog,
        models: ModelService,
        learner: LearnerService,
        decisions: DecisionCounter,
        admin_tenants: frozenset[str],
    ) -> None:
        self.decisions = decisions
        self.engine = engine
        self.settings = settings
        self.log = log
        self.models = models
        self.learner = learner
        self.registry = ModelRegistry(engine)
        self.admin_tenants = admin_tenants

    def require_admin(self, tenant_id: str) -> None:
        if tenant_id not in self.admin_tenants:
            raise ForbiddenError(
                f"tenant {tenant_id!r} may not administer models (auth.admin_tenants)",
                field="authorization",
            )

    async def stats(self, tenant_id: str) -> Stats:
        """The caller's figures alone: its decision count (one row, router/services/
        tenant_stats.py) and its outcomes as this process has learned them (counted with the
        fold, learners/tenant_policies.py), with the drift alarms of its learner state. Nothing
        here scans the log."""
        counts = self.learner.policies.counts_for(tenant_id)
        current = self.models.current
        return Stats(
            decisions=await self.decisions.total(tenant_id),
            outcomes=counts.outcomes,
            by_task_type=dict(counts.by_task_type),
            by_outcome=dict(counts.by_outcome),
            by_model=dict(counts.by_model),
            averages=Averages(
                success_rate=counts.success_rate,
                reward=counts.reward,
                quality=counts.quality,
                generation_time_s=counts.generation_time_s,
                cost_usd=counts.cost_usd,
            ),
            current_model_version=None if current is None else current.version,
            learned_outcomes=counts.outcomes,
            drift=self.drift_view(tenant_id),
        )

    def drift_view(self, tenant_id: str) -> DriftView:
        """Drift alarms of the learner state that decides for ``tenant_id``."""
        policy = self.learner.policies.find(tenant_id)
        if policy is None:
            return DriftView()
        return DriftView(
            active=[
                DriftAlarmView(
                    model=a.model, stream=a.stream, detected_at_outcome=a.detected_at,
                    before=round(a.before, 4), after=round(a.after, 4),
                    remaining_outcomes=a.remaining, description=a.description,
                )
                for a in policy.active_alarms
            ],
            raised_total=len(policy.raised_alarms),
        )

    async def versions(self) -> list[ModelVersionView]:
        return [version_view(v) for v in await self.registry.versions()]

    async def promote(self, tenant_id: str, version: str, force: bool) -> PromotionView:
        self.require_admin(tenant_id)
        try:
            passed, reasons = await promote_version(self.engine, self.settings,
                                                    self.models.keyring, version, force)
        except SealError as exc:
            raise PromotionRefusedError(f"a version's artifact is refused: {exc}",
                                        field="version") from exc
        except RegistryError as exc:
            if "no model version" in str(exc):
                raise ModelVersionNotFoundError(str(exc), field="version") from exc
            raise PromotionRefusedError(str(exc), field="version") from exc
        if not passed:
            raise PromotionRefusedError(
                f"{version} does not beat the current version: " + "; ".join(reasons),
                field="version",
            )
        await self.models.refresh()
        return PromotionView(version=version, promoted=True, reasons=reasons)

    async def rollback(self, tenant_id: str) -> ModelVersionView:
        self.require_admin(tenant_id)
        try:
            info = await self.registry.rollback()
        except RegistryError as exc:
            raise PromotionRefusedError(str(exc)) from exc
        await self.models.refresh()
        return version_view(info)

    async def retrain(self, tenant_id: str) -> dict[str, object]:
        self.require_admin(tenant_id)
        try:
            report: TrainReport = await train_and_register(self.engine, self.settings,
                                                           self.models.keyring)
        except TrainingError as exc:
            raise InvalidRequestError(f"cannot train: {exc}") from exc
        await self.models.refresh()
        result: dict[str, object] = msgspec.to_builtins(report)
        return result
