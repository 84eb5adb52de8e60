"""``router train`` and ``router models``: train the five batch models from the event log or a
history file, register the version through the promotion gate
(:mod:`router.services.promotion`), list / promote / roll back versions, print model cards."""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from learners.batch.training import (
    MODEL_NAMES,
    History,
    TrainingError,
)
from learners.sealed import Keyring, SealError
from offline.dataset import history_from_rows
from offline.history_file import HistoryFileError, HistoryRow, read_history
from offline.progress import Bar, progress_bar
from router.public import (
    ModelRegistry,
    RegistryError,
    Settings,
    SettingsError,
    TrainReport,
    VersionInfo,
    create_engine,
    known_catalogs,
    load_keyring,
    load_log_history,
    load_settings,
    migrate,
    promote_version,
    train_and_register,
)


async def load_file_history(engine: AsyncEngine, settings: Settings, path: str,
                            progress: Bar | None = None) -> History:
    catalogs = await known_catalogs(engine, settings)
    rows: list[HistoryRow] = []
    for chunk in read_history(path):
        rows.extend(chunk)
        if progress is not None:
            progress.advance(len(chunk))
    # Each tenant's history features count its own outcomes, as the service logs them.
    return await asyncio.to_thread(functools.partial(
        history_from_rows, rows, list(catalogs.values()),
        shared=settings.learning.share_across_tenants))


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
        report = v.metrics.get("success")
        success = {} if report is None else report.metrics
        lines.append(f"{v.version:<26}{v.status:<12}{v.created_at:%Y-%m-%d %H:%M}  "
                     f"{v.n_train:>8}{v.n_holdout:>8}{success.get('auc', float('nan')):>12.4f}"
                     f"{success.get('log_loss', float('nan')):>10.4f}")
    return "\n".join(lines)


# --- command line ------------------------------------------------------------------------------


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config (default: configs/default.toml)")
    parser.add_argument("--database-url", help="SQLAlchemy async URL of the event log")


def settings_from_args(args: argparse.Namespace) -> Settings:
    environ = dict(os.environ)
    if args.database_url:
        environ["ROUTER__STORAGE__URL"] = args.database_url
    return load_settings(args.config or environ.get("ROUTER_CONFIG"), environ)


def configure_train_parser(parser: argparse.ArgumentParser) -> None:
    add_common_options(parser)
    parser.add_argument("--history", help="train from this history file (JSONL/CSV/Parquet) "
                        "instead of the event log")
    parser.add_argument("--json", dest="json_path", help="also write the report as JSON here")


def configure_models_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="models_command", required=True)
    add_common_options(actions.add_parser("list", help="registered versions, oldest first"))
    promote = actions.add_parser("promote", help="make a version current (after the gate)")
    promote.add_argument("version")
    promote.add_argument("--force", action="store_true",
                         help="skip the comparison with the current version")
    add_common_options(promote)
    add_common_options(actions.add_parser("rollback", help="undo the newest promotion"))
    add_common_options(actions.add_parser(
        "reseal", help="seal every artifact with the current server secret (before dropping a "
        "previous one)"))
    card = actions.add_parser("card", help="print a version's MODEL_CARD.md")
    card.add_argument("version")
    add_common_options(card)


async def open_engine(settings: Settings) -> AsyncEngine:
    engine = create_engine(settings.storage.url)
    await migrate(engine)
    return engine


def run_train(args: argparse.Namespace) -> int:
    async def main() -> TrainReport:
        settings = settings_from_args(args)
        engine = await open_engine(settings)
        try:
            keyring = load_keyring(settings)
            with progress_bar("router train: reading the history") as bar:

                async def load() -> History:
                    # Training itself reports no progress: the bar then shows the elapsed time.
                    history = await (load_log_history(engine, settings) if args.history is None
                                     else load_file_history(engine, settings, args.history, bar))
                    bar.stage(f"router train: five models on {len(history)} decisions", None)
                    return history

                return await train_and_register(engine, settings, keyring, load=load,
                                                source=args.history or "the event log")
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


async def reseal(registry: ModelRegistry, keyring: Keyring) -> int:
    """Re-seal each artifact that a previous server secret sealed with the current one; the
    payload is verified and copied, never decoded. Returns 1 if an artifact is refused."""
    refused = 0
    for info in await registry.versions():
        blob = await registry.artifact(info.version)
        try:
            sealed = keyring.seal(keyring.unseal(blob))
        except SealError as exc:
            refused += 1
            print(f"{info.version}: refused ({exc}); left as it is")
            continue
        if sealed != blob:  # sealing is deterministic: equal bytes are sealed already
            await registry.replace_artifact(info.version, sealed)
            print(f"{info.version}: resealed with the current secret")
    return 1 if refused else 0


def run_models(args: argparse.Namespace) -> int:
    async def main() -> int:
        settings = settings_from_args(args)
        engine = await open_engine(settings)
        registry = ModelRegistry(engine)
        try:
            match args.models_command:
                case "list":
                    print(format_versions(await registry.versions()))
                case "card":
                    print(await registry.model_card(args.version), end="")
                case "reseal":
                    return await reseal(registry, load_keyring(settings))
                case "rollback":
                    info = await registry.rollback()
                    print(f"current version is now {info.version}")
                case "promote":
                    passed, reasons = await promote_version(
                        engine, settings, load_keyring(settings), args.version, args.force)
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
    except (SettingsError, RegistryError, SealError) as exc:
        print(f"router models: {exc}", file=sys.stderr)
        return 2
