"""The router as a suite contender: the served decision core, under some bandit settings.

Every decision goes through ``decide`` and every outcome through ``learn_event`` and
:meth:`TenantPolicies.learn`, as ``POST /v1/route`` and ``POST /v1/feedback`` run them; only
HTTP and the event log are left out. Variants are named by bandit specs
(:mod:`offline.bench.bandit_spec`): ``router`` is the configured ``[bandit]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from learners.bandit.settings import BanditSettings
from learners.catalog import Catalog
from learners.decision import LoggedDecision, LoggedOutcome, decide, learn_event
from learners.drift import BanditDriftSettings
from learners.policy import OnlinePolicy
from learners.reward import Verdict
from learners.tenant_policies import TenantPolicies
from offline.bench.bandit_spec import BanditSpecError, parse_bandit_spec
from offline.bench.suite.baselines import decision_id, decision_time
from offline.bench.suite.environment import SuiteStep

TENANT = "suite"
DEFAULT_NAME = "router"
APPROVED_AT = 0.5  # a reward at or above this is reported as an approval


class RouterVariant(msgspec.Struct, frozen=True):
    """A named router contender: its bandit settings and drift detection."""

    name: str
    bandit: BanditSettings
    drift: BanditDriftSettings


class RouterContender:
    """Decides with the served decision core and learns each outcome when it arrives."""

    def __init__(self, variant: RouterVariant, catalog: Catalog, env: str, seed: int) -> None:
        self.name = variant.name
        self.env = env
        self.seed = seed
        self.catalog = catalog
        self._policies = TenantPolicies(settings=variant.bandit,
                                        catalogs={catalog.fingerprint: catalog},
                                        drift=variant.drift)
        self._allowed = list(range(len(catalog)))
        self._pending: dict[int, LoggedDecision] = {}
        self._seq = 0
        # The most probable action of every decision: what the policy would choose without
        # exploring (the suite scores it beside the drawn choice).
        self.greedy: list[int] = []

    @property
    def policy(self) -> OnlinePolicy:
        """The online policy that decides and learns (its drift alarms, its state)."""
        return self._policies.for_tenant(TENANT)

    def choose(self, step: SuiteStep) -> int:
        policy = self.policy
        decision = decide(policy, self.catalog, step.context, tenant_id=TENANT,
                          decided_at=decision_time(step.index), allowed=self._allowed,
                          decision_id=decision_id(self.env, self.seed, step.index))
        self._pending[step.index] = decision.logged
        choice = decision.choice
        self.greedy.append(choice.allowed[max(range(len(choice.probabilities)),
                                              key=choice.probabilities.__getitem__)])
        return decision.action

    def learn(self, step: SuiteStep, reward: float) -> None:
        self._seq += 1
        verdict = Verdict.APPROVED if reward >= APPROVED_AT else Verdict.REJECTED
        outcome = LoggedOutcome(verdict=verdict, reward=reward)
        self._policies.learn(learn_event(self._pending.pop(step.index), outcome, seq=self._seq))

    def close(self) -> None:
        self._policies.close()


def router_variants(bandit: BanditSettings, drift: BanditDriftSettings,
                    specs: Sequence[str]) -> list[RouterVariant]:
    """``router`` (the configured settings) and one variant per ``NAME=SPEC``; raises
    :class:`BanditSpecError` on a malformed or duplicate one."""
    variants = [RouterVariant(name=DEFAULT_NAME, bandit=bandit, drift=drift)]
    for item in specs:
        name, has_spec, spec = item.partition("=")
        if not has_spec or not name or not spec:
            raise BanditSpecError(f"{item!r}: expected NAME=SPEC, e.g. sq10=vw:squarecb=10")
        if name in {v.name for v in variants}:
            raise BanditSpecError(f"{item!r}: the name {name!r} is taken")
        settings = parse_bandit_spec(spec).apply(bandit)
        variants.append(RouterVariant(name=name, bandit=settings, drift=drift))
    return variants
