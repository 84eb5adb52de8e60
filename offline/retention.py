"""``router retention run``: archive decisions older than ``[retention] keep_days`` to Parquet
and delete them from the event log, once (router/storage/retention.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec

from offline.train import add_common_options, open_engine, settings_from_args
from router.public import RetentionReport, SettingsError, UnknownCatalogError, run_retention


def configure_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="retention_command", required=True)
    run = actions.add_parser("run", help="archive and delete what is older than the window, once")
    add_common_options(run)
    run.add_argument("--keep-days", type=float,
                     help="keep decisions younger than this (default from [retention])")
    run.add_argument("--archive-dir", help="write archive files here (default from [retention])")


def run(args: argparse.Namespace) -> int:
    if args.keep_days is not None and not args.keep_days > 0:
        print("router retention: --keep-days must be above 0", file=sys.stderr)
        return 2

    async def main() -> RetentionReport:
        settings = settings_from_args(args)
        retention = settings.retention
        if args.keep_days is not None:
            retention = msgspec.structs.replace(retention, keep_days=args.keep_days)
        if args.archive_dir:
            retention = msgspec.structs.replace(retention, archive_dir=args.archive_dir)
        engine = await open_engine(settings)
        try:
            return await run_retention(engine, retention)
        finally:
            await engine.dispose()

    try:
        report = asyncio.run(main())
    except (SettingsError, UnknownCatalogError, OSError) as exc:
        print(f"router retention: {exc}", file=sys.stderr)
        return 2
    if report.skipped:
        print("router retention: another run holds the archive directory; nothing done",
              file=sys.stderr)
        return 1
    print(f"decisions before {report.cutoff.isoformat()}: {report.archived_outcomes} with "
          f"outcomes and {report.archived_unanswered} without archived and deleted; outcomes "
          f"up to seq {report.horizon_seq} may leave the database")
    for path in report.files:
        print(f"  {path}")
    return 0
