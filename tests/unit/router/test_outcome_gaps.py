"""When a missing outcome number may be passed over (router/services/outcome_gaps.py)."""

from __future__ import annotations

from router.services.outcome_gaps import GapPolicy, Sighting
from router.storage.repository import Horizon


def policy() -> GapPolicy:
    return GapPolicy(settle_s=0.2, timeout_s=30.0)


def test_sqlite_gaps_pass_at_once() -> None:
    assert policy().passable(7, None, now=0.0)


def test_a_gap_waits_for_a_horizon_taken_after_the_settle_time() -> None:
    gaps = policy()
    # Outcome 7 first seen at t=1.0 with 5 missing; nothing was running then (xmin == xmax), but
    # the holder of 5 may have had its number and no transaction id yet.
    gaps.observe(Sighting(seen_upto=7, horizon_at=0.99, visible_at=1.0, xmax=100))
    assert not gaps.passable(7, Horizon(xmin=100, xmax=100), now=1.0)
    # 0.25 s later transaction 104 is running (it may hold 5): wait.
    gaps.observe(Sighting(seen_upto=8, horizon_at=1.25, visible_at=1.26, xmax=105))
    assert not gaps.passable(7, Horizon(xmin=104, xmax=105), now=1.26)
    # Once every transaction below 105 has ended, 5 will never be committed.
    gaps.observe(Sighting(seen_upto=8, horizon_at=1.5, visible_at=1.51, xmax=109))
    assert gaps.passable(7, Horizon(xmin=105, xmax=109), now=1.51)


def test_a_gap_held_back_by_a_long_transaction_passes_after_the_timeout() -> None:
    gaps = policy()
    gaps.observe(Sighting(seen_upto=7, horizon_at=0.0, visible_at=0.0, xmax=100))
    gaps.observe(Sighting(seen_upto=7, horizon_at=1.0, visible_at=1.0, xmax=120))
    assert not gaps.passable(7, Horizon(xmin=50, xmax=130), now=29.0)
    assert gaps.passable(7, Horizon(xmin=50, xmax=130), now=30.0)


def test_reads_that_showed_nothing_new_are_forgotten() -> None:
    gaps = policy()
    gaps.observe(Sighting(seen_upto=7, horizon_at=0.0, visible_at=0.0, xmax=100))
    gaps.forget_upto(7)
    gaps.observe(Sighting(seen_upto=9, horizon_at=5.0, visible_at=5.0, xmax=200))
    # 9 was first seen at t=5.0, not at t=0.0: not yet settled.
    assert not gaps.passable(9, Horizon(xmin=200, xmax=200), now=5.0)
