"""Training runs and promotions of batch-model versions, shared by ``router train`` /
``router models`` and the admin API.

Promotion gate: a version becomes current only if (1) each of the five models beats its trivial
baseline on the run's time-ordered hold-out and (2) when a version is current, the new one
beats it on that same hold-out (:func:`learners.batch.training.compare`: lower success log-loss,
no other primary metric worse by more than ``training.promotion_tolerance``). A version that
passes (1) but not (2) stays a ``candidate``; one that fails (1) is ``rejected``. Promoting a
candidate by hand re-runs (2) on the newest hold-out of the log unless forced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from learners.batch.models import BatchModels, dump_models, load_models
from learners.batch.training import (
    MODEL_NAMES,
    History,
    TrainingResult,
    compare,
    evaluate,
    train_models,
)
from learners.catalog import Catalog
from learners.sealed import Keyring, SealError
from router.settings import Settings
from router.storage.history import history_from_log
from router.storage.registry import (
    CANDIDATE,
    CURRENT,
    REJECTED,
    GateResult,
    ModelRegistry,
    NewVersion,
    RegistryError,
)
from router.storage.repository import EventLog

logger = logging.getLogger(__name__)


class TrainReport(msgspec.Struct, frozen=True):
    version: str
    status: str
    result: TrainingResult
    gate: GateResult


def version_name(models: BatchModels, now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%S}-{models.encoder.spec_hash[:8]}"


def baseline_reasons(result: TrainingResult) -> list[str]:
    out = []
    for name in MODEL_NAMES:
        r = result.reports[name]
        relation = "beats" if r.beats_baseline else "does NOT beat"
        out.append(f"{name} {r.primary}: {r.score:.4f} {relation} baseline "
                   f"{r.baseline[r.primary]:.4f}")
    return out


async def apply_gate(
    registry: ModelRegistry, keyring: Keyring, candidate: BatchModels, result: TrainingResult,
    holdout: History, tolerance: float,
) -> GateResult:
    reasons = baseline_reasons(result)
    if not result.beats_baselines:
        return GateResult(status=REJECTED, passed=False, compared_with=None,
                          reasons=["a model does not beat its baseline", *reasons])
    current = await registry.current()
    if current is None:
        return GateResult(status=CURRENT, passed=True, compared_with=None,
                          reasons=["no current version", *reasons])
    try:
        current_models = load_models(await registry.artifact(current.version), keyring)
    except SealError as exc:
        return GateResult(status=CURRENT, passed=True, compared_with=None, reasons=[
            f"current version {current.version} refused ({exc}): not compared", *reasons])
    candidate_metrics = await asyncio.to_thread(evaluate, candidate, holdout)
    current_metrics = await asyncio.to_thread(evaluate, current_models, holdout)
    passed, compared = compare(candidate_metrics, current_metrics, tolerance)
    return GateResult(status=CURRENT if passed else CANDIDATE, passed=passed,
                      compared_with=current.version, reasons=[*compared, *reasons])


def model_card(version: str, result: TrainingResult, gate: GateResult, models: BatchModels,
               source: str) -> str:
    """MODEL_CARD.md of one version: data, features, metrics against baselines, the gate."""
    lines = [
        f"# Batch models {version}",
        "",
        f"- trained: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC from {source} "
        f"in {result.seconds:.1f} s",
        f"- data window: {result.data_from:%Y-%m-%d %H:%M} – {result.data_to:%Y-%m-%d %H:%M} "
        f"UTC; time-ordered hold-out from {result.holdout_from:%Y-%m-%d %H:%M}",
        f"- decisions with outcomes: {result.n_train} training, {result.n_holdout} hold-out",
        f"- feature spec {models.encoder.spec_hash}: {len(models.encoder.columns)} columns "
        f"({', '.join(models.encoder.columns)})",
        f"- status: **{gate.status}**"
        + (f" (compared with {gate.compared_with})" if gate.compared_with else ""),
        "",
        "## Hold-out metrics",
        "",
        "| model | metric | model | baseline |",
        "| --- | --- | ---: | ---: |",
    ]
    for name in MODEL_NAMES:
        report = result.reports[name]
        for metric, value in report.metrics.items():
            base = report.baseline.get(metric, float("nan"))
            mark = " (primary)" if metric == report.primary else ""
            lines.append(f"| {name} | {metric}{mark} | {value:.4f} | {base:.4f} |")
    lines += ["", "Baselines: success = training base rate; complexity and quality = training "
              "mean; time = unconditional training quantiles; templates = training success rate "
              "of each template (popularity).", "", "## Promotion gate", ""]
    lines += [f"- {reason}" for reason in gate.reasons]
    lines += ["", "## Hyper-parameters", ""]
    lines += [f"- {name}: {msgspec.json.encode(result.reports[name].params).decode()}"
              for name in MODEL_NAMES]
    return "\n".join(lines) + "\n"


async def known_catalogs(engine: AsyncEngine, settings: Settings) -> dict[str, Catalog]:
    catalogs = await EventLog(engine).load_catalogs()
    catalogs.setdefault(settings.catalog.fingerprint, settings.catalog)
    return catalogs


async def load_log_history(engine: AsyncEngine, settings: Settings) -> History:
    return await history_from_log(engine, await known_catalogs(engine, settings))


async def train_and_register(
    engine: AsyncEngine,
    settings: Settings,
    keyring: Keyring,
    *,
    load: Callable[[], Awaitable[History]] | None = None,
    source: str = "the event log",
) -> TrainReport:
    """Train on the event log (or on what ``load`` returns), register the version and apply
    the promotion gate."""
    history = await (load_log_history(engine, settings) if load is None else load())
    logger.info("%d decisions with outcomes; training five models", len(history))
    models, result, holdout = await asyncio.to_thread(
        train_models, history, settings.catalog, settings.training)
    registry = ModelRegistry(engine)
    gate = await apply_gate(registry, keyring, models, result, holdout,
                            settings.training.promotion_tolerance)
    version = version_name(models, datetime.now(UTC))
    await registry.add(NewVersion(
        version=version, status=gate.status, data_from=result.data_from,
        data_to=result.data_to, holdout_from=result.holdout_from, n_train=result.n_train,
        n_holdout=result.n_holdout, feature_spec_hash=models.encoder.spec_hash,
        metrics=msgspec.to_builtins(result.reports), gate=gate,
        artifact=dump_models(models, keyring),
        model_card=model_card(version, result, gate, models, source),
    ))
    return TrainReport(version=version, status=gate.status, result=result, gate=gate)



async def promote_version(engine: AsyncEngine, settings: Settings, keyring: Keyring, version: str,
                          force: bool) -> tuple[bool, list[str]]:
    """Promote ``version`` if it beats the current one on the newest hold-out of the log."""
    registry = ModelRegistry(engine)
    info = await registry.info(version)
    if info is None:
        raise RegistryError(f"no model version {version!r}")
    current = await registry.current()
    if force or current is None or current.version == version:
        await registry.promote(version)
        return True, ["promoted without comparison" if force else "no other current version"]
    history = await load_log_history(engine, settings)
    if len(history) < settings.training.min_examples:
        raise RegistryError(f"the log has {len(history)} decisions with outcomes; the gate "
                            f"needs {settings.training.min_examples} (or use --force)")
    _, holdout = history.split(settings.training.holdout_fraction)
    candidate = load_models(await registry.artifact(version), keyring)
    existing = load_models(await registry.artifact(current.version), keyring)
    passed, reasons = compare(await asyncio.to_thread(evaluate, candidate, holdout),
                              await asyncio.to_thread(evaluate, existing, holdout),
                              settings.training.promotion_tolerance)
    if passed:
        await registry.promote(version, gate=GateResult(
            status=CURRENT, passed=True, reasons=reasons, compared_with=current.version))
    return passed, reasons
