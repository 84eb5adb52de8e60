"""Hypothesis: schema round trips, propensities, and no 500 for any body."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from learners.bandit.sampling import draw_index, seed_from_id
from learners.bandit.settings import BanditSettings
from learners.context import DecisionContext
from learners.features import extract_features
from learners.policy import OnlinePolicy
from router.app import create_app
from router.schemas import FeedbackRequest, RouteRequest
from router.settings import load_settings
from tests.support import make_settings

CATALOG = load_settings(None, {}).catalog
# Stored strings never hold NUL (PostgreSQL refuses it; the API answers 422).
stored_chars = st.characters(codec="utf-8", exclude_characters="\x00")
short = st.text(stored_chars, min_size=1, max_size=20)
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
feature_names = st.from_regex(r"[A-Za-z0-9_.\-]{1,12}", fullmatch=True)

tasks = st.fixed_dictionaries(
    {
        "type": short,
        "language": st.sampled_from(["python", "sql", "go", "typescript"]) | short,
        "description": st.text(stored_chars, min_size=1, max_size=300),
    },
    optional={
        "framework": short,
        "requirements": st.lists(st.text(stored_chars, max_size=40), max_size=5),
    },
)
route_bodies = st.fixed_dictionaries(
    {"task": tasks},
    optional={
        "request_id": short,
        "context": st.fixed_dictionaries(
            {},
            optional={
                "project_id": short,
                "agent": short,
                "rag": st.fixed_dictionaries(
                    {"examples": st.integers(0, 50)},
                    optional={"avg_similarity": st.floats(0, 1), "avg_quality": st.floats(0, 10)},
                ),
            },
        ),
        "features": st.dictionaries(
            feature_names, st.booleans() | finite | st.text(stored_chars, max_size=10), max_size=5
        ),
        "objective": st.sampled_from(["balanced", "quality", "cost"]),
    },
)


@given(route_bodies)
def test_route_request_round_trips(body: dict[str, Any]) -> None:
    request = msgspec.convert(body, RouteRequest)
    again = msgspec.json.decode(msgspec.json.encode(request), type=RouteRequest)
    assert again == request


@given(
    st.fixed_dictionaries(
        {
            "decision_id": st.text(stored_chars, min_size=1, max_size=64),
            "outcome": st.sampled_from(["approved", "modified", "rejected"]),
        },
        optional={
            "quality": st.floats(0, 10),
            "cost_usd": st.floats(0, 100),
            "generation_time_s": st.floats(0, 1000),
            "reward": st.floats(0, 1),
            "tokens": st.integers(0, 10**6),
        },
    )
)
def test_feedback_request_round_trips(body: dict[str, Any]) -> None:
    request = msgspec.convert(body, FeedbackRequest)
    assert msgspec.json.decode(msgspec.json.encode(request), type=FeedbackRequest) == request


@pytest.fixture(scope="module")
def policy() -> Iterator[OnlinePolicy]:
    online = OnlinePolicy(
        settings=BanditSettings(exploration="squarecb"), catalogs={CATALOG.fingerprint: CATALOG}
    )
    yield online
    online.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=route_bodies,
    subset=st.lists(st.integers(0, len(CATALOG) - 1), min_size=1, max_size=40, unique=True),
    reward=st.floats(0, 1),
)
def test_propensities_are_in_unit_interval_and_sum_to_one(
    policy: OnlinePolicy, body: dict[str, Any], subset: list[int], reward: float
) -> None:
    request = msgspec.convert(body, RouteRequest)
    context = DecisionContext(
        task=request.task, caller=request.context, features=dict(request.features)
    )
    features = extract_features(context)
    allowed = sorted(subset)
    probabilities = policy.probabilities(features, CATALOG, allowed)
    assert len(probabilities) == len(allowed)
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert math.isclose(sum(probabilities), 1.0, abs_tol=1e-9)
    chosen = draw_index(probabilities, seed_from_id(str(body)))
    assert 0.0 < probabilities[chosen] <= 1.0
    # Learning from the logged propensity keeps the invariants.
    from learners.policy import LearnEvent
    from learners.reward import Verdict

    policy.learn(
        LearnEvent(
            seq=policy.learned + 1,
            catalog_fingerprint=CATALOG.fingerprint,
            features=features,
            allowed=allowed,
            chosen_position=chosen,
            propensity=probabilities[chosen],
            reward=reward,
            verdict=Verdict.APPROVED,
            quality=None,
            generation_time_s=None,
            prior_time_s=10.0,
        )
    )
    again = policy.probabilities(features, CATALOG, allowed)
    assert math.isclose(sum(again), 1.0, abs_tol=1e-9)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def sync_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient[Any]]:
    path: Path = tmp_path_factory.mktemp("fuzz")
    with TestClient(create_app(make_settings(f"sqlite+aiosqlite:///{path}/f.db"))) as client:
        yield client


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(json_values, route_bodies.map(lambda b: {**b, "task": {**b["task"], "x": 1}}))
)
def test_no_body_causes_a_server_error(sync_client: TestClient[Any], body: Any) -> None:
    for path in ("/v1/route", "/v1/feedback"):
        response = sync_client.post(path, json=body)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "field" in response.json()
