"""Contextual bandit over catalog actions with Vowpal Wabbit's ``cb_adf`` / ``cb_explore_adf``.

One :class:`VWBandit` owns one VW workspace for the life of the process (workspaces are not
thread-safe and are costly to create). Rewards enter as ``cost = -reward`` and the logged
propensity is the label's probability; both conventions stay inside this module.

SquareCB (the default) runs as VW's ``cb_adf`` regression (``mtr``, VW's cost regression
for the chosen action) with the SquareCB rule applied here to its predicted costs. That is
what VW's ``--cb_explore_adf --squarecb`` computes (the same regression, learned without
importance weights, and the same rule; tests/unit/learners/test_bandit.py compares the
two), with three differences:

- VW 9.11's ``--squarecb`` drops the importance weight of every labelled line but the last
  of an example (its loop stops one line early); here no line is weighted, as SquareCB
  intends (docs/learning.md, "How the bandit scores actions");
- the predicted costs are *factorised*: an action's cost is a sum of terms that each involve
  the context and one of its model, temperature and template namespaces, or no context and
  any of them. So a request scores one line per catalog model, temperature and template
  (about 18) instead of one per allowed action (about 140), and the context-free terms are
  scored once after each learn. The sum is exact (the linear model is linear in each term);
  :func:`slot_factorisable` checks that the configured interactions allow it.
- predicted rewards above ``max_reward`` count as ``max_reward`` (:meth:`VWBandit.squarecb`).

The other explorations (ε-greedy, cover, bag, softmax, RegCB-optimistic) run as VW's
``cb_explore_adf`` over every allowed action's line.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Annotated, Literal

import msgspec
import numpy as np
import pylibvw
from msgspec import Meta
from numpy.typing import NDArray
from vowpalwabbit import Example, PredictionType, Workspace

from learners.bandit.action_prior import PriorMode
from learners.bandit.sampling import normalize, squarecb
from learners.bandit.vw_format import (
    ACTION_NAMESPACES,
    action_namespaces,
    format_label,
)
from learners.catalog import Catalog

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
    gamma_scale: Annotated[float, Meta(gt=0.0)] = 20.0
    bag_size: Annotated[int, Meta(ge=2, le=64)] = 5
    cover_size: Annotated[int, Meta(ge=1, le=64)] = 5
    softmax_lambda: Annotated[float, Meta(gt=0.0)] = 10.0
    mellowness: Annotated[float, Meta(gt=0.0)] = 0.1  # RegCB's c0: wider bounds when larger
    min_reward: float = 0.0  # bounds of every reward the bandit learns (RegCB clips to them)
    max_reward: float = 1.0
    bits: Annotated[int, Meta(ge=12, le=28)] = 18
    learning_rate: Annotated[float, Meta(gt=0.0, le=100.0)] = 0.5
    update_rule: UpdateRule = "default"
    interactions: tuple[Annotated[str, Meta(pattern=r"^[A-Za-z]{2,3}$")], ...] = (
        "TM",
        "TP",
        "TL",
        "DM",
        "DL",
        "CM",
        "FM",
        "ML",
        "MP",
        "PL",
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
    history_keys: Annotated[int, Meta(ge=1, le=10_000_000)] = 10_000
    river_buckets: Annotated[int, Meta(ge=1, le=1_000_000)] = 256
    # A non-contextual prior blended into the predicted rewards before SquareCB
    # (learners/bandit/action_prior.py): its blend, pseudo-outcomes, memory and mixture rate.
    prior: PriorMode = "off"
    prior_count: Annotated[float, Meta(ge=0.0)] = 10.0
    prior_horizon: Annotated[float, Meta(ge=0.0)] = 0.0
    prior_eta: Annotated[float, Meta(gt=0.0)] = 0.5

    def __post_init__(self) -> None:
        if not self.min_reward < self.max_reward:
            raise ValueError(
                f"min_reward ({self.min_reward}) must be below max_reward ({self.max_reward})"
            )
        if self.prior != "off" and self.exploration != "squarecb":
            raise ValueError(f"prior needs exploration 'squarecb', not {self.exploration!r}")
        if self.stack_river and self.exploration != "squarecb":
            raise ValueError(
                f"stack_river needs exploration 'squarecb', not {self.exploration!r}"
            )


# SquareCB's γ = gamma_scale · √(K·t) with K allowed actions after t learned outcomes: VW's
# t^0.5 schedule, and √K as in Foster & Rakhlin's γ = √(K·T/…) (docs/learning.md, Exploration).
GAMMA_EXPONENT = 0.5
# A namespace without features: contributes nothing, whatever the interactions.
EMPTY_LINE = "|Z"
EMPTY_SHARED = f"shared {EMPTY_LINE}"


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


class ActionLines:
    """VW text of every action of one catalog, formatted once and reused by every request
    (re-formatted only when the set of drifting models changes).

    ``slot_lines`` holds each distinct model, temperature and template namespace once, and
    ``slots[i]`` the positions of action ``i``'s three namespaces in it."""

    def __init__(self, catalog: Catalog, drifting: frozenset[str] = frozenset()) -> None:
        self.fingerprint = catalog.fingerprint
        self.drifting = drifting
        self.key = f"{catalog.fingerprint}|{','.join(sorted(drifting))}"
        parts = [action_namespaces(a, a.model.name in drifting) for a in catalog.actions]
        self.lines: tuple[str, ...] = tuple(" ".join(p) for p in parts)
        position: dict[str, int] = {}
        for namespaces in parts:
            for text in namespaces:
                position.setdefault(text, len(position))
        self.slot_lines: tuple[str, ...] = tuple(position)
        self.slots: NDArray[np.intp] = np.array(
            [[position[text] for text in namespaces] for namespaces in parts], dtype=np.intp
        ).reshape(len(parts), 3)
        # Each slot column on its own (contiguous), and every action in catalog order: what a
        # request without constraints allows, so its costs need no gather by ``indices``.
        self.slot_columns: tuple[NDArray[np.intp], ...] = tuple(
            np.ascontiguousarray(self.slots[:, k]) for k in range(3))
        self.all_indices: list[int] = list(range(len(parts)))

    def select(self, indices: Sequence[int]) -> list[str]:
        lines = self.lines
        return [lines[i] for i in indices]


class _ParsedActions:
    """One catalog's action and namespace examples, parsed once in one workspace, and the
    context-free part of each action's cost as of ``version`` learned outcomes."""

    def __init__(self, workspace: Workspace, actions: ActionLines) -> None:
        self.actions = [workspace.example(line) for line in actions.lines]
        self.slots = [workspace.example(line) for line in actions.slot_lines]
        self.empty = workspace.example(EMPTY_LINE)
        # Stand-ins for the actions a cost regression does not learn (VWBandit.learn_actions).
        self.stand_ins = [workspace.example(EMPTY_LINE) for _ in actions.lines]
        self.slot_index = actions.slots
        self.version = -1
        self.context_free: NDArray[np.float64] = np.zeros(len(self.actions))


class _SavedBandit(msgspec.Struct, frozen=True):
    learned: int  # SquareCB's t (VW's --squarecb keeps its own in its model file)
    vw_model: bytes


class VWBandit:
    """A probability over the allowed actions of each request, learned from outcomes.

    Action examples are parsed once per catalog and reused by every prediction (VW's ADF
    reduction adds the shared features to them and removes them again), so a request parses
    only its shared line.
    """

    def __init__(self, *, settings: BanditSettings, model_data: bytes | None = None) -> None:
        self.settings = settings
        self._arguments = vw_arguments(settings)
        self._scores = scores_costs(settings)
        self._factorised = self._scores and slot_factorisable(settings.interactions)
        saved = None
        if model_data is not None:
            saved = msgspec.msgpack.decode(model_data, type=_SavedBandit)
        self._workspace = _open_workspace(self._arguments, saved.vw_model if saved else None)
        self._label_type = self._workspace.get_label_type()
        if self._workspace.get_prediction_type() not in _SCORED_PREDICTIONS:
            raise ValueError(f"VW predicts {self._workspace.get_prediction_type()!r}, not "
                             "one score per action line")
        self._learned = saved.learned if saved else 0
        self._parsed: dict[str, _ParsedActions] = {}
        # Learning may reuse the parsed action examples only under an adaptive update: VW counts
        # examples (its `t`) when a multi-line example is finished, and parsed examples are
        # never finished; adaptive updates do not use that count, the others decay the
        # learning rate with it (tests/unit/learners/test_bandit.py compares both paths).
        self._learn_reuses_examples = settings.update_rule in ("default", "adaptive")

    @property
    def arguments(self) -> str:
        """VW's command line, plus the exploration applied here to its costs."""
        if self._scores:
            return (f"{self._arguments} | squarecb gamma_scale={self.settings.gamma_scale} "
                    f"gamma=scale*sqrt(K*t^{2 * GAMMA_EXPONENT:g}) "
                    f"factorised={self._factorised} "
                    f"stack_river={self.settings.stack_river}")
        return self._arguments

    @property
    def learned(self) -> int:
        """Outcomes learned so far (SquareCB's t)."""
        return self._learned

    def probabilities(
        self, shared: str, actions: ActionLines, indices: Sequence[int]
    ) -> list[float]:
        """Probability of each action ``actions.lines[i]`` for ``i`` in ``indices`` (float64,
        sums to 1)."""
        if not indices:
            raise ValueError("no action to choose from")
        if self._scores:
            return self.squarecb(self.costs(shared, actions, indices))
        parsed = self._parsed_examples(actions)
        examples = [parsed.actions[i] for i in indices]
        examples.insert(0, self._example(shared))
        return normalize(self._predict(examples))

    def costs(self, shared: str, actions: ActionLines, indices: Sequence[int]
              ) -> NDArray[np.float64]:
        """VW's predicted cost (−reward) of each action ``actions.lines[i]``, ``i`` in
        ``indices`` (SquareCB only: the other explorations predict probabilities)."""
        if not self._scores:
            raise ValueError(f"{self.settings.exploration} predicts probabilities, not costs")
        parsed = self._parsed_examples(actions)
        shared_example = self._example(shared)
        if not self._factorised:
            examples = [parsed.actions[i] for i in indices]
            examples.insert(0, shared_example)
            return np.asarray(self._predict(examples), dtype=np.float64)
        # One line per model, temperature and template namespace, and one without any: the
        # context's own terms are in every line, so each action's cost is the sum of its three
        # namespace lines, minus twice the empty line, plus its context-free terms.
        scored = np.asarray(
            self._predict([shared_example, *parsed.slots, parsed.empty]), dtype=np.float64
        )
        model, temperature, template = actions.slot_columns
        context_free = self._context_free(parsed)
        if indices != actions.all_indices:  # a constrained request: gather its actions
            chosen = np.asarray(indices, dtype=np.intp)
            model, temperature, template = model[chosen], temperature[chosen], template[chosen]
            context_free = context_free[chosen]
        # The three slot lines added left to right, as summing a row of three would.
        costs: NDArray[np.float64] = (scored[model] + scored[temperature] + scored[template]
                                      - 2.0 * scored[-1] + context_free)
        return costs

    def _example(self, line: str) -> Example:
        """``line`` parsed as one line of a multi-line example (pyvw's ``Workspace.example``
        without looking up the workspace's label type on every call)."""
        return Example(self._workspace, line, self._label_type)

    def _predict(self, examples: list[Example]) -> list[float]:
        """VW's score of each action line of the multi-line example ``examples`` (shared line
        first), in line order. This is pyvw's ``Workspace.predict`` for a list of parsed
        examples without its per-call type checks, prediction-type look-up and dispatch table
        (about 4 us of a route's 0.3 ms); the constructor checked the prediction type once."""
        pylibvw.vw.predict_multi(self._workspace, examples)
        scores: list[float] = examples[0].get_action_scores()
        return scores

    def _context_free(self, parsed: _ParsedActions) -> NDArray[np.float64]:
        """Each action's cost terms that involve no context feature (the interactions among
        its namespaces), recomputed after every learn: the full line's cost without context,
        minus its three namespace lines' costs without context, plus twice the empty line's
        (the constant)."""
        if parsed.version != self._learned:
            examples = [self._example(EMPTY_SHARED), *parsed.actions, *parsed.slots,
                        parsed.empty]
            scored = np.asarray(self._predict(examples), dtype=np.float64)
            count = len(parsed.actions)
            slot_costs = scored[count:-1]
            parsed.context_free = (scored[:count] - slot_costs[parsed.slot_index].sum(axis=1)
                                   + 2.0 * scored[-1])
            parsed.version = self._learned
        return parsed.context_free

    def squarecb(self, costs: NDArray[np.float64]) -> list[float]:
        """SquareCB's probabilities over ``costs`` with this bandit's γ schedule.

        A predicted reward above ``max_reward`` counts as ``max_reward``: no action can do
        better than the best reward, so two actions predicted at or above it have no gap.
        Without the cap, an action approved until its prediction reached ``max_reward`` lost
        probability at each further approval to an action the linear model put above the
        reward range (γ grows with every outcome, their gap did not shrink; docs/learning.md,
        "Action features"). Only the top is capped: an approval raises the approved action's
        prediction at least as much as any other's, and a cap at the bottom could hide that
        rise (an action predicted below ``min_reward`` would stay there while others rose)."""
        gamma = (self.settings.gamma_scale * float(self._learned) ** GAMMA_EXPONENT
                 * float(costs.size) ** 0.5)
        capped = np.maximum(costs, -self.settings.max_reward)  # cost = -reward
        return squarecb(capped, gamma)  # positive and summing to 1 by construction

    def _parsed_examples(self, actions: ActionLines) -> _ParsedActions:
        parsed = self._parsed.get(actions.key)
        if parsed is None:
            parsed = _ParsedActions(self._workspace, actions)
            self._parsed[actions.key] = parsed
        return parsed

    def _label(self, reward: float, propensity: float) -> str:
        # SquareCB regresses the chosen action's reward without an importance weight.
        return format_label(reward, 1.0 if self._scores else propensity)

    def learn(
        self,
        shared: str,
        action_lines: Sequence[str],
        chosen: int,
        reward: float,
        propensity: float,
    ) -> None:
        """Learn from one logged decision: ``chosen`` indexes ``action_lines``."""
        _check(chosen, len(action_lines), propensity)
        lines = [EMPTY_LINE] * len(action_lines) if self._scores else list(action_lines)
        lines[chosen] = f"{self._label(reward, propensity)} {action_lines[chosen]}"
        self._workspace.learn([shared, *lines])
        self._learned += 1

    def learn_actions(
        self,
        shared: str,
        actions: ActionLines,
        indices: Sequence[int],
        chosen: int,
        reward: float,
        propensity: float,
    ) -> None:
        """:meth:`learn` over the actions ``actions.lines[i]`` for ``i`` in ``indices``
        (``chosen`` indexes ``indices``). Under an adaptive update the parsed action examples
        are reused and only the shared line and the chosen action's labelled line are parsed:
        about 3x faster than parsing every line, with the same weights.

        With SquareCB (a cost regression) VW's ``mtr`` updates on the chosen line alone; the
        other lines only count, because VW scales the update by examples / action lines seen.
        So featureless lines stand in for them (in :meth:`learn` too): the same weights (a test
        compares them with learning every real line) for about half the work."""
        if not self._learn_reuses_examples:
            self.learn(shared, actions.select(indices), chosen, reward, propensity)
            return
        _check(chosen, len(indices), propensity)
        workspace = self._workspace
        parsed = self._parsed_examples(actions)
        if self._scores:
            examples = parsed.stand_ins[: len(indices)]
        else:
            examples = [parsed.actions[i] for i in indices]
        label = self._label(reward, propensity)
        examples[chosen] = workspace.example(f"{label} {actions.lines[indices[chosen]]}")
        examples.insert(0, workspace.example(shared))
        workspace.learn(examples)
        self._learned += 1

    def save(self) -> bytes:
        """The full learner state (weights, adaptive accumulators, SquareCB's t) as bytes."""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.vw")
            self._workspace.save(path)
            with open(path, "rb") as handle:
                model = handle.read()
        return msgspec.msgpack.encode(_SavedBandit(learned=self._learned, vw_model=model))

    def close(self) -> None:
        self._parsed.clear()
        self._workspace.finish()


# Prediction types read as one score per action line (Example.get_action_scores).
_SCORED_PREDICTIONS = (PredictionType.ACTION_SCORES, PredictionType.ACTION_PROBS)


def _check(chosen: int, count: int, propensity: float) -> None:
    if not 0 <= chosen < count:
        raise ValueError(f"chosen index {chosen} outside the {count} actions")
    if not 0.0 < propensity <= 1.0:
        raise ValueError(f"propensity {propensity} outside (0, 1]")
def _open_workspace(arguments: str, model_data: bytes | None) -> Workspace:
    if model_data is None:
        return Workspace(arguments)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.vw")
        with open(path, "wb") as handle:
            handle.write(model_data)
        return Workspace(f"{arguments} -i {path}")
