"""``router export``: the event log's statistics, and its decisions as a history file.

``--out FILE`` writes every decision that has an outcome (optionally one tenant's) as a
history-file row (:mod:`offline.history_file`: JSONL, CSV or Parquet by extension), in
decision order, a page at a time; the rows are those of retention's archive files (one builder,
:func:`router.public.history_row`). The file holds what ``router import`` needs to rebuild the
decisions and outcomes, and ``router replay`` to evaluate on them: the request (task, caller
context, free-form features), the tenant, the chosen action with its propensity, the allowed
actions with the logged probability vector, and the outcome with its reward and feedback time.
Exported into a fresh database with ``router import``, the log replays to the same figures
(tests/service/test_export_round_trip.py). ``decision_id`` is the service's decision id
(for a decision that was itself imported, the id its file gave it). Not exported: decisions
without an outcome, shadow policies' probabilities and the logged feature vectors (import
recomputes the features from the rows).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from learners.catalog import Catalog
from offline.history_file import HistoryFileError, HistoryWriter
from offline.progress import progress_bar
from offline.train import add_common_options, open_engine, settings_from_args
from router.public import (
    HISTORY_COLUMNS,
    DatasetCounts,
    Decision,
    EventLog,
    HistoryRow,
    Outcome,
    SettingsError,
    UnknownCatalogError,
    catalog_action_ids,
    history_row,
)

PAGE_ROWS = 2000


async def exported_pages(engine: AsyncEngine, catalogs: dict[str, Catalog],
                         tenant_id: str | None = None, *, page_rows: int = PAGE_ROWS
                         ) -> AsyncIterator[list[HistoryRow]]:
    """Every decision with an outcome (of ``tenant_id``, or all) as history rows, in decision
    order, ``page_rows`` at a time (keyset pagination: one short query per page)."""
    action_ids = catalog_action_ids(catalogs)
    after: tuple[datetime, str] | None = None
    while True:
        conditions: list[Any] = []
        if tenant_id is not None:
            conditions.append(Decision.tenant_id == tenant_id)
        if after is not None:
            at, key = after
            conditions.append(or_(Decision.created_at > at,
                                  and_(Decision.created_at == at, Decision.id > key)))
        query = (select(*HISTORY_COLUMNS).join(Outcome, Outcome.decision_id == Decision.id)
                 .where(*conditions).order_by(Decision.created_at, Decision.id)
                 .limit(page_rows))
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return
        yield [history_row(row, action_ids) for row in rows]
        after = (rows[-1].created_at, rows[-1].id)


async def export_history(engine: AsyncEngine, path: str, tenant_id: str | None = None,
                         *, total: int | None = None) -> int:
    """Write the decisions with outcomes to the history file ``path``; returns the rows."""
    catalogs = await EventLog(engine).load_catalogs()
    written = 0
    with HistoryWriter(path) as writer, progress_bar("router export", total) as bar:
        async for page in exported_pages(engine, catalogs, tenant_id):
            await asyncio.to_thread(writer.write, page)
            written += len(page)
            bar.advance(len(page))
    return written


def format_stats(counts: DatasetCounts) -> str:
    def block(title: str, values: dict[str, int]) -> list[str]:
        return [f"{title}:", *(f"  {k:<24}{v:>10}" for k, v in sorted(values.items()))]

    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    lines = [f"decisions: {counts.decisions}", f"with outcomes: {counts.outcomes}"]
    lines += block("by task type", counts.by_task_type)
    lines += block("by outcome", counts.by_outcome)
    lines += block("by model", counts.by_model)
    lines += ["averages:", f"  success rate            {number(counts.success_rate)}",
              f"  reward                  {number(counts.reward)}",
              f"  quality                 {number(counts.quality)}",
              f"  generation time (s)     {number(counts.generation_time_s)}",
              f"  cost (USD)              {number(counts.cost_usd)}"]
    return "\n".join(lines)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", help="write the decisions with outcomes here as a history file "
                        "(.jsonl, .csv or .parquet) for router import, train --history and replay")
    parser.add_argument("--tenant", help="only this tenant's decisions")
    add_common_options(parser)


def run(args: argparse.Namespace) -> int:
    async def main() -> tuple[DatasetCounts, int]:
        settings = settings_from_args(args)
        engine = await open_engine(settings)
        try:
            counts = await EventLog(engine).dataset_counts(args.tenant)
            written = 0
            if args.out:
                written = await export_history(engine, args.out, args.tenant,
                                               total=counts.outcomes)
            return counts, written
        finally:
            await engine.dispose()

    try:
        counts, written = asyncio.run(main())
    except (SettingsError, HistoryFileError, UnknownCatalogError, OSError) as exc:
        print(f"router export: {exc}", file=sys.stderr)
        return 2
    print(format_stats(counts))
    if args.out:
        print(f"history file: {written} decisions with outcomes written to {args.out}")
    return 0
