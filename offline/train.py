"""``router train`` and ``router models``: train the five batch models, register the version,
apply the promotion gate, list / promote / roll back versions.

Promotion gate: a version becomes current only if (1) each of the five models beats its trivial
baseline on the run's time-ordered hold-out and (2) when a version is current, the new one
beats it on that same hold-out (:func:`learners.batch.training.compare`: lower success log-loss,
no other primary metric worse by more than ``training.promotion_tolerance``). A version that
passes (1) but not (2) stays a ``candidate``; one that fails (1) is ``rejected``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from learners.batch.models import BatchModels, dump_models, load_models
from learners.batch.training import (
    MODEL_NAMES,
    History,
    TrainingError,
    TrainingResult,
    compare,
    evaluate,
    train_models,
)
from offline.dataset import history_from_log, history_from_rows
from offline.history_file import HistoryFileError, HistoryRow, read_history
from router.settings import Settings, SettingsError, load_settings
from router.storage.database import create_engine, migrate
from router.storage.registry import (
    CANDIDATE,
    CURRENT,
    REJECTED,
    ModelRegistry,
    NewVersion,
    RegistryError,
    VersionInfo,
)
from router.storage.repository import EventLog


class GateResult(msgspec.Struct, frozen=True):
    status: str
    passed: bool
    reasons: list[str]
    compared_with: str | None


class TrainReport(msgspec.Struct, frozen=True):
    version: str
    status: str
    result: TrainingResult
    gate: GateResult


def _progress(message: str) -> None:
    print(f"router train: {message}", file=sys.stderr, flush=True)


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
    registry: ModelRegistry, candidate: BatchModels, result: TrainingResult, holdout: History,
    tolerance: float,
) -> GateResult:
    reasons = baseline_reasons(result)
    if not result.beats_baselines:
        return GateResult(status=REJECTED, passed=False, compared_with=None,
                          reasons=["a model does not beat its baseline", *reasons])
    current = await registry.current()
    if current is None:
        return GateResult(status=CURRENT, passed=True, compared_with=None,
                          reasons=["no current version", *reasons])
    current_models = load_models(await registry.artifact(current.version))
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


async def load_history(engine: AsyncEngine, settings: Settings, path: str | None) -> History:
    catalogs = await EventLog(engine).load_catalogs()
    catalogs.setdefault(settings.catalog.fingerprint, settings.catalog)
    if path is None:
        return await history_from_log(engine, catalogs)
    rows: list[HistoryRow] = []
    for chunk in read_history(path):
        rows.extend(chunk)
    return await asyncio.to_thread(history_from_rows, rows, list(catalogs.values()))


async def train_and_register(engine: AsyncEngine, settings: Settings,
                             history_path: str | None) -> TrainReport:
    history = await load_history(engine, settings, history_path)
    _progress(f"{len(history)} decisions with outcomes; training five models")
    models, result, holdout = await asyncio.to_thread(
        train_models, history, settings.catalog, settings.training)
    registry = ModelRegistry(engine)
    gate = await apply_gate(registry, models, result, holdout,
                            settings.training.promotion_tolerance)
    version = version_name(models, datetime.now(UTC))
    source = history_path or "the event log"
    await registry.add(NewVersion(
        version=version, status=gate.status, data_from=result.data_from,
        data_to=result.data_to, holdout_from=result.holdout_from, n_train=result.n_train,
        n_holdout=result.n_holdout, feature_spec_hash=models.encoder.spec_hash,
        metrics=msgspec.to_builtins(result.reports), gate=msgspec.to_builtins(gate),
        artifact=dump_models(models), model_card=model_card(version, result, gate, models, source),
    ))
    return TrainReport(version=version, status=gate.status, result=result, gate=gate)


def format_report(report: TrainReport) -> str:
    lines = [f"version {report.version}: {report.status}",
             f"{report.result.n_train} training / {report.result.n_holdout} hold-out decisions, "
             f"{report.result.seconds:.1f} s", "",
             f"{'model':<12}{'metric':<14}{'model':>10}{'baseline':>10}  beats"]
    for name in MODEL_NAMES:
        r = report.result.reports[name]
        lines.append(f"{name:<12}{r.primary:<14}{r.score:>10.4f}{r.baseline[r.primary]:>10.4f}"
                     f"  {'yes' if r.beats_baseline else 'NO'}")
    lines += ["", "gate:", *(f"  {reason}" for reason in report.gate.reasons)]
    return "\n".join(lines)


def format_versions(versions: list[VersionInfo]) -> str:
    if not versions:
        return "no model versions yet: run `router train`"
    lines = [f"{'version':<26}{'status':<12}{'created (UTC)':<18}{'train':>8}{'holdout':>8}"
             f"{'success AUC':>12}{'log-loss':>10}"]
    for v in versions:
        success: dict[str, Any] = v.metrics.get("success", {}).get("metrics", {})
        lines.append(f"{v.version:<26}{v.status:<12}{v.created_at:%Y-%m-%d %H:%M}  "
                     f"{v.n_train:>8}{v.n_holdout:>8}{success.get('auc', float('nan')):>12.4f}"
                     f"{success.get('log_loss', float('nan')):>10.4f}")
    return "\n".join(lines)


# --- command line ------------------------------------------------------------------------------


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config (default: configs/default.toml)")
    parser.add_argument("--database-url", help="SQLAlchemy async URL of the event log")


def _settings(args: argparse.Namespace) -> Settings:
    environ = dict(os.environ)
    if args.database_url:
        environ["ROUTER__STORAGE__URL"] = args.database_url
    return load_settings(args.config or environ.get("ROUTER_CONFIG"), environ)


def configure_train_parser(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--history", help="train from this history file (JSONL/CSV/Parquet) "
                        "instead of the event log")
    parser.add_argument("--json", dest="json_path", help="also write the report as JSON here")


def configure_models_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="models_command", required=True)
    _add_common(actions.add_parser("list", help="registered versions, oldest first"))
    promote = actions.add_parser("promote", help="make a version current (after the gate)")
    promote.add_argument("version")
    promote.add_argument("--force", action="store_true",
                         help="skip the comparison with the current version")
    _add_common(promote)
    _add_common(actions.add_parser("rollback", help="undo the newest promotion"))
    card = actions.add_parser("card", help="print a version's MODEL_CARD.md")
    card.add_argument("version")
    _add_common(card)


async def _with_engine(settings: Settings) -> AsyncEngine:
    engine = create_engine(settings.storage.url)
    await migrate(engine)
    return engine


def run_train(args: argparse.Namespace) -> int:
    async def main() -> TrainReport:
        settings = _settings(args)
        engine = await _with_engine(settings)
        try:
            return await train_and_register(engine, settings, args.history)
        finally:
            await engine.dispose()

    try:
        report = asyncio.run(main())
    except (SettingsError, TrainingError, HistoryFileError) as exc:
        print(f"router train: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json_path:
        with open(args.json_path, "wb") as handle:
            handle.write(msgspec.json.format(msgspec.json.encode(report)))
    return 0


async def promote_version(engine: AsyncEngine, settings: Settings, version: str,
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
    history = await load_history(engine, settings, None)
    if len(history) < settings.training.min_examples:
        raise RegistryError(f"the log has {len(history)} decisions with outcomes; the gate "
                            f"needs {settings.training.min_examples} (or use --force)")
    _, holdout = history.split(settings.training.holdout_fraction)
    candidate = load_models(await registry.artifact(version))
    existing = load_models(await registry.artifact(current.version))
    passed, reasons = compare(await asyncio.to_thread(evaluate, candidate, holdout),
                              await asyncio.to_thread(evaluate, existing, holdout),
                              settings.training.promotion_tolerance)
    if passed:
        await registry.promote(version, gate={"status": CURRENT, "passed": True,
                                              "reasons": reasons,
                                              "compared_with": current.version})
    return passed, reasons


def run_models(args: argparse.Namespace) -> int:
    async def main() -> int:
        settings = _settings(args)
        engine = await _with_engine(settings)
        registry = ModelRegistry(engine)
        try:
            match args.models_command:
                case "list":
                    print(format_versions(await registry.versions()))
                case "card":
                    print(await registry.model_card(args.version), end="")
                case "rollback":
                    info = await registry.rollback()
                    print(f"current version is now {info.version}")
                case "promote":
                    passed, reasons = await promote_version(engine, settings, args.version,
                                                            args.force)
                    print("\n".join(reasons))
                    if not passed:
                        print(f"refused: {args.version} does not beat the current version")
                        return 1
                    print(f"current version is now {args.version}")
        finally:
            await engine.dispose()
        return 0

    try:
        return asyncio.run(main())
    except (SettingsError, RegistryError) as exc:
        print(f"router models: {exc}", file=sys.stderr)
        return 2
