"""Online selection between the contextual and the non-contextual candidate
(learners/selection.py)."""

from __future__ import annotations

import numpy as np

from learners.catalog import Catalog, ModelSpec, TemplateSpec
from learners.selection import (
    CONTEXTUAL,
    NONCONTEXTUAL,
    ActionMeans,
    CandidateSelector,
    doubly_robust_values,
)


def test_doubly_robust_values_are_unbiased_under_the_logging_policy() -> None:
    rng = np.random.default_rng(3)
    truth = np.array([0.2, 0.5, 0.9])
    logging = np.array([0.5, 0.3, 0.2])
    target = [[0.0, 0.0, 1.0], [1 / 3, 1 / 3, 1 / 3]]
    wrong_model = np.array([0.5, 0.5, 0.5])
    total = np.zeros(2)
    n = 20_000
    for _ in range(n):
        chosen = int(rng.choice(3, p=logging))
        reward = float(rng.random() < truth[chosen])
        total += doubly_robust_values(target, wrong_model, chosen, logging[chosen], reward)
    assert np.allclose(total / n, [0.9, truth.mean()], atol=0.02)


def test_the_selector_switches_only_on_evidence_and_back() -> None:
    selector = CandidateSelector(candidates=2, halflife=500, z=2.0)
    rng = np.random.default_rng(0)
    for _ in range(400):  # equal candidates: noise never makes it switch
        v = rng.normal(0.5, 0.3)
        selector.learn_one(np.array([v, v + rng.normal(0.0, 0.05)]))
    assert selector.served == CONTEXTUAL
    for _ in range(400):  # the non-contextual one clearly better
        selector.learn_one(np.array([rng.normal(0.4, 0.3), rng.normal(0.6, 0.3)]))
    assert selector.served == NONCONTEXTUAL
    for _ in range(3000):  # the world changed: recent outcomes decide
        selector.learn_one(np.array([rng.normal(0.7, 0.3), rng.normal(0.4, 0.3)]))
    assert selector.served == CONTEXTUAL


def test_action_means_shrink_to_the_model_then_to_the_overall_mean() -> None:
    catalog = Catalog(
        models=[ModelSpec(name=n, input_price_per_mtok=1.0, output_price_per_mtok=1.0,
                          typical_latency_s=1.0) for n in ("a", "b")],
        templates=[TemplateSpec(name="plain"), TemplateSpec(name="cot")], temperatures=[0.0])
    means = ActionMeans(strength=2.0, prior=0.5)
    a_plain = catalog.actions[0]
    for _ in range(50):
        means.learn_one(a_plain, 1.0)
    predicted = means.predict(catalog.actions)
    assert predicted[0] > 0.95  # a|plain: its own 50 approvals
    assert predicted[0] > predicted[1] > 0.9  # a|cot: never tried, shares model a's mean
    assert predicted[1] > predicted[2]  # b: only the overall mean
