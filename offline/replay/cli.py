"""``router replay``: estimate target policies' values from a log file or the event log.

Examples::

    router replay log.parquet --policy uniform --policy fixed:frontier-large|0.2|plain
    router replay --database-url sqlite+aiosqlite:///router.db --policy bandit \\
        --policy batch-greedy --json out.json --html out.html
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from offline.plots import plots_unavailable
from offline.progress import progress_bar
from offline.replay.errors import ReplayError
from offline.replay.estimators import EstimatorOptions
from offline.replay.evaluate import Progress, ReplayReport, evaluate
from offline.replay.log import FileLog, LogSource
from offline.replay.policies import TargetPolicy
from offline.replay.report import format_table, write_json
from offline.replay.targets import TargetSpec, needs_context, parse_target

if TYPE_CHECKING:
    from router.public import Settings

POLICY_HELP = (
    "target policy (repeatable; default: logged and uniform): logged | uniform | "
    "fixed:<action> | probs:<file> (per-row probabilities, one column per action) | "
    "bandit (the current online bandit checkpoint) | bandit:<checkpoint id> | "
    "batch-greedy | batch-greedy:<version> (argmax of the batch models' predicted reward) | "
    "vw:ips | vw:dr | vw:mtr (VW cb_adf trained on the first --train-share of the log, "
    "every policy then evaluated on the rest) | shadow:<name> (a shadow policy's logged "
    "probabilities)")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from offline.train import add_common_options

    parser.add_argument("log", nargs="?", help="log file (JSONL, CSV or Parquet); without it "
                        "the event log of --database-url / the config is replayed")
    add_common_options(parser)
    parser.add_argument("--policy", action="append", dest="policies", metavar="SPEC",
                        help=POLICY_HELP)
    parser.add_argument("--clip", type=float, help="cap importance weights at this value")
    parser.add_argument("--switch-tau", type=float, default=100.0,
                        help="Switch-DR threshold on the importance weight (default 100)")
    parser.add_argument("--bootstrap", type=int, default=200,
                        help="Poisson-bootstrap replicates (0: analytic intervals only)")
    parser.add_argument("--level", type=float, default=0.95, help="confidence level")
    add_support_option(parser)
    parser.add_argument("--seed", type=int, default=0, help="seeds the bootstrap and VW")
    parser.add_argument("--chunk-rows", type=int, default=50_000,
                        help="rows per chunk (bounds memory)")
    parser.add_argument("--train-share", type=float, default=0.5,
                        help="vw:* policies: share of the log (oldest rows) to train on")
    parser.add_argument("--since", help="event log: first decision time (ISO 8601)")
    parser.add_argument("--until", help="event log: decisions strictly before (ISO 8601)")
    parser.add_argument("--tenant", help="event log: only this tenant's decisions")
    parser.add_argument("--json", dest="json_path", help="write the estimates as JSON here")
    parser.add_argument("--html", dest="html_path", help="write an HTML report with plots here")
    parser.add_argument("--context", action="store_true",
                        help="read LOG as a history file (docs/learning.md) with the "
                        "config's catalog: uniform then means uniform over each row's allowed "
                        "actions (implied by bandit, batch-greedy and vw:*)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ReplayError(f"{option}: {text!r} is not an ISO 8601 time") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def add_support_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--min-support", type=int, default=1, metavar="N",
                        help="an action the log chose fewer than N times is unsupported: the "
                        "target's mass on it widens every interval over the whole reward "
                        "range (default 1: actions never chosen)")


def reward_range(settings: Settings | None) -> tuple[float, float]:
    """The rewards' range: the bandit config's [min_reward, max_reward], else [0, 1]."""
    if settings is None:
        return (0.0, 1.0)
    return (settings.bandit.min_reward, settings.bandit.max_reward)


def options_from_args(args: argparse.Namespace, settings: Settings | None = None
                      ) -> EstimatorOptions:
    return EstimatorOptions(clip=args.clip, switch_tau=args.switch_tau,
                            bootstrap=args.bootstrap, level=args.level, seed=args.seed,
                            reward_range=reward_range(settings), min_support=args.min_support)


def run(args: argparse.Namespace) -> int:
    if args.html_path and (reason := plots_unavailable()):
        print(f"router replay: --html: {reason}", file=sys.stderr)
        return 2
    try:
        with progress_bar("router replay", enabled=not args.quiet) as bar:
            report = asyncio.run(_main(args, bar.report))
    except ReplayError as exc:
        print(f"router replay: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from learners.sealed import SealError
        from offline.history_file import HistoryFileError
        from router.public import RegistryError, SettingsError, StorageUnavailableError

        if isinstance(exc, SettingsError | RegistryError | HistoryFileError | SealError |
                      StorageUnavailableError):
            print(f"router replay: {exc}", file=sys.stderr)
            return 2
        raise
    print(format_table(report))
    if args.json_path:
        write_json(report, args.json_path)
        print(f"\nJSON: {args.json_path}")
    if args.html_path:
        from offline.replay.html import write_html

        write_html(report, args.html_path)
        print(f"HTML report: {args.html_path}")
    return 0


async def _main(args: argparse.Namespace, progress: Progress) -> ReplayReport:
    import os

    from offline.train import settings_from_args

    specs = [parse_target(text) for text in (args.policies or ["logged", "uniform"])]
    if args.log is not None and not args.context and not needs_context(specs):
        # A log file needs no config; one named gives the reward range.
        configured = args.config or os.environ.get("ROUTER_CONFIG")
        options = options_from_args(args, settings_from_args(args) if configured else None)
        source: LogSource = FileLog(args.log, chunk_rows=args.chunk_rows)
        policies = [spec.build_simple() for spec in specs]
        return await asyncio.to_thread(evaluate, source, policies, options, progress=progress)
    return await _with_database(args, specs, progress)


async def _with_database(args: argparse.Namespace, specs: list[TargetSpec],
                         progress: Progress) -> ReplayReport:
    from offline.replay.event_log import DatabaseLog
    from offline.replay.queries import ReplayWindow
    from offline.replay.targets import build_targets, split_for_training
    from offline.train import open_engine, settings_from_args
    from router.public import EventLog

    settings = settings_from_args(args)
    options = options_from_args(args, settings)
    engine = await open_engine(settings)
    try:
        catalogs = await EventLog(engine).load_catalogs()
        source: LogSource
        known = None
        window = None
        if args.log is not None:
            source = FileLog(args.log, chunk_rows=args.chunk_rows, catalog=settings.catalog)
            known = [action.id for action in settings.catalog.actions]
        else:
            window = ReplayWindow(since=parse_time(args.since, "--since"),
                                  until=parse_time(args.until, "--until"), tenant_id=args.tenant)
            db_source = DatabaseLog(engine, catalogs, loop=asyncio.get_running_loop(),
                                    window=window, chunk_rows=args.chunk_rows)
            source, known = db_source, list(db_source.action_ids)
        policies: list[TargetPolicy] = await build_targets(
            specs, engine=engine, settings=settings, catalogs=catalogs, seed=args.seed,
            window=window)
        if any(s.kind == "vw" for s in specs):
            source, policies = await asyncio.to_thread(
                split_for_training, source, policies, args.train_share)
        return await asyncio.to_thread(evaluate, source, policies, options,
                                       known_actions=known, progress=progress)
    finally:
        await engine.dispose()
