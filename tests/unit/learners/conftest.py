"""Shared fixtures of the batch-model tests: one seeded history and one training run per
session (training takes seconds; several modules test the same trained version).

``search_budget_s=0`` evaluates only the first grid point: the search stops on wall-clock time,
so any positive budget would make the chosen hyper-parameters depend on the machine's speed.
One thread: on a busy machine OpenMP threads spin and training takes ten times longer.
"""

from __future__ import annotations

import pytest

from learners.batch.training import History, train_models
from learners.catalog import Catalog
from offline.dataset import history_from_rows
from offline.synthetic import generate_history
from offline.world import World
from router.settings import load_settings
from tests.support import N_ROWS, SETTINGS, Trained


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_settings("configs/default.toml", {}).catalog


@pytest.fixture(scope="session")
def history(catalog: Catalog) -> History:
    rows = generate_history(World(catalog=catalog, seed=3), N_ROWS, seed=4)
    return history_from_rows(rows, [catalog])


@pytest.fixture(scope="session")
def trained(history: History, catalog: Catalog) -> Trained:
    return train_models(history, catalog, SETTINGS)
