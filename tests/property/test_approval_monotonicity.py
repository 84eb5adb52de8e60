"""Hypothesis: approving an action never makes it less likely in the same context.

Random catalogs (1-6 models with random prices, latencies and tiers; 1-3 temperatures; 1-3
templates), random contexts (task type, language, description, numeric and categorical free
features) and random sequences of approvals and rejections, through the served code path:
:class:`learners.policy.OnlinePolicy` with the default :class:`BanditSettings`, probabilities
over the actions the request's language allows, and learning from the logged propensity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from learners.bandit.vw_bandit import BanditSettings
from learners.catalog import Catalog, ModelSpec, TemplateSpec
from learners.context import DecisionContext, Task
from learners.features import ContextFeatures, ContextRecord, describe_context
from learners.policy import LearnEvent, OnlinePolicy
from learners.reward import DEFAULT_PROFILES, Outcome, Verdict, compute_reward

# Rounding of SquareCB's probabilities and of VW's float32 weights, nothing more.
TOLERANCE = 1e-9
AT = datetime(2026, 1, 1, tzinfo=UTC)
LANGUAGES = ("python", "sql", "go")
WORDS = ("api", "cache", "parser", "users", "report", "async", "schema", "fix", "login", "csv")

prices = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)
models = st.builds(
    lambda i, p_in, p_out, latency, tier: ModelSpec(
        name=f"model-{i}", input_price_per_mtok=p_in, output_price_per_mtok=p_out,
        typical_latency_s=latency, tier=tier),
    st.integers(0, 0),  # renumbered below: names must be unique
    prices, prices, st.floats(min_value=0.1, max_value=120.0),
    st.sampled_from(["", "small", "mid", "frontier", "code"]),
)
templates = st.builds(
    lambda languages, tokens, factor, style: TemplateSpec(
        name="t", languages=languages, prompt_tokens=tokens, output_factor=factor, style=style),
    st.sampled_from([[], [], ["python"], ["sql", "go"]]),
    st.integers(0, 5000), st.floats(min_value=0.1, max_value=5.0),
    st.sampled_from(["", "minimal", "reasoning", "tests"]),
)


@st.composite
def catalogs(draw: st.DrawFn) -> Catalog:
    specs = draw(st.lists(models, min_size=1, max_size=6))
    forms = draw(st.lists(templates, min_size=1, max_size=3))
    temperatures = draw(st.lists(st.sampled_from([0.0, 0.2, 0.5, 0.8, 1.0]), min_size=1,
                                 max_size=3, unique=True))
    return Catalog(
        models=[ModelSpec(name=f"model-{i}", input_price_per_mtok=m.input_price_per_mtok,
                          output_price_per_mtok=m.output_price_per_mtok,
                          typical_latency_s=m.typical_latency_s, tier=m.tier)
                for i, m in enumerate(specs)],
        # The first template serves every language, so every context has an allowed action.
        templates=[TemplateSpec(name=f"tpl-{j}", languages=[] if j == 0 else t.languages,
                                prompt_tokens=t.prompt_tokens, output_factor=t.output_factor,
                                style=t.style)
                   for j, t in enumerate(forms)],
        temperatures=temperatures,
    )


free_values = (st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)
               | st.sampled_from(["red", "blue", "green"]) | st.booleans())
contexts = st.builds(
    lambda kind, language, words, free: DecisionContext(
        task=Task(type=kind, language=language, description=" ".join(words)), features=free),
    st.sampled_from(["backend", "frontend", "data", "ops"]),
    st.sampled_from(LANGUAGES),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=8),
    st.dictionaries(st.sampled_from(["size", "risk", "team", "files", "urgent"]), free_values,
                    max_size=4),
)


@dataclass(frozen=True)
class Step:
    context: int  # index into the drawn contexts
    action: int  # index into that context's allowed actions (modulo their number)
    approved: bool


steps = st.builds(Step, st.integers(0, 3), st.integers(0, 10_000), st.booleans())


class Probe:
    """One context as the service sees it: its logged features and allowed actions."""

    def __init__(self, catalog: Catalog, context: DecisionContext) -> None:
        self.features: ContextFeatures
        self.record: ContextRecord
        self.features, self.record = describe_context(context, AT)
        self.allowed = list(catalog.indices_for_language(context.task.language))


def _learn(policy: OnlinePolicy, catalog: Catalog, probe: Probe, position: int,
           propensity: float, verdict: Verdict) -> None:
    policy.learn(LearnEvent(
        seq=policy.learned + 1, catalog_fingerprint=catalog.fingerprint,
        features=probe.features, allowed=probe.allowed, chosen_position=position,
        propensity=propensity,
        # What POST /v1/feedback computes for a bare verdict: 1.0 approved, 0.0 rejected.
        reward=compute_reward(Outcome(verdict=verdict), DEFAULT_PROFILES["balanced"]),
        verdict=verdict, quality=None, generation_time_s=None, prior_time_s=10.0,
        record=probe.record))


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(catalog=catalogs(), drawn=st.lists(contexts, min_size=1, max_size=4),
       sequence=st.lists(steps, min_size=1, max_size=30))
def test_an_approval_never_makes_the_approved_action_less_likely(
    catalog: Catalog, drawn: list[DecisionContext], sequence: list[Step]
) -> None:
    probes = [Probe(catalog, context) for context in drawn]
    policy = OnlinePolicy(settings=BanditSettings(), catalogs={catalog.fingerprint: catalog})
    try:
        for step in sequence:
            probe = probes[step.context % len(probes)]
            position = step.action % len(probe.allowed)
            before = policy.probabilities(probe.features, catalog, probe.allowed, probe.record)
            verdict = Verdict.APPROVED if step.approved else Verdict.REJECTED
            _learn(policy, catalog, probe, position, before[position], verdict)
            if step.approved:
                after = policy.probabilities(probe.features, catalog, probe.allowed,
                                             probe.record)
                action = catalog.actions[probe.allowed[position]].id
                assert after[position] >= before[position] - TOLERANCE, (
                    f"approving {action} after {policy.learned - 1} outcomes lowered its "
                    f"probability from {before[position]} to {after[position]}")
    finally:
        policy.close()
