"""When the fold may pass over a missing outcome number (docs/decisions/outcome-sequence-holes.md).

PostgreSQL hands out ``outcomes.seq`` before commit, so a read can show outcome ``e`` while a
lower number is missing: either a transaction holding it is still running, or none ever will
commit it (a rollback, a crash, a duplicate that met the unique constraint). The transaction
holding a missing number below ``e`` took it before ``e`` was taken, so before the read that first
showed ``e``. A moment (``settle_s``) later it has a transaction id, below the ``xmax`` of any
horizon taken from then on; once a horizon's ``xmin`` reaches that ``xmax`` it has ended, and a
read after that horizon shows its outcome if it committed. ``timeout_s`` is the last resort for a
horizon held back by some unrelated long transaction.

SQLite numbers rows when they are written, one writer at a time: a missing number there is a
deleted row, never one still to come.
"""

from __future__ import annotations

import logging
from collections import deque

import msgspec

from router.storage.repository import Horizon

logger = logging.getLogger(__name__)

MAX_SIGHTINGS = 1000


class Sighting(msgspec.Struct, frozen=True):
    """One read of the log: the highest number it showed, when, and the horizon before it."""

    seen_upto: int
    horizon_at: float
    visible_at: float
    xmax: int


class GapPolicy:
    """Remembers the recent reads of the log and says whether a gap can be passed over.

    Parameters
    ----------
    settle_s
        Time for a transaction between taking a number and getting a transaction id (the two
        steps of one INSERT).
    timeout_s
        Pass a gap over after this long even when the horizon has not moved past it.
    """

    def __init__(self, *, settle_s: float, timeout_s: float) -> None:
        self.settle_s = settle_s
        self.timeout_s = timeout_s
        self._sightings: deque[Sighting] = deque(maxlen=MAX_SIGHTINGS)

    def observe(self, sighting: Sighting) -> None:
        """Record a read whose horizon was taken before it."""
        self._sightings.append(sighting)

    def forget_upto(self, seq: int) -> None:
        """Drop reads that showed nothing above ``seq`` (no later gap can have been seen in
        them)."""
        while self._sightings and self._sightings[0].seen_upto <= seq:
            self._sightings.popleft()

    def passable(self, next_seq: int, horizon: Horizon | None, now: float) -> bool:
        """Whether the numbers missing below the committed outcome ``next_seq`` will never be
        committed, judged on ``horizon`` (taken before the read that showed ``next_seq``;
        None: SQLite)."""
        if horizon is None:
            return True
        first = next((s for s in self._sightings if s.seen_upto >= next_seq), None)
        if first is None:
            return False
        if now - first.visible_at >= self.timeout_s:
            logger.warning(
                "passing over missing outcome numbers below %d after %.0f s: a transaction "
                "older than them is still running", next_seq, self.timeout_s,
            )
            return True
        settled = first.visible_at + self.settle_s
        later = next((s for s in self._sightings if s.horizon_at >= settled), None)
        return later is not None and horizon.xmin >= later.xmax
