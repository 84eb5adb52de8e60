"""Retention: old decisions and outcomes move to Parquet and leave the database, without
changing what a restarted learner knows (router/storage/retention.py)."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import delete, func, insert, select

from offline.history_file import read_history, write_history
from offline.synthetic import generate_history
from offline.world import World
from router.app import create_app
from router.cli import main
from router.settings import RetentionSettings, Settings
from router.storage import retention
from router.storage.archive import UNANSWERED, archive_files, archived_ids
from router.storage.database import create_engine
from router.storage.models import Checkpoint, Decision, Outcome
from router.storage.retention import fold_horizon, run_retention
from tests.support import TEST_SECRET, make_settings

# Checkpoints only at shutdown, so each test decides which outcomes they cover.
NO_PERIODIC_CHECKPOINT = {
    "ROUTER__LEARNING__CHECKPOINT_EVERY_OUTCOMES": "100000",
    "ROUTER__LEARNING__CHECKPOINT_EVERY_S": "100000",
}


@pytest.fixture
def twin_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database of the same kind as ``database_url``."""
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path}/twin.db"
        return
    import asyncpg

    base, _, name = database_url.rpartition("/")
    twin = f"{name}_twin"
    admin = f"{base.replace('postgresql+asyncpg://', 'postgresql://')}/{name}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{twin}"'))
    try:
        yield f"{base}/{twin}"
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{twin}" WITH (FORCE)'))


def route_body(step: int) -> dict[str, Any]:
    rng = random.Random(step)
    return {
        "request_id": f"r-{step}",
        "task": {"type": rng.choice(["backend", "frontend", "data"]),
                 "language": rng.choice(["python", "typescript", "go"]),
                 "description": f"Implement feature {step} with caching and retries",
                 "requirements": ["tests"] if step % 3 else []},
        "context": {"project_id": f"p{step % 3}", "agent": "implementation",
                    "rag": {"examples": step % 4, "avg_similarity": 0.5}},
    }


def feedback_body(decision: dict[str, Any]) -> dict[str, Any]:
    good = decision["model"] in {"code-specialist", "frontier-large"}
    return {"decision_id": decision["decision_id"],
            "outcome": "approved" if good else "rejected",
            "quality": 8.5 if good else 3.0, "generation_time_s": 12.0, "tokens": 900}


async def serve(settings: Settings, steps: range, *, answer: bool = True,
                every: int = 1) -> list[str]:
    """Route ``steps`` and post feedback on every ``every``-th; returns the answered ids."""
    answered = []
    async with AsyncTestClient(create_app(settings)) as client:
        for step in steps:
            decision = (await client.post("/v1/route", json=route_body(step))).json()
            if answer and step % every == 0:
                response = await client.post("/v1/feedback", json=feedback_body(decision))
                assert response.status_code == 200, response.text
                answered.append(decision["decision_id"])
    return answered


async def probe(settings: Settings) -> list[list[float]]:
    out = []
    async with AsyncTestClient(create_app(settings)) as client:
        for i in range(6):
            body = route_body(1000 + i) | {"request_id": f"probe-{i}"}
            decision = (await client.post("/v1/route", json=body)).json()
            view = (await client.get(f"/v1/decisions/{decision['decision_id']}")).json()
            out.append(view["probabilities"])
    return out


async def table_ids(url: str) -> tuple[set[str], set[str], int]:
    """(decision ids, decision ids with an outcome, highest outcome seq) in the database."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            decisions = set((await conn.scalars(select(Decision.id))).all())
            answered = set((await conn.scalars(select(Outcome.decision_id))).all())
            top = int(await conn.scalar(select(func.max(Outcome.seq))) or 0)
    finally:
        await engine.dispose()
    return decisions, answered, top


async def retain(url: str, archive: Path, now: datetime) -> retention.RetentionReport:
    engine = create_engine(url)
    try:
        return await run_retention(
            engine, RetentionSettings(keep_days=1.0, archive_dir=str(archive), batch_rows=7),
            now=now + timedelta(days=1))
    finally:
        await engine.dispose()


def archived_rows(archive: Path) -> list[str]:
    return [row.decision_id or "" for chunk in read_history(archive) for row in chunk]


def unanswered_rows(archive: Path) -> list[str]:
    return [i for path in archive_files(archive / UNANSWERED) for i in archived_ids(path)]


async def test_old_rows_move_to_parquet_and_leave_the_database(
        database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, **NO_PERIODIC_CHECKPOINT)
    archive = tmp_path / "archive"
    old_answered = await serve(settings, range(30), every=2)
    old_all, _, _ = await table_ids(database_url)
    middle = datetime.now(UTC)
    recent_answered = await serve(settings, range(30, 40), every=2)

    report = await retain(database_url, archive, middle)

    decisions, answered, top = await table_ids(database_url)
    assert report.archived_outcomes == 15
    assert report.archived_unanswered == 15
    assert sorted(archived_rows(archive)) == sorted(old_answered)
    assert sorted(unanswered_rows(archive)) == sorted(old_all - set(old_answered))
    assert decisions.isdisjoint(old_all)  # every old decision left the database ...
    assert answered == set(recent_answered)  # ... the recent ones stayed
    assert len(decisions) == 10
    assert top == 20
    # Archive rows are history rows: outcome, reward and the request's context came along.
    rows = [row for chunk in read_history(archive) for row in chunk]
    assert {row.outcome.value for row in rows} <= {"approved", "rejected"}
    assert all(row.reward is not None and row.project_id and row.propensity for row in rows)
    assert any(row.requirements == ["tests"] for row in rows)

    # Re-running changes nothing.
    files = sorted(p.name for p in archive.rglob("*.parquet"))
    again = await retain(database_url, archive, middle)
    assert (again.archived_outcomes, again.archived_unanswered) == (0, 0)
    assert sorted(p.name for p in archive.rglob("*.parquet")) == files
    assert await table_ids(database_url) == (decisions, answered, top)

    # Everything old now; the checkpoint covers all 20 outcomes: the newest one still stays.
    final = await retain(database_url, archive, datetime.now(UTC))
    decisions, answered, top = await table_ids(database_url)
    assert final.horizon_seq == 19
    assert top == 20
    assert len(answered) == 1
    assert decisions == answered
    assert sorted(archived_rows(archive)) == sorted(set(old_answered + recent_answered) - answered)


async def test_an_archive_file_holds_the_rows_router_export_writes(
        database_url: str, tmp_path: Path) -> None:
    """Free-form features, allowed actions and probabilities, tenant and outcome: an archived
    decision reads back as its exported row; the unanswered files have the same columns."""
    import pyarrow.parquet as pq

    settings = make_settings(database_url, **NO_PERIODIC_CHECKPOINT)
    async with AsyncTestClient(create_app(settings)) as client:
        for step in range(16):
            body = route_body(step) | {"features": {"repo_files": float(10 * step),
                                                    "tier": "gold" if step % 2 else "free"}}
            if step % 3 == 0:
                body["constraints"] = {"temperatures": [0.2]}
            decision = (await client.post("/v1/route", json=body)).json()
            if step % 4 != 3:
                response = await client.post("/v1/feedback", json=feedback_body(decision))
                assert response.status_code == 200, response.text
    exported = tmp_path / "export.parquet"
    assert await asyncio.to_thread(main, ["export", "--database-url", database_url,
                                          "--out", str(exported)]) == 0
    archive = tmp_path / "archive"

    report = await retain(database_url, archive, datetime.now(UTC))

    _, kept, _ = await table_ids(database_url)
    assert (report.archived_outcomes, report.archived_unanswered, len(kept)) == (11, 4, 1)
    archived = [row for chunk in read_history(archive) for row in chunk]
    export = [row for chunk in read_history(exported) for row in chunk]
    assert archived == [row for row in export if row.decision_id not in kept]
    assert all(row.features and row.probabilities and row.tenant for row in archived)
    assert min(len(row.allowed) for row in archived) < max(len(row.allowed) for row in archived)
    columns = pq.read_schema(exported).names
    files = archive_files(archive) + archive_files(archive / UNANSWERED)
    assert len(files) == 3  # seven rows a file
    assert all(pq.read_schema(path).names == columns for path in files)
    unanswered = [row for path in archive_files(archive / UNANSWERED)
                  for row in pq.read_table(path).to_pylist()]
    outcome_columns = ("outcome", "quality", "generation_time_s", "cost_usd", "tokens",
                       "regenerations", "code", "complexity", "reward", "feedback_timestamp")
    assert len(unanswered) == 4
    assert all(row[name] is None for row in unanswered for name in outcome_columns)
    assert all(row["features"] and row["allowed"] and row["probabilities"]
               for row in unanswered)


async def test_imported_decisions_keep_their_file_ids_through_an_interrupted_run(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An imported decision is archived under the id its file gave it, and the run after a
    crash still finds it in the database by its own key (no row archived twice)."""
    settings = make_settings(database_url, **NO_PERIODIC_CHECKPOINT)
    rows = generate_history(World(catalog=settings.catalog, seed=3), 30, seed=3)
    write_history(tmp_path / "history.jsonl", rows)
    assert await asyncio.to_thread(main, ["import", str(tmp_path / "history.jsonl"),
                                          "--database-url", database_url]) == 0
    await serve(settings, range(0))  # folds the imported outcomes; checkpoint at shutdown
    archive = tmp_path / "archive"

    await crash_after_archiving(database_url, archive, monkeypatch)
    await retain(database_url, archive, datetime.now(UTC))

    archived = archived_rows(archive)
    assert len(archived) == len(set(archived)) == 29
    assert set(archived) < {row.decision_id for row in rows}
    assert len((await table_ids(database_url))[0]) == 1


async def test_restart_after_retention_learns_the_same_as_without(
        database_url: str, twin_url: str, tmp_path: Path) -> None:
    """Outcomes newer than the newest checkpoint stay; a restart folds them onto it and reaches
    the state of a twin that never archived."""
    states = []
    for url, archived in ((database_url, True), (twin_url, False)):
        settings = make_settings(url, **NO_PERIODIC_CHECKPOINT)
        await serve(settings, range(12))  # shutdown checkpoint at seq 12
        await serve(settings, range(12, 24))  # its checkpoint at 24 is lost (as in a crash):
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(delete(Checkpoint).where(Checkpoint.last_seq == 24))
        finally:
            await engine.dispose()
        if archived:
            report = await retain(url, tmp_path / "archive", datetime.now(UTC))
            assert report.horizon_seq == 12
            assert report.archived_outcomes == 12
            decisions, answered, _ = await table_ids(url)
            assert len(decisions) == len(answered) == 12
        states.append(await probe(settings))
    assert states[0] == states[1]
    assert any(len(set(p)) > 1 for p in states[0])  # the probe sees learning


async def crash_after_archiving(database_url: str, archive: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A retention run that dies after writing its first archive file, before deleting."""
    async def crash(*_: object) -> int:
        raise RuntimeError("killed between archiving and deleting")

    with monkeypatch.context() as patch:
        patch.setattr(retention, "delete_archived", crash)
        with pytest.raises(RuntimeError):
            await retain(database_url, archive, datetime.now(UTC))


async def test_an_interrupted_run_is_finished_without_duplicates(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(database_url, **NO_PERIODIC_CHECKPOINT)
    answered = await serve(settings, range(20))
    archive = tmp_path / "archive"

    await crash_after_archiving(database_url, archive, monkeypatch)
    assert len(archive_files(archive)) == 1
    assert len((await table_ids(database_url))[0]) == 20  # written, not yet deleted

    await retain(database_url, archive, datetime.now(UTC))
    assert sorted(archived_rows(archive)) == sorted(answered[:-1])  # each row once
    assert (await table_ids(database_url))[1] == {answered[-1]}


async def test_no_checkpoint_no_outcome_deleted(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, **NO_PERIODIC_CHECKPOINT)
    await serve(settings, range(6), every=2)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(delete(Checkpoint))
    finally:
        await engine.dispose()
    report = await retain(database_url, tmp_path / "archive", datetime.now(UTC))
    assert report.horizon_seq == 0
    assert (report.archived_outcomes, report.archived_unanswered) == (0, 3)
    decisions, answered, _ = await table_ids(database_url)
    assert len(answered) == 3
    assert decisions == answered


async def test_the_horizon_is_the_oldest_newest_checkpoint_of_the_learners_in_use(
        tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/router.db"
    await serve(make_settings(url, **NO_PERIODIC_CHECKPOINT), range(10))
    now = datetime.now(UTC)
    engine = create_engine(url)

    async def checkpoints(*rows: tuple[str, int, datetime]) -> int:
        async with engine.begin() as conn:
            await conn.execute(delete(Checkpoint))
            for learner, seq, at in rows:
                await conn.execute(insert(Checkpoint).values(
                    learner=learner, last_seq=seq, state=b"", created_at=at))
        return await fold_horizon(engine, now - timedelta(days=30))

    old = now - timedelta(days=40)
    try:
        # A configuration last checkpointed before the window is no longer in use.
        assert await checkpoints(("stale", 2, old), ("a:t1", 5, now), ("a:t1", 8, now),
                                 ("b:t2", 6, now)) == 6
        # None in use: the most recently checkpointed one counts.
        assert await checkpoints(("stale", 2, old - timedelta(days=1)), ("a", 7, old)) == 7
        # Never the newest outcome.
        assert await checkpoints(("a", 10, now)) == 9
    finally:
        await engine.dispose()


async def test_train_and_replay_read_the_archive(database_url: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    url = database_url
    # The commands below read the environment: on PostgreSQL `router train` needs the secret.
    monkeypatch.setenv("ROUTER__SECURITY__SECRET", TEST_SECRET)
    settings = make_settings(url, **NO_PERIODIC_CHECKPOINT)
    rows = generate_history(World(catalog=settings.catalog, seed=5), 700, seed=5)
    write_history(tmp_path / "history.csv", rows)
    archive = tmp_path / "archive"
    base = ["--database-url", url]
    assert await asyncio.to_thread(main, ["import", str(tmp_path / "history.csv"), *base]) == 0
    await serve(settings, range(0))  # folds the imported outcomes; checkpoint at shutdown
    code = await asyncio.to_thread(main, ["retention", "run", *base, "--keep-days", "1",
                                          "--archive-dir", str(archive)])
    assert code == 0
    assert len(archived_rows(archive)) == 699
    assert len((await table_ids(url))[0]) == 1

    replayed = tmp_path / "replay.json"
    code = await asyncio.to_thread(main, ["replay", str(archive), "--policy", "logged",
                                          "--bootstrap", "0", "--quiet", "--json",
                                          str(replayed)])
    assert code == 0
    assert json.loads(replayed.read_text())["n"] == 699

    for key, value in {"SEARCH_BUDGET_S": "0", "MAX_TREES": "30", "THREADS": "1"}.items():
        monkeypatch.setenv(f"ROUTER__TRAINING__{key}", value)
    trained = tmp_path / "train.json"
    code = await asyncio.to_thread(main, ["train", "--history", str(archive), *base,
                                          "--json", str(trained)])
    assert code == 0
    result = json.loads(trained.read_text())["result"]
    assert result["n_train"] + result["n_holdout"] == 699


def database_bytes(path: Path) -> int:
    """The database's logical size (pages in use or free, WAL included): unlike the files'
    sizes it does not depend on when the last WAL checkpoint ran."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int(pages) * int(page_size)


@pytest.mark.slow
async def test_sqlite_file_stops_growing_with_retention(tmp_path: Path) -> None:
    """Write and retention in turns: freed pages are reused, so the file size levels off."""
    path = tmp_path / "router.db"
    url = f"sqlite+aiosqlite:///{path}"
    settings = make_settings(url, ROUTER__LEARNING__CHECKPOINT_EVERY_OUTCOMES="20")
    sizes, rounds, per_round = [], 10, 60
    engine = create_engine(url)
    retention_settings = RetentionSettings(keep_days=1.0, archive_dir=str(tmp_path / "a"))
    try:
        async with AsyncTestClient(create_app(settings)) as client:
            previous = datetime.now(UTC)
            for r in range(rounds):
                started = datetime.now(UTC)
                for step in range(r * per_round, (r + 1) * per_round):
                    decision = (await client.post("/v1/route", json=route_body(step))).json()
                    await client.post("/v1/feedback", json=feedback_body(decision))
                # Keep the last round: everything decided before it goes.
                await run_retention(engine, retention_settings,
                                    now=previous + timedelta(days=1))
                previous = started
                sizes.append(database_bytes(path))
            async with engine.connect() as conn:
                kept = int(await conn.scalar(select(func.count()).select_from(Decision)) or 0)
    finally:
        await engine.dispose()
    assert kept <= 2 * per_round
    assert len(archived_rows(tmp_path / "a")) == rounds * per_round - kept
    assert sizes[-1] <= 1.2 * sizes[3], sizes


async def test_the_service_archives_periodically_when_enabled(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/router.db"
    archive = tmp_path / "archive"
    settings = make_settings(
        url, ROUTER__RETENTION__ENABLED="true", ROUTER__RETENTION__KEEP_DAYS="0.00001",
        ROUTER__RETENTION__INTERVAL_S="1", ROUTER__RETENTION__ARCHIVE_DIR=str(archive),
        ROUTER__LEARNING__CHECKPOINT_EVERY_OUTCOMES="4")
    async with AsyncTestClient(create_app(settings)) as client:
        for step in range(12):
            decision = (await client.post("/v1/route", json=route_body(step))).json()
            await client.post("/v1/feedback", json=feedback_body(decision))
        for _ in range(100):  # keep_days is 0.86 s: the next runs take all but the newest
            if archive_files(archive) and len(archived_rows(archive)) == 11:
                break
            await asyncio.sleep(0.1)
        assert len(archived_rows(archive)) == 11
        ready = (await client.get("/ready")).json()  # counts rows: the newest one is left
        assert (ready["learned_outcomes"], ready["log_outcomes"], ready["behind_outcomes"]) == (
            1, 1, 0
        )


async def test_runs_on_one_archive_take_turns(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/router.db"
    answered = await serve(make_settings(url, **NO_PERIODIC_CHECKPOINT), range(10))
    archive = tmp_path / "archive"
    first, second = await asyncio.gather(*(retain(url, archive, datetime.now(UTC))
                                           for _ in range(2)))
    assert sorted([first.skipped, second.skipped]) == [False, True]
    assert sorted(archived_rows(archive)) == sorted(answered[:-1])
