"""Seeded simulation: the router learns from feedback (issue 2, item 10).

After 5,000 decisions on the simulated world, the mean true expected reward of the last 1,000
decisions must clearly beat uniform choice and the router's own first 1,000 decisions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from offline.simulate import simulate
from offline.world import World
from router.app import create_app
from tests.support import make_settings

pytestmark = pytest.mark.slow

MARGIN = 0.05  # about five standard errors of a 1,000-decision mean of expected rewards


async def test_router_learns_on_the_simulator(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/sim.db")
    world = World(catalog=settings.catalog, seed=11)
    async with AsyncTestClient(create_app(settings)) as client:
        report = await simulate(
            client,  # type: ignore[arg-type]
            world,
            n=5000,
            seed=11,
            profile=settings.profiles["balanced"],
            feedback_delay=5,
            request_prefix="stat",
        )
    first = sum(report.router_rewards[:1000]) / 1000
    last = sum(report.router_rewards[-1000:]) / 1000
    uniform_last = sum(report.uniform_rewards[-1000:]) / 1000
    assert last > uniform_last + MARGIN, (first, last, uniform_last)
    assert last > first + MARGIN, (first, last)
