"""River online outcome models and the SquareCB rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from learners.bandit.sampling import squarecb as squarecb_costs
from learners.features import ContextRecord
from learners.online_models import (
    OnlineOutcomeModels,
    RiverOutcome,
    RiverQuery,
    action_crosses,
    category_bucket,
)
from router.settings import load_settings
from tests.support import TEST_KEYRING


def record(task_type: str = "backend", language: str = "python",
           complexity: float = 5.0) -> ContextRecord:
    return ContextRecord(task_type=task_type, language=language, framework=None, agent="impl",
                         objective="balanced", description_words=40, requirements=2,
                         technical_terms=3, complexity=complexity, rag_examples=None,
                         rag_similarity=None, rag_quality=None, hour=10, weekday=2)


def squarecb(rewards: list[float], gamma: float) -> list[float]:
    """SquareCB over predicted rewards (the rule takes costs, their negatives)."""
    return squarecb_costs(-np.asarray(rewards, dtype=np.float64), gamma)


def test_squarecb_gives_the_greedy_action_the_rest_and_others_by_their_gap() -> None:
    p = squarecb([0.5, 0.8, 0.2], gamma=10.0)
    assert math.fsum(p) == pytest.approx(1.0)
    assert p[0] == pytest.approx(1 / (3 + 10 * 0.3))
    assert p[2] == pytest.approx(1 / (3 + 10 * 0.6))
    assert p[1] == max(p)
    assert squarecb([0.4, 0.4], gamma=100.0) == pytest.approx([0.5, 0.5])  # ties: uniform
    assert squarecb([0.1, 0.9], gamma=1e9)[1] == pytest.approx(1.0)  # huge γ: greedy


def test_crosses_name_the_action_and_its_task_specific_effects() -> None:
    catalog = load_settings("configs/default.toml", {}).catalog
    action = catalog.actions[0]
    crosses = action_crosses(record(), action)
    backend, frontend = category_bucket("backend"), category_bucket("frontend")
    assert backend != frontend
    assert crosses[f"a={action.id}"] == 1.0
    assert crosses[f"m={action.model.name}|t={backend}"] == 1.0
    assert crosses[f"tpl={action.template.name}|c"] == pytest.approx(0.5)
    other = action_crosses(record(task_type="frontend"), action)
    assert f"m={action.model.name}|t={frontend}" in other
    assert f"m={action.model.name}|t={backend}" not in other


def test_any_number_of_task_types_languages_and_agents_keeps_the_weights_bounded() -> None:
    catalog = load_settings("configs/default.toml", {}).catalog
    buckets = 8
    models = OnlineOutcomeModels(buckets=buckets)
    n_models, n_templates = len(catalog.models), len(catalog.templates)
    n_temperatures = len({a.temperature for a in catalog.actions})
    # Per action, model, template and temperature, plus each cross of one with a bucket.
    bound = (len(catalog.actions) + 2 * n_models + 3 * n_templates + n_temperatures
             + buckets * (2 * n_models + 2 * n_templates + n_temperatures))
    for i in range(3000):
        unique = ContextRecord(
            task_type=f"type-{i}", language=f"lang-{i}", framework=None, agent=f"agent-{i}",
            objective="balanced", description_words=40, requirements=2, technical_terms=3,
            complexity=5.0, rag_examples=None, rag_similarity=None, rag_quality=None, hour=10,
            weekday=2,
        )
        models.learn_one(RiverOutcome(record=unique, action=catalog.actions[i % len(
            catalog.actions)], reward=0.5, approved=i % 2 == 0))
    for model in (models._reward, models._success):
        assert 0 < len(model._weights) <= bound


def test_the_models_learn_which_model_suits_which_task() -> None:
    catalog = load_settings("configs/default.toml", {}).catalog
    good_backend = next(a for a in catalog.actions if a.model.name == "code-specialist")
    good_frontend = next(a for a in catalog.actions if a.model.name == "mid-general"
                         and a.template == good_backend.template
                         and a.temperature == good_backend.temperature)
    models = OnlineOutcomeModels()
    rng = np.random.default_rng(0)
    for _ in range(3000):
        kind = "backend" if rng.random() < 0.5 else "frontend"
        action = good_backend if rng.random() < 0.5 else good_frontend
        best = (kind == "backend") == (action is good_backend)
        success = rng.random() < (0.8 if best else 0.3)
        models.learn_one(RiverOutcome(record=record(kind), action=action,
                                      reward=0.9 if success else 0.2, approved=bool(success)))
    on_backend = models.predict_one(RiverQuery(record("backend"), [good_backend, good_frontend]))
    backend = on_backend.rewards
    frontend = models.predict_one(
        RiverQuery(record("frontend"), [good_backend, good_frontend])).rewards
    assert backend[0] > backend[1] + 0.15
    assert frontend[1] > frontend[0] + 0.15
    p_backend = on_backend.success
    assert p_backend[0] > p_backend[1]
    assert all(0.0 <= v <= 1.0 for v in backend + frontend + p_backend)


def test_the_policy_predicts_success_with_river_once_it_has_learned_enough() -> None:
    from learners.bandit.settings import BanditSettings
    from learners.features import ContextFeatures
    from learners.policy import RIVER_MIN_OUTCOMES, LearnEvent, OnlinePolicy
    from learners.reward import Verdict

    catalog = load_settings("configs/default.toml", {}).catalog
    policy = OnlinePolicy(settings=BanditSettings(), catalogs={catalog.fingerprint: catalog})
    action = catalog.actions[0]
    features = ContextFeatures(namespaces={"task": {"type=x": 1.0}}, complexity=5.0)

    def event(seq: int, kind: str) -> LearnEvent:
        approved = kind == "backend"
        return LearnEvent(seq=seq, catalog_fingerprint=catalog.fingerprint, features=features,
                          allowed=[action.index], chosen_position=0, propensity=1.0,
                          reward=0.9 if approved else 0.1,
                          verdict=Verdict.APPROVED if approved else Verdict.REJECTED,
                          quality=None, generation_time_s=None, prior_time_s=10.0,
                          record=record(kind))

    for seq in range(1, RIVER_MIN_OUTCOMES):
        policy.learn(event(seq, "backend" if seq % 2 else "frontend"))
    before = policy.predict(catalog, action.index, 10.0, record("backend"))
    assert before == policy.predict(catalog, action.index, 10.0)  # still the outcome rates
    for seq in range(RIVER_MIN_OUTCOMES, 400):
        policy.learn(event(seq, "backend" if seq % 2 else "frontend"))
    backend = policy.predict(catalog, action.index, 10.0, record("backend"))
    frontend = policy.predict(catalog, action.index, 10.0, record("frontend"))
    assert backend.success_probability > 0.7
    assert frontend.success_probability < 0.3
    restored = OnlinePolicy(settings=BanditSettings(), catalogs={catalog.fingerprint: catalog})
    assert restored.restore(policy.snapshot(TEST_KEYRING), TEST_KEYRING)
    assert restored.predict(catalog, action.index, 10.0, record("backend")) == backend
    for p in (policy, restored):
        p.close()


def test_a_snapshot_restores_only_into_a_policy_with_the_same_bounds() -> None:
    from learners.bandit.settings import BanditSettings
    from learners.policy import OnlinePolicy

    catalog = load_settings("configs/default.toml", {}).catalog
    catalogs = {catalog.fingerprint: catalog}
    snapshot = OnlinePolicy(settings=BanditSettings(), catalogs=catalogs).snapshot(TEST_KEYRING)
    for bounds in (BanditSettings(history_keys=100), BanditSettings(river_buckets=16)):
        policy = OnlinePolicy(settings=bounds, catalogs=catalogs)
        assert not policy.restore(snapshot, TEST_KEYRING)
    policy = OnlinePolicy(settings=BanditSettings(), catalogs=catalogs)
    assert policy.restore(snapshot, TEST_KEYRING)
