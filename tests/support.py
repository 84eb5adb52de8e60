"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from learners.batch.models import BatchModels
from learners.batch.settings import TrainSettings
from learners.batch.training import History, TrainingResult
from learners.catalog import Catalog
from learners.drift import DriftAlarm
from learners.features import ContextFeatures
from learners.policy import LearnEvent, OnlinePolicy
from learners.reward import Verdict
from learners.sealed import Keyring
from offline.bench.realdata.data import RealData
from offline.replay.log import ActionSpace, LogChunk, LogSource, LogSummary
from offline.replay.policies import TargetProbabilities, chosen_of
from router.settings import Settings, load_settings

TEST_SECRET = "test-server-secret-0123456789abcdef"
TEST_KEYRING = Keyring(TEST_SECRET.encode())


def collapse_model(policy: OnlinePolicy, catalog: Catalog, model: str, *, seed: int = 0,
                   outcomes: int = 6000) -> list[DriftAlarm]:
    """Fold outcomes of ``model``'s first action into ``policy``, approved 80% of the time,
    then 20%, until its success stream raises a drift alarm; the alarms raised."""
    action = next(a for a in catalog.actions if a.model.name == model)
    features = ContextFeatures(namespaces={"task": {"type=backend": 1.0}}, complexity=5.0)
    rng = np.random.default_rng(seed)
    raised: list[DriftAlarm] = []
    for seq in range(1, outcomes + 1):
        approved = rng.random() < (0.8 if seq <= outcomes // 4 else 0.2)
        raised += policy.learn(LearnEvent(
            seq=seq, catalog_fingerprint=catalog.fingerprint, features=features,
            allowed=[action.index], chosen_position=0, propensity=1.0,
            reward=1.0 if approved else 0.0,
            verdict=Verdict.APPROVED if approved else Verdict.REJECTED, quality=None,
            generation_time_s=None, prior_time_s=10.0))
        if any(alarm.stream == "success" for alarm in raised):
            return raised
    raise AssertionError(f"no success alarm for {model} after {outcomes} outcomes")


def make_settings(database_url: str, **environ: str) -> Settings:
    """Default-config settings on ``database_url`` with extra ``ROUTER__...`` overrides.

    A SQLite file keeps its server secret in a file beside it (created on first start); other
    databases need it from the environment, so they get ``TEST_SECRET``.
    """
    env = {"ROUTER__STORAGE__URL": database_url, **environ}
    if not database_url.startswith("sqlite"):
        env.setdefault("ROUTER__SECURITY__SECRET", TEST_SECRET)
    return load_settings(None, env)


class RunsShell:
    """Unpickling this calls ``os.system(command)``: what a forged database row would hold."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (self.command,)


def evil_pickle(marker: Path) -> bytes:
    """A pickle that creates ``marker`` when it is loaded."""
    return pickle.dumps(RunsShell(f"touch {marker}"))


async def insert_forged_version(settings: Settings, marker: Path) -> None:
    """Write a current model version named ``forged`` straight into the registry, its artifact
    an unsealed envelope around :func:`evil_pickle` (what someone who can write the database
    could plant)."""
    from router.storage.database import create_engine
    from router.storage.registry import CURRENT, ModelRegistry, NewVersion

    forged = msgspec.msgpack.encode({"format": "adaptive-router-batch-models/1",
                                     "payload": evil_pickle(marker)})
    engine = create_engine(settings.storage.url)
    try:
        now = datetime.now(UTC)
        await ModelRegistry(engine).add(NewVersion(
            version="forged", status=CURRENT, data_from=now, data_to=now, holdout_from=now,
            n_train=1, n_holdout=1, feature_spec_hash="x", metrics={}, gate=None,
            artifact=forged, model_card="forged\n"))
    finally:
        await engine.dispose()


# --- batch models (fixtures in tests/unit/learners/conftest.py) ---

# search_budget_s=0: only the first grid point, so the chosen hyper-parameters never depend on
# the machine's speed; one thread: on a busy machine OpenMP threads spin.
SETTINGS = TrainSettings(search_budget_s=0, max_trees=60, threads=1)
N_ROWS = 6000

Trained = tuple[BatchModels, TrainingResult, History]


def holdout_matrix(models: BatchModels, holdout: History, catalog: Catalog, rows: int
                   ) -> npt.NDArray[np.float64]:
    """Every allowed catalog action for the first ``rows`` hold-out contexts, stacked."""
    blocks = [
        models.encoder.matrix(example.context, example.history, catalog,
                              catalog.indices_for_language(example.context.language))
        for example in holdout.examples[:rows]
    ]
    return np.vstack(blocks)


def sample_code_prompts(code: RealData, *, train: int = 60, test: int = 30) -> RealData:
    """A fixed random sample of ``train`` train and ``test`` test prompts of ``code``."""
    rng = np.random.default_rng(0)
    splits = np.array(code.splits)
    keep = np.zeros(len(code), dtype=np.bool_)
    keep[rng.choice(np.flatnonzero(splits == "train"), train, replace=False)] = True
    keep[rng.choice(np.flatnonzero(splits == "test"), test, replace=False)] = True
    return code.select(keep)


class MatrixPolicy:
    """Per-row probabilities given as a matrix aligned with the log."""

    def __init__(self, name: str, matrix: np.ndarray, ids: Sequence[str]) -> None:
        self.name, self.matrix, self.ids = name, matrix, list(ids)
        self._row = 0

    def actions(self) -> Sequence[str]:
        return self.ids

    def prepare(self, space: ActionSpace, summary: LogSummary, source: LogSource) -> None:
        self._columns = space.index(np.asarray(self.ids, dtype=object))

    def start(self) -> None:
        self._row = 0

    def probabilities(self, chunk: LogChunk, space: ActionSpace) -> TargetProbabilities:
        block = self.matrix[self._row:self._row + len(chunk)]
        self._row += len(chunk)
        matrix = np.zeros((len(chunk), len(space)))
        matrix[:, self._columns] = block
        return TargetProbabilities(matrix=matrix, chosen=chosen_of(matrix, chunk))
