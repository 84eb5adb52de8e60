"""``router replay --policy batch-greedy``: the target puts all its mass on the allowed action
with the highest reward predicted by the batch models, computed from the logged context."""

from __future__ import annotations

import numpy as np
import pytest

from learners.batch.training import History
from learners.catalog import Catalog
from learners.features import ContextFeatures
from learners.reward import DEFAULT_PROFILES, Outcome, Verdict, compute_reward
from offline.replay.context import RowContext
from offline.replay.deciders import BatchGreedyPolicy
from offline.replay.log import LogError
from tests.support import Trained


def test_batch_greedy_chooses_the_best_predicted_reward(
    trained: Trained, history: History, catalog: Catalog
) -> None:
    models = trained[0]
    profile = DEFAULT_PROFILES["balanced"]
    policy = BatchGreedyPolicy(name="batch-greedy:test", models=models,
                               catalogs={catalog.fingerprint: catalog}, profile=profile)
    chosen = set()
    for example in trained[2].examples[:30]:
        allowed = list(catalog.indices_for_language(example.context.language))
        context = RowContext(catalog=catalog, allowed=allowed,
                             features=ContextFeatures(namespaces={}, complexity=0.0),
                             record=example.context, history=example.history)
        row = policy.row(context)
        assert row.sum() == 1.0
        assert set(np.unique(row)) <= {0.0, 1.0}
        # The same prediction by hand: P(success) × reward(approved) + rest × reward(rejected).
        predicted = models.predict_actions(
            models.encoder.matrix(example.context, example.history, catalog, allowed))
        by_hand = [
            p * compute_reward(Outcome(Verdict.APPROVED, q, t), profile)
            + (1 - p) * compute_reward(Outcome(Verdict.REJECTED, q, t), profile)
            for p, q, t in zip(predicted.success, predicted.quality, predicted.time_s,
                               strict=True)
        ]
        assert int(np.argmax(row)) == int(np.argmax(by_hand))
        chosen.add(catalog.actions[allowed[int(np.argmax(row))]].id)
    assert len(chosen) > 1, "the greedy choice should depend on the context"


def test_batch_greedy_needs_the_logged_context_record(trained: Trained, catalog: Catalog) -> None:
    policy = BatchGreedyPolicy(name="batch-greedy:test", models=trained[0],
                               catalogs={catalog.fingerprint: catalog},
                               profile=DEFAULT_PROFILES["balanced"])
    context = RowContext(catalog=catalog, allowed=[0, 1],
                         features=ContextFeatures(namespaces={}, complexity=0.0),
                         record=None, history=None)
    with pytest.raises(LogError, match="no context record"):
        policy.row(context)
