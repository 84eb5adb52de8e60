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

import msgspec
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from learners.bandit.settings import BanditSettings
from learners.bandit.vw_format import action_namespaces
from learners.catalog import Action, Catalog, ModelSpec, TemplateSpec
from learners.context import DecisionContext, Task
from learners.features import ContextFeatures, ContextRecord, Namespaces, describe_context
from learners.policy import LearnEvent, OnlinePolicy
from learners.reward import DEFAULT_PROFILES, Outcome, Verdict, compute_reward

# Rounding of SquareCB's probabilities and of VW's float32 weights, nothing more.
TOLERANCE = 1e-9
AT = datetime(2026, 1, 1, tzinfo=UTC)
LANGUAGES = ("python", "sql", "go")
WORDS = ("api", "cache", "parser", "users", "report", "async", "schema", "fix", "login", "csv")

prices = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)
models = st.builds(
    lambda p_in, p_out, latency, tier: ModelSpec(
        name="m", input_price_per_mtok=p_in, output_price_per_mtok=p_out,
        typical_latency_s=latency, tier=tier),
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
        # Names must be unique: one per position.
        models=[msgspec.structs.replace(m, name=f"model-{i}") for i, m in enumerate(specs)],
        # The first template serves every language, so every context has an allowed action.
        templates=[msgspec.structs.replace(t, name=f"tpl-{j}",
                                           languages=[] if j == 0 else t.languages)
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


class Scales:
    """The largest magnitude of each numeric context feature VW has updated a weight with,
    per action feature it was crossed with.

    VW's default update (adaptive, normalized, invariant) keeps such a scale per weight. When
    an update meets a larger value, it first shrinks that weight by the ratio of the scales
    (so that learning does not depend on units), then takes the gradient step computed from
    the prediction before the shrink. That changes the predicted reward of every action with
    the weight, the approved one included, by amounts unrelated to the approval: an approval
    of an action predicted at 0.977 left it at 0.765 when the context's description was three
    times as long as any learned before (docs/learning.md, "Action features"). An outcome VW
    does not update on (its clipped prediction equals the label) records no scale. The
    property below is checked on every approval that discovers no new scale.

    The other exemption: an approval during the warm-up of one of the context's numeric
    features (learners/scaling.py: a feature's mean and sd are fixed by its first 30 outcomes)
    changes how the context itself is represented to the bandit; the context is then not the
    same one before and after, and the approval is not checked."""

    def __init__(self) -> None:
        self._largest: dict[tuple[str, str], float] = {}

    def _pairs(self, seen: Namespaces, action: Action) -> list[tuple[tuple[str, str], float]]:
        tokens = [token for namespace in action_namespaces(action)
                  for token in namespace.split()[1:]]
        # Indicators count too: a free feature sent as true and later as 98 is one weight.
        return [((name, token), abs(value))
                for features in seen.values()
                for name, value in features.items()
                for token in ("", *tokens)]

    def discovers(self, seen: Namespaces, action: Action) -> bool:
        """Whether learning ``action`` in a context VW sees as ``seen`` meets a weight at a
        new, larger scale."""
        return any(0.0 < self._largest.get(key, 0.0) < value
                   for key, value in self._pairs(seen, action))

    def learn(self, seen: Namespaces, action: Action) -> None:
        for key, value in self._pairs(seen, action):
            self._largest[key] = max(self._largest.get(key, 0.0), value)


def _learn(policy: OnlinePolicy, catalog: Catalog, probe: Probe, position: int,
           propensity: float, verdict: Verdict) -> None:
    policy.learn(LearnEvent(
        seq=policy.learned + 1, catalog_fingerprint=catalog.fingerprint,
        features=probe.features, allowed=probe.allowed, chosen_position=position,
        propensity=propensity,
        # What POST /v1/feedback computes for a bare verdict: 1.0 approved, 0.0 rejected.
        reward=reward_of(verdict), verdict=verdict, quality=None, generation_time_s=None,
        prior_time_s=10.0, record=probe.record))


def reward_of(verdict: Verdict) -> float:
    return compute_reward(Outcome(verdict=verdict), DEFAULT_PROFILES["balanced"])


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(catalog=catalogs(), drawn=st.lists(contexts, min_size=1, max_size=4),
       sequence=st.lists(steps, min_size=1, max_size=40))
def test_an_approval_never_makes_the_approved_action_less_likely(
    catalog: Catalog, drawn: list[DecisionContext], sequence: list[Step]
) -> None:
    probes = [Probe(catalog, context) for context in drawn]
    policy = OnlinePolicy(settings=BanditSettings(), catalogs={catalog.fingerprint: catalog})
    scales = Scales()
    checked = 0
    try:
        for step in sequence:
            probe = probes[step.context % len(probes)]
            position = step.action % len(probe.allowed)
            action = catalog.actions[probe.allowed[position]]
            verdict = Verdict.APPROVED if step.approved else Verdict.REJECTED
            before = policy.probabilities(probe.features, catalog, probe.allowed, probe.record)
            # VW skips the update (scales included) when its prediction, clipped to the range
            # of the labels it has seen (here rewards 0 and 1), equals the label.
            predicted = policy.predicted_rewards(probe.features, catalog,
                                                 [probe.allowed[position]])[0]
            updates = min(max(predicted, 0.0), 1.0) != reward_of(verdict)
            seen = policy.bandit_namespaces(probe.features)
            new_scale = updates and scales.discovers(seen, action)
            _learn(policy, catalog, probe, position, before[position], verdict)
            if updates:
                scales.learn(seen, action)
            warming_up = policy.bandit_namespaces(probe.features) != seen
            if step.approved and not new_scale and not warming_up:
                checked += 1
                after = policy.probabilities(probe.features, catalog, probe.allowed,
                                             probe.record)
                assert after[position] >= before[position] - TOLERANCE, (
                    f"approving {action.id} after {policy.learned - 1} outcomes lowered its "
                    f"probability from {before[position]} to {after[position]}")
    finally:
        policy.close()
    event(f"approvals checked: {min(checked, 5)}{'+' if checked >= 5 else ''}")
