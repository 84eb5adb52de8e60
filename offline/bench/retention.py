"""Database size with and without retention: ``python -m offline.bench.retention``.

The service (in-process, default config, SQLite file with its writer process) routes
``--decisions`` varied requests in ``--rounds`` equal rounds and gets feedback on 80% of them
(with ~1 KB of generated code each). With retention, after each round every decision made before
the previous round is archived and deleted (a window of one round). Prints, for both runs, the
SQLite file size (after a WAL checkpoint), the decisions left in the database and the archive's
size on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from learners.reward import Verdict
from offline.bench.throughput import generate_route_bodies
from offline.progress import Bar, progress_bar
from router.public import RetentionSettings, load_settings

CODE = "def handler(request):\n    return {'status': 'ok', 'items': [1, 2, 3]}\n" * 16


class SizeReport(msgspec.Struct, frozen=True):
    retention: bool
    decisions: int
    database_bytes: int
    decisions_left: int
    archive_bytes: int
    seconds: float


async def measure(directory: Path, decisions: int, rounds: int, retention: bool,
                  progress: Bar) -> SizeReport:
    from router.public import (
        FeedbackRequest,
        RouteRequest,
        RoutingService,
        create_app,
        create_engine,
        run_retention,
    )

    path = directory / f"{'with' if retention else 'without'}.db"
    url = f"sqlite+aiosqlite:///{path}"
    settings = load_settings(None, {"ROUTER__STORAGE__URL": url})
    archive = directory / "archive"
    retention_settings = RetentionSettings(keep_days=1.0, archive_dir=str(archive))
    bodies = generate_route_bodies(decisions, seed=1)
    per_round = decisions // rounds
    started = time.perf_counter()
    app = create_app(settings)
    engine = create_engine(url)
    try:
        async with app.lifespan():
            routing: RoutingService = app.state.routing
            tenant = settings.auth.default_tenant
            previous = datetime.now(UTC)
            for r in range(rounds):
                round_start = datetime.now(UTC)
                for i in range(r * per_round, (r + 1) * per_round):
                    decision = await routing.route(
                        tenant, msgspec.convert(bodies[i], RouteRequest))
                    if i % 5:
                        await routing.feedback(tenant, FeedbackRequest(
                            decision_id=decision.decision_id,
                            outcome=Verdict.APPROVED if i % 3 else Verdict.REJECTED,
                            quality=7.0, generation_time_s=12.0, tokens=900, code=CODE))
                if retention:
                    await run_retention(engine, retention_settings,
                                        now=previous + timedelta(days=1))
                previous = round_start
                progress.advance()
    finally:
        await engine.dispose()
    seconds = time.perf_counter() - started
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        left = int(conn.execute("SELECT count(*) FROM decisions").fetchone()[0])
    archived = sum(p.stat().st_size for p in archive.rglob("*.parquet")) if retention else 0
    return SizeReport(retention=retention, decisions=per_round * rounds,
                      database_bytes=path.stat().st_size, decisions_left=left,
                      archive_bytes=archived, seconds=seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    reports = []
    with tempfile.TemporaryDirectory() as directory:
        for retention in (False, True):
            label = f"{'with' if retention else 'without'} retention: rounds"
            with progress_bar(label, args.rounds) as bar:
                reports.append(asyncio.run(measure(Path(directory), args.decisions, args.rounds,
                                                   retention, bar)))
    print(f"{'retention':<10}{'decisions':>10}{'db MB':>9}{'left':>8}{'archive MB':>12}"
          f"{'bytes/decision':>16}{'s':>7}")
    for r in reports:
        print(f"{'on' if r.retention else 'off':<10}{r.decisions:>10}"
              f"{r.database_bytes / 1e6:>9.1f}{r.decisions_left:>8}{r.archive_bytes / 1e6:>12.1f}"
              f"{r.database_bytes / r.decisions:>16.0f}{r.seconds:>7.0f}")


if __name__ == "__main__":
    main()
