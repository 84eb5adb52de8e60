"""Hyper-parameters of the VW bandit (config section ``[bandit]``) and the VW command line
they give (:class:`learners.bandit.vw_bandit.VWBandit` runs it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from learners.bandit.vw_format import ACTION_NAMESPACES

# "regcbopt" is RegCB-optimistic: all probability on the action with the lowest optimistic
# (lower-confidence) cost, shared among ties. VW clips its confidence bounds to the cost range
# [cb_min_cost, cb_max_cost], default [0, 1]; our costs (-reward) lie in [-1, 0], so with the
# default every action's bound clips to 0, all tie, and the prediction stays all-ones (uniform)
# for ever. The range is therefore always passed, from min_reward/max_reward.
# RegCB-elimination (--regcb alone) is not offered.
Exploration = Literal["epsilon", "squarecb", "cover", "bag", "softmax", "regcbopt"]
# VW's update rule: "default" is adaptive + normalized + invariant. RegCB's confidence bounds
# come from the base learner's sensitivity; under the default rule RegCB-opt keeps the first
# action it draws, under "adaptive" or "sgd" it explores (tests/unit/learners/test_bandit.py).
UpdateRule = Literal["default", "adaptive", "normalized-invariant", "sgd"]
_UPDATE_FLAGS: dict[str, str] = {
    "default": "",
    "adaptive": "--adaptive",
    "normalized-invariant": "--normalized --invariant",
    "sgd": "--sgd",
}


class BanditSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Hyper-parameters of the VW bandit (config section ``[bandit]``)."""

    exploration: Exploration = "squarecb"
    epsilon: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.05
    gamma_scale: Annotated[float, Meta(gt=0.0)] = 10.0
    bag_size: Annotated[int, Meta(ge=2, le=64)] = 5
    cover_size: Annotated[int, Meta(ge=1, le=64)] = 5
    softmax_lambda: Annotated[float, Meta(gt=0.0)] = 10.0
    mellowness: Annotated[float, Meta(gt=0.0)] = 0.1  # RegCB's c0: wider bounds when larger
    min_reward: float = 0.0  # bounds of every reward the bandit learns (RegCB clips to them)
    max_reward: float = 1.0
    bits: Annotated[int, Meta(ge=12, le=28)] = 18
    learning_rate: Annotated[float, Meta(gt=0.0, le=100.0)] = 0.5
    update_rule: UpdateRule = "default"
    # Every context namespace (T, D, C, F) crossed with every action namespace (M, P, L), and
    # the action namespaces with each other (docs/decisions/interactions.md).
    interactions: tuple[Annotated[str, Meta(pattern=r"^[A-Za-z]{2,3}$")], ...] = (
        "TM", "TP", "TL", "DM", "DP", "DL", "CM", "CP", "CL", "FM", "FP", "FL", "ML", "MP", "PL",
    )
    seed: int = 7
    # SquareCB over a stacked estimate of VW's and River's predicted rewards
    # (learners.policy.OnlinePolicy; docs/decisions/river-stacking.md).
    stack_river: bool = False
    # Bounds of the open-vocabulary state folded with the bandit (learners.history,
    # learners.online_models): keys kept per kind of history aggregate, and hash buckets of task
    # types, languages and agents in River's crosses.
    # Numeric caller features standardised online before VW sees them (learners/scaling.py).
    standardise_features: bool = True
    # Context features with one value in every learned outcome left out (learners/
    # constant_features.py).
    drop_constant_features: bool = True
    # Action namespaces the same for every action a request allows (one temperature, one
    # template among them) left out of what is learned from its outcome (VWBandit.learn_actions).
    drop_constant_actions: bool = True
    history_keys: Annotated[int, Meta(ge=1, le=10_000_000)] = 10_000
    river_buckets: Annotated[int, Meta(ge=1, le=1_000_000)] = 256

    def __post_init__(self) -> None:
        if not self.min_reward < self.max_reward:
            raise ValueError(
                f"min_reward ({self.min_reward}) must be below max_reward ({self.max_reward})"
            )
        if self.stack_river and self.exploration != "squarecb":
            raise ValueError(
                f"stack_river needs exploration 'squarecb', not {self.exploration!r}"
            )



def scores_costs(settings: BanditSettings) -> bool:
    """Whether the bandit reads VW's predicted costs and explores itself (SquareCB)."""
    return settings.exploration == "squarecb"


def slot_factorisable(interactions: Sequence[str]) -> bool:
    """Whether an action's predicted cost splits into per-namespace terms: no interaction may
    cross a context namespace with two different action namespaces (``TML`` would not)."""
    slots = set(ACTION_NAMESPACES)
    for term in interactions:
        letters = set(term)
        if len(letters & slots) >= 2 and letters - slots:
            return False
    return True


def vw_arguments(settings: BanditSettings) -> str:
    """The VW command line for ``settings``."""
    reduction = "--cb_adf --cb_type mtr" if scores_costs(settings) else "--cb_explore_adf"
    args = [reduction, "--quiet", f"-b {settings.bits}", f"-l {settings.learning_rate}"]
    args.append(f"--random_seed {settings.seed}")
    if settings.update_rule != "default":
        args.append(_UPDATE_FLAGS[settings.update_rule])
    match settings.exploration:
        case "epsilon":
            args.append(f"--epsilon {settings.epsilon}")
        case "squarecb":
            pass  # SquareCB is applied to the costs by VWBandit (module docstring)
        case "cover":
            args.append(f"--cover {settings.cover_size} --epsilon {settings.epsilon}")
        case "bag":
            args.append(f"--bag {settings.bag_size} --epsilon {settings.epsilon}")
        case "softmax":
            args.append(f"--softmax --lambda {settings.softmax_lambda}")
        case "regcbopt":
            # cost = -reward: the cost range is the reward range negated and reversed.
            args.append(
                f"--regcb --regcbopt --mellowness {settings.mellowness} "
                f"--cb_min_cost {0.0 - settings.max_reward} "
                f"--cb_max_cost {0.0 - settings.min_reward}"
            )
    for pair in settings.interactions:
        flag = "-q" if len(pair) == 2 else "--cubic"
        args.append(f"{flag} {pair}")
    return " ".join(args)
