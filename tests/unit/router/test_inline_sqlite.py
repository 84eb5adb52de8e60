"""Decision commits on the loop's thread: same rows as the ORM, fallbacks, checkpoints."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import insert, select, text

from learners.decision import StoredFeatures
from router.storage import inline_sqlite
from router.storage.database import create_engine, migrate
from router.storage.models import CatalogVersion, Decision
from router.storage.repository import DuplicateKeyError, EventLog


def decision_row(decision_id: str, **changes: Any) -> dict[str, Any]:
    """A decision row with every kind of column the route path writes."""
    row: dict[str, Any] = {
        "id": decision_id,
        "tenant_id": "t1",
        "request_id": None,
        "request_hash": "ab" * 32,
        "created_at": datetime(2026, 11, 22, 3, 4, 5, 678901, tzinfo=UTC),
        "catalog_fingerprint": "fp",
        "objective": "balanced",
        "request": msgspec.Raw(b'{"task":{"type":"bugfix","description":"x \\u00e9"}}'),
        "features": StoredFeatures(
            namespaces={"t": {"type=bugfix": 1.0}}, complexity=0.25, prior_time_s=3.5
        ),
        "project_id": "p1",
        "task_type": "bugfix",
        "language": "python",
        "model": "m1",
        "allowed": [0, 1, 2],
        "probabilities": [0.1, 0.2000000000000001, 0.7],
        "chosen_action": "m1|0.2|plain",
        "chosen_position": 2,
        "propensity": 0.7,
        "explored": False,
        "policy_name": "p",
        "policy_version": "v",
        "model_versions": {"batch": None, "online": "v"},
        "learner_seq": 0,
        "shadow_probabilities": None,
        "response": {"decision_id": decision_id, "nested": {"x": [1, 2.5, None]}},
    }
    row.update(changes)
    return row


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[EventLog]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/log.db")
    await migrate(engine)
    async with engine.begin() as conn:
        await conn.execute(insert(CatalogVersion).values(
            fingerprint="fp", catalog=b"{}", created_at=datetime.now(UTC)))
    event_log = EventLog(engine)
    try:
        yield event_log
    finally:
        event_log.close()
        await engine.dispose()


def wal_restarts(wal_path: Path) -> int:
    """How many times SQLite has started the WAL over: the checkpoint sequence number of its
    header (bytes 12-15, big-endian), which each restart increments."""
    with wal_path.open("rb") as wal:
        return int.from_bytes(wal.read(32)[12:16], "big")


async def stored_ids(log: EventLog) -> list[str]:
    async with log.engine.connect() as conn:
        return list((await conn.execute(select(Decision.id).order_by(Decision.id))).scalars())


async def test_inline_rows_read_back_exactly_like_orm_inserts(log: EventLog) -> None:
    async with log.engine.begin() as conn:
        await conn.execute(insert(Decision), [decision_row("orm")])
    await log.insert_decisions([decision_row("inline")])
    assert log.inline is not None
    assert log.inline.writes == 1

    async with log.engine.connect() as conn:
        rows = {
            row["id"]: {k: v for k, v in row.items() if k != "id"}
            for row in (await conn.execute(select(Decision))).mappings()
        }
        # The stored text too, not only what SQLAlchemy makes of it.
        raw = {
            row[0]: row[1:]
            for row in await conn.execute(
                text("SELECT id, created_at, request, features, explored, probabilities "
                     "FROM decisions")
            )
        }
    orm_response = rows["orm"].pop("response")
    inline_response = rows["inline"].pop("response")
    assert rows["orm"] == rows["inline"]
    assert orm_response == {"decision_id": "orm", "nested": {"x": [1, 2.5, None]}}
    assert inline_response == {"decision_id": "inline", "nested": {"x": [1, 2.5, None]}}
    assert raw["orm"] == raw["inline"]
    assert await log.get_decision("t1", "inline") is not None
    assert log.inline.reads == 1


def outcome_values(decision_id: str) -> dict[str, Any]:
    return {
        "decision_id": decision_id, "tenant_id": "t1", "created_at": datetime.now(UTC),
        "verdict": "approved", "quality": 8.0, "generation_time_s": 1.5, "cost_usd": 0.01,
        "tokens": 100, "regenerations": 0, "code": None, "reward": 0.8,
        "reward_source": "explicit", "complexity": None, "code_metrics": {"lines": 3},
    }


async def check_outcomes_in_sequence(log: EventLog) -> None:
    """Two decisions, their outcomes numbered 1 and 2, a second outcome refused, one read back
    (four write transactions, the refused one writing nothing, and one point read); shared with
    the writer process's tests."""
    await log.insert_decisions([decision_row("a"), decision_row("b")])
    assert await log.insert_outcome(outcome_values("a")) == 1
    assert await log.insert_outcome(outcome_values("b")) == 2
    with pytest.raises(DuplicateKeyError):
        await log.insert_outcome(outcome_values("a"))
    stored = await log.get_outcome("b")
    assert stored is not None
    assert (stored.seq, stored.reward, stored.tokens) == (2, 0.8, 100)
    assert [event.seq for event in await log.learn_events_after(0)] == [1, 2]


async def check_a_duplicate_rolls_back_its_batch(log: EventLog) -> None:
    """A batch holding a taken id keeps nothing, and the next batch commits (shared too)."""
    await log.insert_decisions([decision_row("a")])
    with pytest.raises(DuplicateKeyError):
        await log.insert_decisions([decision_row("b"), decision_row("a")])
    assert await stored_ids(log) == ["a"]
    await log.insert_decisions([decision_row("c")])
    assert await stored_ids(log) == ["a", "c"]


async def test_outcomes_commit_and_read_on_the_loop_thread_in_sequence(log: EventLog) -> None:
    await check_outcomes_in_sequence(log)
    assert log.inline is not None
    assert (log.inline.writes, log.inline.reads, log.inline.busy) == (4, 1, 0)


async def test_a_duplicate_rolls_back_the_whole_inline_batch(log: EventLog) -> None:
    await check_a_duplicate_rolls_back_its_batch(log)


async def test_another_process_writing_sends_the_batch_to_the_writer_thread(
    log: EventLog, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "log.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # holds SQLite's write lock, as another worker would
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    try:
        await log.insert_decisions([decision_row("waited")])
    finally:
        release.join()
        other.close()
    assert log.inline is not None
    assert (log.inline.busy, log.inline.writes) == (1, 0)
    assert await stored_ids(log) == ["waited"]


async def test_a_writer_of_this_process_in_flight_is_waited_for_then_the_batch_commits_inline(
    log: EventLog,
) -> None:
    assert log._write_lock is not None
    async with log._write_lock:
        pending = [
            asyncio.create_task(log.insert_decisions([decision_row(f"queued{i}")]))
            for i in range(3)
        ]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in pending)  # they queue behind the lock
    await asyncio.gather(*pending)
    assert log.inline is not None
    assert (log.inline.writes, log.inline.busy) == (3, 0)
    assert await stored_ids(log) == ["queued0", "queued1", "queued2"]


async def test_checkpoints_run_in_their_own_thread(
    log: EventLog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(inline_sqlite, "CHECKPOINT_EVERY", 3)
    assert log.inline is not None
    for i in range(3):
        await log.insert_decisions([decision_row(f"d{i}")])
    await log.inline.wait_checkpoint()
    assert log.inline.checkpoints == 1
    # The loop's connection itself never checkpoints.
    assert log.inline._connection is not None
    pages = log.inline._connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert pages == 0
    # Everything was copied into the database file: a reader of the file alone sees it.
    with sqlite3.connect(tmp_path / "log.db") as reader:
        busy, wal_pages, copied = reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0
    assert wal_pages == copied


async def test_under_a_steady_stream_of_commits_checkpoints_copy_the_whole_wal(
    log: EventLog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Writers that never pause: each checkpoint still copies the whole WAL (its last pass
    holds them back), so the WAL starts over instead of growing with every commit."""
    monkeypatch.setattr(inline_sqlite, "CHECKPOINT_EVERY", 8)
    assert log.inline is not None
    namespaces = {f"ns{k}": {f"feature{j}": j / 7 for j in range(40)} for k in range(8)}
    wal_path = tmp_path / "log.db-wal"
    marks = [4, 16]  # checkpoints after which the WAL's size is noted
    sizes: list[tuple[int, int, int]] = []
    done = asyncio.Event()
    batches = 0

    async def writer(name: str) -> None:
        nonlocal batches
        i = 0
        while not done.is_set():
            rows = [decision_row(f"{name}-{i}-{k}", features=StoredFeatures(
                namespaces=namespaces, complexity=0.5, prior_time_s=1.0)) for k in range(8)]
            await log.insert_decisions(rows)
            batches += 1
            i += 1
            assert log.inline is not None
            if marks and log.inline.checkpoints >= marks[0]:
                marks.pop(0)
                sizes.append((batches, wal_path.stat().st_size, wal_restarts(wal_path)))
                if not marks:
                    done.set()
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(writer(f"w{n}")) for n in range(3)]
    await done.wait()
    await asyncio.gather(*tasks)
    await log.inline.wait_checkpoint()
    assert log.inline.complete_checkpoints == log.inline.checkpoints >= 16
    (batches_then, _, restarts_then), (batches_now, _, restarts_now) = sizes
    assert batches_now > 2 * batches_then
    # The WAL started over at most of the 12 checkpoints between the two marks (with passive
    # checkpoints alone it never does, and grows with every commit). Its file size is not the
    # measure: one slow fsync lets more commits into a cycle, and the file keeps that extent.
    assert restarts_now - restarts_then >= 6, sizes


async def test_closing_cancels_a_checkpoint_waiting_for_the_writers(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline_sqlite, "CHECKPOINT_EVERY", 1)
    assert log.inline is not None
    inline = log.inline

    def incomplete(connection: object) -> inline_sqlite.CheckpointResult:
        return inline_sqlite.CheckpointResult(busy=0, wal_frames=10, copied=5)

    monkeypatch.setattr(inline_sqlite, "checkpoint_pass", incomplete)
    async with log._write_lock:  # type: ignore[union-attr]
        inline.run(lambda conn: None, write=True)  # schedules the passes
        await asyncio.sleep(0.05)  # the first pass is done; the second waits for the lock
        assert inline._checkpoint is not None
        assert not inline._checkpoint.done()
        log.close()
        await asyncio.sleep(0)
    assert inline._checkpoint.cancelled()
