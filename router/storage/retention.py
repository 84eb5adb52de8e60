"""Retention: archive decisions older than the window to Parquet, then delete them.

The online learners are folds over ``outcomes.seq`` restored from checkpoints (DESIGN.md rule 2),
so an outcome may leave the database only when every learner in use has a checkpoint that
includes it: the *horizon* is the smallest newest ``last_seq`` among the learners (checkpoint
``learner`` names) with a checkpoint newer than the window, or of the learner with the newest
checkpoint when none is that recent; no checkpoint, no outcome is deleted. The outcome with the
highest ``seq`` always stays (SQLite would hand its number out again).

A decision older than the window goes with its outcome when the outcome is within the horizon,
and alone when it never got one (feedback later than the window is answered 404). Each batch is
written to an archive file as the rows ``router export`` writes (the allowed actions named by
the event log's catalogs) and fsynced first (:mod:`router.storage.archive`), then deleted in one
short transaction; a run that died in between is finished by the next run, which deletes the
newest file's rows first (deleting is idempotent), so nothing is lost and nothing archived twice.
One run at a time per archive directory (an exclusive ``flock`` on ``<archive_dir>/.lock``).

SQLite keeps the freed pages in its freelist and reuses them for new rows, so the file stops
growing at about the window's size; it shrinks only by ``VACUUM`` (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import Row, and_, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from router.settings import RetentionSettings
from router.storage.archive import UNANSWERED, archive_files, archived_ids, write_archive
from router.storage.history_rows import HISTORY_COLUMNS, catalog_action_ids, history_row
from router.storage.log_queries import read_catalogs
from router.storage.models import Checkpoint, Decision, Outcome
from router.storage.repository import as_utc

logger = logging.getLogger(__name__)


class RetentionReport(msgspec.Struct, frozen=True):
    """What one run did; ``skipped`` when another run held the archive directory."""

    cutoff: datetime
    horizon_seq: int
    archived_outcomes: int = 0
    archived_unanswered: int = 0
    files: list[str] = []
    skipped: bool = False


async def fold_horizon(engine: AsyncEngine, cutoff: datetime) -> int:
    """The highest outcome ``seq`` that may leave the database (0: none)."""
    async with engine.connect() as conn:
        newest = (await conn.execute(
            select(Checkpoint.learner, func.max(Checkpoint.last_seq),
                   func.max(Checkpoint.created_at)).group_by(Checkpoint.learner))).all()
        max_seq = int(await conn.scalar(select(func.max(Outcome.seq))) or 0)
    if not newest:
        return 0
    latest = [(int(seq), as_utc(at)) for _, seq, at in newest]
    in_use = [seq for seq, at in latest if at >= cutoff]
    if not in_use:
        in_use = [max(latest, key=lambda pair: pair[1])[0]]
    return max(0, min(min(in_use), max_seq - 1))


async def _select_batch(engine: AsyncEngine, *, cutoff: datetime, horizon: int,
                        answered: bool, after: tuple[datetime, str] | None,
                        limit: int) -> list[Row[Any]]:
    conditions: list[Any] = [Decision.created_at < cutoff]
    if answered:
        conditions.append(Outcome.seq <= horizon)
    else:
        conditions.append(Outcome.seq.is_(None))
    if after is not None:
        at, key = after
        conditions.append(or_(Decision.created_at > at,
                              and_(Decision.created_at == at, Decision.id > key)))
    query = (select(*HISTORY_COLUMNS, Outcome.seq)
             .join(Outcome, Outcome.decision_id == Decision.id, isouter=not answered)
             .where(*conditions).order_by(Decision.created_at, Decision.id).limit(limit))
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


def _write_batch(directory: Path, rows: Sequence[Row[Any]],
                 action_ids: Mapping[str, Sequence[str]]) -> Path:
    """Rows of :func:`_select_batch` as the next archive file (runs in a worker thread)."""
    seqs = [int(row.seq) for row in rows if row.seq is not None]
    return write_archive(directory, [history_row(row, action_ids) for row in rows],
                         [str(row.id) for row in rows], as_utc(rows[0].created_at),
                         as_utc(rows[-1].created_at), (min(seqs), max(seqs)) if seqs else None)


async def delete_archived(engine: AsyncEngine, ids: Sequence[str], horizon: int) -> int:
    """Delete the decisions ``ids`` and their outcomes within ``horizon``, in one transaction;
    a decision whose outcome lies beyond the horizon stays. Returns the decisions deleted."""
    async with engine.begin() as conn:
        await conn.execute(delete(Outcome).where(Outcome.decision_id.in_(ids),
                                                 Outcome.seq <= horizon))
        result = await conn.execute(delete(Decision).where(
            Decision.id.in_(ids), ~exists().where(Outcome.decision_id == Decision.id)))
    return int(result.rowcount or 0)


@contextlib.contextmanager
def _exclusive(directory: Path) -> Iterator[bool]:
    with (directory / ".lock").open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


async def run_retention(engine: AsyncEngine, settings: RetentionSettings, *,
                        now: datetime | None = None) -> RetentionReport:
    """Archive and delete every decision older than ``settings.keep_days`` that may go."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=settings.keep_days)
    root = Path(settings.archive_dir)
    directories = {True: root, False: root / UNANSWERED}
    for directory in directories.values():
        directory.mkdir(parents=True, exist_ok=True)
    with _exclusive(root) as locked:
        horizon = await fold_horizon(engine, cutoff)
        if not locked:
            return RetentionReport(cutoff=cutoff, horizon_seq=horizon, skipped=True)
        for directory in directories.values():  # finish a run that died after writing a file
            files = archive_files(directory)
            if files:
                ids = await asyncio.to_thread(archived_ids, files[-1])
                await _delete_in_batches(engine, ids, horizon, settings.batch_rows)
        async with engine.connect() as conn:
            action_ids = catalog_action_ids(await read_catalogs(conn))
        counts = {True: 0, False: 0}
        written: list[str] = []
        for answered, directory in directories.items():
            after: tuple[datetime, str] | None = None
            while True:
                rows = await _select_batch(engine, cutoff=cutoff, horizon=horizon,
                                           answered=answered, after=after,
                                           limit=settings.batch_rows)
                if not rows:
                    break
                path = await asyncio.to_thread(_write_batch, directory, rows, action_ids)
                await delete_archived(engine, [str(row.id) for row in rows], horizon)
                counts[answered] += len(rows)
                written.append(str(path))
                after = (as_utc(rows[-1].created_at), str(rows[-1].id))
    return RetentionReport(cutoff=cutoff, horizon_seq=horizon, archived_outcomes=counts[True],
                           archived_unanswered=counts[False], files=written)


async def _delete_in_batches(engine: AsyncEngine, ids: list[str], horizon: int,
                             size: int) -> None:
    for start in range(0, len(ids), size):
        await delete_archived(engine, ids[start:start + size], horizon)


async def retain_forever(engine: AsyncEngine, settings: RetentionSettings) -> None:
    """Background task of the service: one run every ``settings.interval_s``."""
    while True:
        try:
            report = await run_retention(engine, settings)
            if report.files:
                logger.info("retention: archived %d decisions with outcomes and %d without "
                            "into %d files", report.archived_outcomes,
                            report.archived_unanswered, len(report.files))
        except Exception:
            logger.exception("retention run failed; retrying in %.0f s", settings.interval_s)
        await asyncio.sleep(settings.interval_s)
