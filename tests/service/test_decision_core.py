"""One decision core (DESIGN.md rule 9): what ``POST /v1/route`` decides and what
``POST /v1/feedback`` learns is exactly what :func:`learners.decision.decide` and
:func:`learners.decision.learn_event` give in-process, so benchmarks that call them measure the
served code path."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar.testing import AsyncTestClient

from learners.context import DecisionContext, Task
from learners.decision import LoggedOutcome, decide, learn_event
from learners.reward import Verdict
from learners.tenant_policies import TenantPolicies
from router.app import create_app
from router.services.routing import RoutingService
from tests.support import make_settings

KEY = "key-of-the-core-test-01"
TENANT = "core"
TASKS = [("backend", "python", "Add a cached REST endpoint with retries"),
         ("frontend", "typescript", "Render a sortable table of invoices"),
         ("data", "sql", "Aggregate monthly revenue per region")]


async def test_the_service_decides_and_learns_as_the_core_does(database_url: str) -> None:
    settings = make_settings(database_url, ROUTER__AUTH__API_KEYS=f'{{"{KEY}": "{TENANT}"}}')
    headers = {"X-API-Key": KEY}
    async with AsyncTestClient(create_app(settings)) as client:
        routing: RoutingService = client.app.state.routing
        catalog = routing.catalog
        served = routing.learner.policies
        core = TenantPolicies(settings=served.settings, catalogs={catalog.fingerprint: catalog},
                              drift=served.drift_settings)
        vectors = set()
        for i in range(24):
            kind, language, text = TASKS[i % len(TASKS)]
            body = {"request_id": f"r{i}", "task": {"type": kind, "language": language,
                                                    "description": text},
                    "features": {"tokens": 100.0 * i, "tier": "gold" if i % 2 else "free"}}
            answer = await client.post("/v1/route", json=body, headers=headers)
            assert answer.status_code == 200, answer.text
            decision_id = answer.json()["decision_id"]
            view = (await client.get(f"/v1/decisions/{decision_id}", headers=headers)).json()

            context = DecisionContext(task=Task(type=kind, language=language, description=text),
                                      features=body["features"])  # type: ignore[arg-type]
            decision = decide(core.for_tenant(TENANT), catalog, context, tenant_id=TENANT,
                              decided_at=datetime.now(UTC), decision_id=decision_id)
            assert decision.choice.probabilities == view["probabilities"]
            assert catalog.actions[decision.action].model.name == answer.json()["model"]
            vectors.add(tuple(view["probabilities"]))

            reward = 1.0 if i % 3 else 0.0
            verdict = Verdict.APPROVED if reward else Verdict.REJECTED
            feedback = await client.post("/v1/feedback", headers=headers, json={
                "decision_id": decision_id, "outcome": verdict.value, "reward": reward})
            assert feedback.status_code == 200, feedback.text
            core.learn(learn_event(decision.logged, LoggedOutcome(verdict=verdict, reward=reward),
                                   seq=feedback.json()["sequence"]))
        # Every request met a new learned state: the comparison covered learning, not one
        # untouched prior.
        assert len(vectors) >= 20
