"""The event log as a replay source: decisions with outcomes, in decision order, in chunks.

The estimators run synchronously (in a worker thread); each chunk is one keyset-paginated query
run on the caller's event loop, so a database log needs no more memory than a file does.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator, Sequence
from datetime import datetime

import numpy as np
from sqlalchemy.ext.asyncio import AsyncEngine

from learners.catalog import Catalog
from offline.history_file import CHUNK_ROWS
from offline.replay.context import RowContext
from offline.replay.log import ActionSpace, LogChunk, LogError
from offline.replay.queries import ReplayDecision, ReplayWindow, logged_decisions


class DatabaseLog:
    """Decisions with an outcome in ``window``; ``space`` is every catalog's actions."""

    def __init__(self, engine: AsyncEngine, catalogs: dict[str, Catalog], *,
                 loop: asyncio.AbstractEventLoop, window: ReplayWindow | None = None,
                 chunk_rows: int = CHUNK_ROWS) -> None:
        self.engine = engine
        self.catalogs = catalogs
        self.loop = loop
        self.window = window or ReplayWindow()
        self.chunk_rows = chunk_rows
        ids: list[str] = []
        seen: set[str] = set()
        for catalog in catalogs.values():
            for action in catalog.actions:
                if action.id not in seen:
                    seen.add(action.id)
                    ids.append(action.id)
        self.action_ids: Sequence[str] = ids
        self._space = ActionSpace(ids)

    @property
    def name(self) -> str:
        return f"event log ({self.engine.url.render_as_string(hide_password=True)})"

    def chunks(self) -> Iterator[LogChunk]:
        after: tuple[datetime, str] | None = None
        row = 0
        while True:
            page = asyncio.run_coroutine_threadsafe(
                logged_decisions(self.engine, self.window, after=after, limit=self.chunk_rows),
                self.loop).result()
            if not page:
                return
            yield self._chunk(page, row)
            row += len(page)
            after = (page[-1].created_at, page[-1].id)

    def _chunk(self, page: list[ReplayDecision], first_row: int) -> LogChunk:
        n, width = len(page), len(self._space)
        logged = np.zeros((n, width))
        allowed = np.zeros((n, width), dtype=bool)
        # `router import` logs no vector (only the chosen action's propensity is known).
        known = np.zeros(n, dtype=bool)
        contexts: list[RowContext] = []
        for i, decision in enumerate(page):
            catalog = self.catalogs.get(decision.catalog_fingerprint)
            if catalog is None:
                raise LogError(f"decision {decision.id}: unknown catalog "
                               f"{decision.catalog_fingerprint}")
            ids = [catalog.actions[k].id for k in decision.allowed]
            positions = self._space.index(np.asarray(ids, dtype=object))
            allowed[i, positions] = True
            if len(decision.probabilities) == len(ids):
                logged[i, positions] = decision.probabilities
                known[i] = True
            if not (0.0 < decision.propensity <= 1.0 and math.isfinite(decision.reward)):
                raise LogError(f"decision {decision.id}: propensity {decision.propensity} or "
                               f"reward {decision.reward} cannot be evaluated")
            stored = decision.features
            contexts.append(RowContext(catalog=catalog, allowed=decision.allowed,
                                       features=stored.context_features(),
                                       record=stored.record, history=stored.history,
                                       shadows=decision.shadow_probabilities,
                                       tenant_id=decision.tenant_id, logged=decision))
        return LogChunk(
            rows=np.arange(first_row + 1, first_row + n + 1, dtype=np.int64),
            actions=np.asarray([d.chosen_action for d in page], dtype=object),
            propensity=np.asarray([d.propensity for d in page], dtype=np.float64),
            reward=np.asarray([d.reward for d in page], dtype=np.float64),
            timestamp=np.asarray([d.created_at.timestamp() for d in page], dtype=np.float64),
            logged=logged if known.any() else None, allowed=allowed, contexts=contexts,
            logged_known=None if known.all() or not known.any() else known)
