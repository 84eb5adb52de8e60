"""Vowpal Wabbit text format for catalog actions and logged context features.

Only this module and :mod:`learners.bandit.vw_bandit` know VW's conventions: namespace letters,
``name:value`` features, labels ``0:cost:probability`` with ``cost = -reward``.
"""

from __future__ import annotations

from learners.catalog import Action
from learners.features import Namespaces, sanitize

# The first letter of a namespace is what VW's interaction flags (-q TM) refer to.
CONTEXT_NAMESPACES = {"task": "T", "description": "D", "caller": "C", "free": "F"}
ACTION_NAMESPACES = ("M", "P", "L")
MIN_PROPENSITY = 1e-6
# A namespace without features: contributes nothing, whatever the interactions. A shared line
# needs one: VW reads a bare "shared" as one more action line.
EMPTY_LINE = "|Z"
EMPTY_SHARED = f"shared {EMPTY_LINE}"


def _feature(name: str, value: float) -> str:
    if value == 1.0:
        return name
    return f"{name}:{value:.6f}"


def format_shared(namespaces: Namespaces) -> str:
    """The ``shared`` line of a multi-line example; independent of feature order."""
    parts = ["shared"]
    for name in sorted(namespaces):
        letter = CONTEXT_NAMESPACES.get(name, name[:1].upper())
        features = namespaces[name]
        if features:
            # _feature inlined: this runs for every feature of every request.
            body = " ".join(
                [k if (v := features[k]) == 1.0 else f"{k}:{v:.6f}" for k in sorted(features)]
            )
            parts.append(f"|{letter} {body}")
    return " ".join(parts) if len(parts) > 1 else EMPTY_SHARED


def format_action(action: Action, drifting: bool = False) -> str:
    """One action line: model (M), temperature (P) and template (L) namespaces. ``drifting``
    adds a fresh model feature while the model's drift alarm is active, so that the bandit can
    re-learn the model's actions (and their interactions) quickly."""
    return " ".join(action_namespaces(action, drifting))


def action_namespaces(action: Action, drifting: bool = False) -> tuple[str, str, str]:
    """The model, temperature and template namespaces of :func:`format_action`'s line, each
    as VW text (the bandit scores them separately: :mod:`learners.bandit.vw_bandit`).

    Every action feature is an indicator (value 1) that means the same for every action that
    has it: a name, a tier, a style. No magnitude (price, latency, temperature, prompt size):
    a linear model extrapolates a magnitude, so one cheap model's approvals would raise the
    score of every pricier model more than its own. With indicators, learning a reward for
    action ``a`` moves another action's score only through the features it shares with ``a``,
    by at most as much as ``a``'s own (docs/learning.md, "Action features")."""
    model = action.model
    template = action.template
    model_features = [f"m={sanitize(model.name)}"]
    if model.tier:
        model_features.append(f"tier={sanitize(model.tier)}")
    if drifting:
        model_features.append("drift_alarm")
    template_features = [f"tpl={sanitize(template.name)}"]
    if template.style:
        template_features.append(f"style={sanitize(template.style)}")
    if template.languages:
        template_features.append("lang_specific")
    return (
        f"|M {' '.join(model_features)}",
        f"|P t={action.temperature:g}",
        f"|L {' '.join(template_features)}",
    )


def format_label(reward: float, propensity: float) -> str:
    """The cost label VW expects on the chosen action: cost = -reward."""
    # Fixed-point cost: exponents such as -2.8e-129 would underflow VW's float parser. The
    # propensity is floored at MIN_PROPENSITY for the same reason (and to bound the IPS weight).
    return f"0:{-reward:.6f}:{max(propensity, MIN_PROPENSITY):.9g}"
