"""Cost of a learner checkpoint once every open-vocabulary structure is at its bound.

Folds ``--outcomes`` outcomes whose task type, language, agent and project are all new (the
worst case: every structure grows to its bound), then times the sealed
``OnlinePolicy.snapshot()``, which the service runs on its event loop, and prints its size and
the process's RSS::

    python -m offline.bench.checkpoint_cost --outcomes 30000

No network, no files; a few seconds per 10,000 outcomes.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from datetime import UTC, datetime, timedelta

from learners.bandit.settings import BanditSettings
from learners.context import CallerContext, DecisionContext, Task
from learners.features import describe_context
from learners.history import OutcomeFacts
from learners.policy import LearnEvent, OnlinePolicy
from learners.reward import Verdict
from learners.sealed import Keyring
from router.public import load_settings

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def unique_event(seq: int, policy: OnlinePolicy, fingerprint: str, n_actions: int) -> LearnEvent:
    """An outcome whose task type, language, agent and project were never seen before."""
    at = T0 + timedelta(seconds=seq)
    context = DecisionContext(
        task=Task(type=f"type-{seq}", language=f"lang-{seq}",
                  description="Build a REST API with JWT auth and a database migration"),
        caller=CallerContext(project_id=f"project-{seq}", agent=f"agent-{seq}"),
        features={},
        objective="balanced",
    )
    features, record = describe_context(context, at)
    chosen = seq % n_actions
    approved = seq % 3 != 0
    return LearnEvent(
        seq=seq, catalog_fingerprint=fingerprint, features=features,
        allowed=list(range(n_actions)), chosen_position=chosen, propensity=1.0 / n_actions,
        reward=0.9 if approved else 0.1,
        verdict=Verdict.APPROVED if approved else Verdict.REJECTED,
        quality=7.0, generation_time_s=12.0, prior_time_s=10.0, record=record,
        facts=OutcomeFacts(
            tenant_id="default", decided_at=at, task_type=record.task_type,
            language=record.language, project_id=f"project-{seq}", agent=record.agent,
            model="frontier-large", template="plain", approved=approved, quality=7.0,
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outcomes", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    catalog = load_settings(None, {}).catalog
    policy = OnlinePolicy(settings=BanditSettings(), catalogs={catalog.fingerprint: catalog})
    started = time.perf_counter()
    for seq in range(1, args.outcomes + 1):
        policy.learn(unique_event(seq, policy, catalog.fingerprint, len(catalog.actions)))
        policy.observe_decision("default", f"project-{seq}", T0)
    learned_s = time.perf_counter() - started
    keyring = Keyring(os.urandom(32))
    timings = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        state = policy.snapshot(keyring)
        timings.append((time.perf_counter() - started) * 1000)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"outcomes {args.outcomes} (folded in {learned_s:.1f} s)")
    print(f"history keys per kind {policy.history_sizes()}")
    print(f"snapshot {len(state) / 1e6:.2f} MB, median {statistics.median(timings):.1f} ms, "
          f"max {max(timings):.1f} ms over {args.repeats}")
    print(f"peak RSS {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
