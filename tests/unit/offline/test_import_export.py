"""router import / export on a SQLite event log."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from offline.history_file import HistoryFileError, write_history
from offline.import_export import import_history
from offline.synthetic import generate_history
from offline.world import World
from router.settings import Settings
from router.storage.database import create_engine, migrate
from router.storage.history import history_from_log
from router.storage.repository import EventLog
from tests.support import make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(f"sqlite+aiosqlite:///{tmp_path}/log.db")


async def test_import_is_idempotent_and_feeds_the_log(settings: Settings, tmp_path: Path) -> None:
    rows = generate_history(World(catalog=settings.catalog, seed=2), 300, seed=2)
    path = tmp_path / "history.csv"
    write_history(path, rows)
    engine = create_engine(settings.storage.url)
    try:
        await migrate(engine)
        first = await import_history(engine, settings, str(path))
        again = await import_history(engine, settings, str(path))
        assert (first.imported, first.duplicates) == (300, 0)
        assert (again.imported, again.duplicates) == (0, 300)
        log = EventLog(engine)
        counts = await log.dataset_counts(None)
        assert counts.outcomes == 300
        # Each tenant's decision count (GET /v1/stats) includes its imported decisions, once.
        tenants = sorted({r.tenant for r in rows})
        assert [await log.tenant_decisions(t) for t in tenants] == [
            sum(r.tenant == t for r in rows) for t in tenants]
        assert sum(counts.by_outcome.values()) == 300
        assert counts.by_outcome["approved"] == sum(r.outcome.value == "approved" for r in rows)
        events = await log.learn_events_after(0, 1000)
        assert [e.seq for e in events] == list(range(1, 301))
        assert all(e.facts is not None for e in events)
        history = await history_from_log(engine, await log.load_catalogs())
        assert len(history) == 300
    finally:
        await engine.dispose()


async def test_import_refuses_actions_outside_the_catalog(settings: Settings,
                                                          tmp_path: Path) -> None:
    rows = generate_history(World(catalog=settings.catalog, seed=2), 5, seed=2)
    bad = [msgspec.structs.replace(rows[0], action="gpt-unknown|0.2|plain"), *rows[1:]]
    path = tmp_path / "history.jsonl"
    write_history(path, bad)
    engine = create_engine(settings.storage.url)
    try:
        await migrate(engine)
        with pytest.raises(HistoryFileError, match="gpt-unknown"):
            await import_history(engine, settings, str(path))
        assert (await EventLog(engine).dataset_counts(None)).decisions == 0
    finally:
        await engine.dispose()
