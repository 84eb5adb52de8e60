"""HistoryStats: windowed success and quality by similar task, model, template, agent and
project; project maturity; the bound on remembered keys; pickling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from learners.history import (
    MAX_KEYS,
    WINDOW,
    HistoryFeatures,
    HistoryQuery,
    HistoryStats,
    OutcomeFacts,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def facts(
    *,
    approved: bool = True,
    quality: float | None = 8.0,
    model: str = "frontier-large",
    template: str = "plain",
    tenant_id: str = "acme",
    task_type: str = "backend",
    language: str = "python",
    project_id: str | None = "billing",
    agent: str | None = "implementation",
    decided_at: datetime = T0,
) -> OutcomeFacts:
    return OutcomeFacts(
        tenant_id=tenant_id, decided_at=decided_at, task_type=task_type, language=language,
        project_id=project_id, agent=agent, model=model, template=template, approved=approved,
        quality=quality,
    )


def read(
    stats: HistoryStats,
    *,
    tenant_id: str = "acme",
    task_type: str = "backend",
    language: str = "python",
    project_id: str | None = "billing",
    agent: str | None = "implementation",
    models: tuple[str, ...] = ("frontier-large",),
    templates: tuple[str, ...] = ("plain",),
    at: datetime = T0 + timedelta(days=1),
) -> HistoryFeatures:
    return stats.predict_one(HistoryQuery(
        tenant_id=tenant_id, task_type=task_type, language=language, project_id=project_id,
        agent=agent, models=models, templates=templates, at=at,
    ))


def test_empty_history_has_no_rates() -> None:
    features = read(HistoryStats(), models=("m",), templates=("t",))
    for summary in (features.similar, features.project, features.agent, features.models["m"],
                    features.templates["t"]):
        assert (summary.success, summary.quality, summary.n) == (None, None, 0)


def test_window_drops_exactly_the_oldest_outcome() -> None:
    stats = HistoryStats()
    stats.learn_one(facts(approved=True, quality=10.0))
    for _ in range(WINDOW - 1):
        stats.learn_one(facts(approved=False, quality=0.0))
    full = read(stats).models["frontier-large"]
    assert full.n == WINDOW
    assert full.success == pytest.approx(1 / WINDOW)
    assert full.quality == pytest.approx(10.0 / WINDOW)

    stats.learn_one(facts(approved=False, quality=0.0))  # pushes the one success out
    after = read(stats)
    for summary in (after.models["frontier-large"], after.templates["plain"], after.similar,
                    after.project, after.agent):
        assert summary.n == WINDOW
        assert summary.success == 0.0
        assert summary.quality == 0.0


def test_quality_of_an_outcome_outside_the_window_no_longer_counts() -> None:
    # Recent outcomes without a quality score must not leave an old score in the mean forever.
    stats = HistoryStats()
    stats.learn_one(facts(quality=2.0))
    stats.learn_one(facts(quality=None))
    assert read(stats).models["frontier-large"].quality == 2.0  # still in the window
    for _ in range(WINDOW - 1):
        stats.learn_one(facts(quality=None))
    summary = read(stats).models["frontier-large"]
    assert summary.n == WINDOW
    assert summary.quality is None


def test_success_counts_approved_outcomes_only_and_quality_averages_all() -> None:
    stats = HistoryStats()
    stats.learn_one(facts(approved=True, quality=9.0))
    stats.learn_one(facts(approved=False, quality=6.0))  # a modified outcome
    stats.learn_one(facts(approved=False, quality=0.0))  # a rejected outcome
    summary = read(stats).models["frontier-large"]
    assert summary.n == 3
    assert summary.success == pytest.approx(1 / 3)
    assert summary.quality == pytest.approx(5.0)


def test_models_and_templates_are_kept_apart() -> None:
    stats = HistoryStats()
    stats.learn_one(facts(model="a", template="plain", approved=True))
    stats.learn_one(facts(model="b", template="structured", approved=False))
    features = read(stats, models=("a", "b", "c"), templates=("plain", "structured"))
    assert features.models["a"].success == 1.0
    assert features.models["b"].success == 0.0
    assert features.models["c"].n == 0
    assert features.templates["plain"].success == 1.0
    assert features.templates["structured"].success == 0.0
    assert set(features.models) == {"a", "b", "c"}


def test_similar_tasks_share_type_and_language_case_insensitively() -> None:
    stats = HistoryStats()
    stats.learn_one(facts(task_type="Backend", language="Python", approved=True))
    stats.learn_one(facts(task_type="backend", language="go", approved=False))
    assert read(stats, task_type="BACKEND", language="python").similar.n == 1
    assert read(stats, task_type="backend", language="python").similar.success == 1.0
    assert read(stats, task_type="frontend", language="python").similar.n == 0


def test_projects_and_agents_are_scoped_by_tenant() -> None:
    stats = HistoryStats()
    stats.learn_one(facts(tenant_id="acme", project_id="web", agent="review", approved=True))
    stats.learn_one(facts(tenant_id="globex", project_id="web", agent="review", approved=False))
    stats.learn_one(facts(tenant_id="globex", project_id="web", agent="review", approved=False))
    acme = read(stats, tenant_id="acme", project_id="web", agent="review")
    globex = read(stats, tenant_id="globex", project_id="web", agent="review")
    assert (acme.project.n, acme.project.success) == (1, 1.0)
    assert (acme.agent.n, acme.agent.success) == (1, 1.0)
    assert (globex.project.n, globex.project.success) == (2, 0.0)
    assert (globex.agent.n, globex.agent.success) == (2, 0.0)
    # Models are a property of the catalog, shared by every tenant.
    assert acme.models["frontier-large"].n == 3
    assert read(stats, tenant_id="initech", project_id="web", agent="review").project.n == 0


def test_outcomes_without_project_or_agent_feed_only_the_shared_aggregates() -> None:
    stats = HistoryStats()
    stats.learn_one(facts(project_id=None, agent=None))
    features = read(stats, project_id=None, agent=None)
    assert features.project.n == 0
    assert features.agent.n == 0
    assert features.project_age_days is None
    assert features.similar.n == 1
    assert features.models["frontier-large"].n == 1


def test_project_age_counts_days_from_the_earliest_observed_decision() -> None:
    stats = HistoryStats()
    stats.observe_decision("acme", "billing", T0 + timedelta(days=2))
    stats.observe_decision("acme", "billing", T0)  # observed late but earlier: it counts
    stats.observe_decision("acme", "billing", T0 + timedelta(days=5))
    at = T0 + timedelta(days=3, hours=12)
    assert read(stats, at=at).project_age_days == pytest.approx(3.5)
    # A decision of a folded outcome is an observation too.
    stats.learn_one(facts(decided_at=T0 - timedelta(days=1)))
    assert read(stats, at=at).project_age_days == pytest.approx(4.5)
    # Another tenant's project of the same name is new; a project never seen is 0 days old.
    assert read(stats, tenant_id="globex", at=at).project_age_days == 0.0
    assert read(stats, project_id="new-project", at=at).project_age_days == 0.0
    # Never negative, even for a decision dated before the first observation.
    assert read(stats, at=T0 - timedelta(days=9)).project_age_days == 0.0


def test_keys_beyond_the_bound_forget_the_least_recently_updated() -> None:
    stats = HistoryStats()
    for i in range(MAX_KEYS):
        stats.learn_one(facts(model=f"m{i}", project_id=None, agent=None))
    stats.learn_one(facts(model="m0", project_id=None, agent=None))  # m0 is fresh again
    stats.learn_one(facts(model="newcomer", project_id=None, agent=None))
    models = read(stats, models=("m0", "m1", "m2", "newcomer")).models
    assert models["m0"].n == 2
    assert models["m1"].n == 0  # the least recently updated key was forgotten
    assert models["m2"].n == 1
    assert models["newcomer"].n == 1


def test_snapshot_round_trip_keeps_features_and_keeps_learning() -> None:
    stats = HistoryStats()
    for i in range(WINDOW + 30):
        stats.learn_one(facts(approved=i % 3 == 0, quality=None if i % 4 == 0 else i % 11,
                              model=f"m{i % 3}", agent=f"agent{i % 2}",
                              decided_at=T0 + timedelta(hours=i)))
    models = ("m0", "m1", "m2")
    copy = HistoryStats()
    copy.restore(stats.snapshot())
    assert read(copy, models=models) == read(stats, models=models)
    stats.learn_one(facts(approved=False, quality=1.0, model="m1"))
    copy.learn_one(facts(approved=False, quality=1.0, model="m1"))
    assert read(copy, models=models) == read(stats, models=models)


def test_model_and_template_rates_read_between_outcomes_follow_every_outcome() -> None:
    stats = HistoryStats()
    models, templates = ("m0", "m1"), ("plain", "steps")
    assert read(stats, models=models, templates=templates).models["m1"].n == 0
    assert read(stats, models=models, templates=templates).models["m1"].n == 0  # cached
    stats.learn_one(facts(model="m1", template="steps", approved=False))
    after = read(stats, models=models, templates=templates)
    assert after.models["m1"].n == 1
    assert after.models["m1"].success == 0.0
    assert after.templates["steps"].n == 1
    assert after.models["m0"].n == 0
    other = read(stats, models=("m1",), templates=("plain",))  # another catalog's names
    assert list(other.models) == ["m1"]
    assert list(other.templates) == ["plain"]
    copy = HistoryStats()
    copy.restore(stats.snapshot())  # learned state only: the summaries are recomputed
    assert read(copy, models=models, templates=templates) == after


def test_open_vocabularies_keep_every_kind_within_the_bound() -> None:
    stats = HistoryStats(max_keys=50)
    for i in range(1000):
        stats.learn_one(facts(task_type=f"type-{i}", language=f"lang-{i}",
                              project_id=f"project-{i}", agent=f"agent-{i}", model=f"m{i}",
                              template=f"t{i}", tenant_id=f"tenant-{i % 7}"))
        stats.observe_decision(f"tenant-{i % 7}", f"unlearned-{i}", T0)
    assert max(stats.sizes().values()) == 50
    newest = read(stats, tenant_id="tenant-5", task_type="type-999", language="lang-999",
                  project_id="project-999", agent="agent-999")
    assert newest.similar.n == newest.project.n == newest.agent.n == 1
    assert read(stats, task_type="type-0", language="lang-0").similar.n == 0  # forgotten


def test_a_project_seen_again_is_kept_with_its_first_decision() -> None:
    stats = HistoryStats(max_keys=3)
    stats.observe_decision("acme", "billing", T0)
    for i in range(10):
        stats.observe_decision("acme", f"p{i}", T0 + timedelta(days=1))
        stats.observe_decision("acme", "billing", T0 + timedelta(days=2))  # recently used
    age = read(stats, project_id="billing", at=T0 + timedelta(days=3)).project_age_days
    assert age == 3.0
    assert stats.sizes()["first_seen"] == 3
