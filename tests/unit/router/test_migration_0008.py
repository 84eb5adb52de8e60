"""Migration 0008: outcome numbers are 64-bit on PostgreSQL (SQLite's rowid already is)."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, insert, text

from router.storage.database import MIGRATIONS, create_engine, migrate
from router.storage.models import CatalogVersion
from router.storage.repository import EventLog
from tests.unit.router.test_writer_process import decision_row, outcome_row

BEYOND_32_BITS = 2**31 + 7


def _downgrade_to_0007(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.downgrade(config, "0007")


async def test_outcome_numbers_past_32_bits_are_stored_and_learned_from(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    log = EventLog(engine)
    try:
        await migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(insert(CatalogVersion).values(
                fingerprint="fp", catalog=b"{}", created_at=datetime.now(UTC)))
            if engine.dialect.name == "postgresql":
                await conn.execute(text(f"SELECT setval('outcomes_seq_seq', {BEYOND_32_BITS})"))
        await log.insert_decisions([decision_row("old", learner_seq=BEYOND_32_BITS)])
        if engine.dialect.name == "sqlite":  # the next rowid follows the highest number
            async with engine.begin() as conn:
                await conn.execute(text(
                    "INSERT INTO outcomes (seq, decision_id, tenant_id, created_at, verdict, "
                    f"regenerations, reward, reward_source) VALUES ({BEYOND_32_BITS}, 'old', "
                    "'t1', '2026-12-06', 'approved', 0, 1.0, 'explicit')"))
        await log.insert_decisions([decision_row("new", learner_seq=BEYOND_32_BITS)])
        seq = await log.insert_outcome(outcome_row("new"))
        assert seq == BEYOND_32_BITS + 1
        assert [e.seq for e in await log.learn_events_after(BEYOND_32_BITS)] == [seq]
        await log.save_checkpoint("learner", seq, b"state", keep=2)
        assert await log.latest_checkpoint("learner") == (seq, b"state")
        if engine.dialect.name == "sqlite":  # still the rowid: INTEGER PRIMARY KEY
            async with engine.connect() as conn:
                columns = {r[1]: (r[2], r[5]) for r in await conn.execute(
                    text("PRAGMA table_info(outcomes)"))}
            assert columns["seq"] == ("INTEGER", 1)
    finally:
        await log.aclose()
        await engine.dispose()


async def test_the_downgrade_returns_to_32_bit_columns(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    query = text(
        "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
        "WHERE (table_name, column_name) IN (('outcomes', 'seq'), ('checkpoints', 'last_seq'), "
        "('decisions', 'learner_seq')) UNION ALL "
        "SELECT sequencename, data_type::text FROM pg_sequences WHERE sequencename = "
        "'outcomes_seq_seq'"
    )
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            upgraded = {str(k): str(v) for k, v in await conn.execute(query)}
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade_to_0007)
        async with engine.connect() as conn:
            downgraded = {str(k): str(v) for k, v in await conn.execute(query)}
    finally:
        await engine.dispose()
    names = ["outcomes.seq", "checkpoints.last_seq", "decisions.learner_seq", "outcomes_seq_seq"]
    assert upgraded == dict.fromkeys(names, "bigint")
    assert downgraded == dict.fromkeys(names, "integer")
