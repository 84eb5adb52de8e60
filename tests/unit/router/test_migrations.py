"""The newest schema: decision indexes, and queries by tenant still served by an index."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from router.storage.database import MIGRATIONS, create_engine, migrate


async def test_decisions_have_no_single_column_tenant_index_but_tenant_queries_use_one(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/log.db")
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            indexes = {row[1] for row in await conn.execute(text("PRAGMA index_list(decisions)"))}
            assert "ix_decisions_tenant_id" not in indexes
            assert {"ix_decisions_project", "ix_decisions_created_at"} <= indexes
            for query in (
                "SELECT id FROM decisions WHERE tenant_id = 't' ORDER BY created_at",
                "SELECT count(*) FROM decisions WHERE tenant_id = 't' AND project_id = 'p'",
                "SELECT id FROM decisions WHERE id = 'd' AND tenant_id = 't'",
            ):
                plan = " ".join(
                    row[3] for row in await conn.execute(text(f"EXPLAIN QUERY PLAN {query}"))
                )
                assert "USING" in plan, (query, plan)
                assert "INDEX" in plan, (query, plan)
    finally:
        await engine.dispose()


async def test_the_downgrade_restores_the_tenant_index(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/log.db")
    try:
        await migrate(engine)

        def downgrade(connection: object) -> None:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, "0003")

        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
        async with engine.connect() as conn:
            indexes = {row[1] for row in await conn.execute(text("PRAGMA index_list(decisions)"))}
        assert "ix_decisions_tenant_id" in indexes
    finally:
        await engine.dispose()
