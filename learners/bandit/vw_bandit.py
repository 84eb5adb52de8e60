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

import msgspec
import numpy as np
import pylibvw
from numpy.typing import NDArray
from vowpalwabbit import Example, PredictionType, Workspace

from learners.bandit.action_lines import ActionLines
from learners.bandit.sampling import normalize, squarecb
from learners.bandit.settings import BanditSettings, scores_costs, slot_factorisable, vw_arguments
from learners.bandit.vw_format import EMPTY_LINE, EMPTY_SHARED, format_label, format_shared
from learners.features import Namespaces
from learners.protocol import SnapshotError

# SquareCB's γ = gamma_scale · √(K·t) with K allowed actions after t learned outcomes: VW's
# t^0.5 schedule, and √K as in Foster & Rakhlin's γ = √(K·T/…) (docs/learning.md, Exploration).
GAMMA_EXPONENT = 0.5


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


class BanditQuery(msgspec.Struct, frozen=True):
    """A context's namespaces (as the bandit sees them) and the allowed actions, catalog
    indices into ``actions``."""

    namespaces: Namespaces
    actions: ActionLines
    allowed: list[int]


class BanditEvent(msgspec.Struct, frozen=True):
    """One logged decision's outcome: the context, the allowed actions, the chosen position
    in ``allowed``, the reward and the logged propensity."""

    namespaces: Namespaces
    actions: ActionLines
    allowed: list[int]
    chosen_position: int
    reward: float
    propensity: float


class _SavedBandit(msgspec.Struct, frozen=True):
    learned: int  # SquareCB's t (VW's --squarecb keeps its own in its model file)
    vw_model: bytes


class VWBandit:
    """A probability over the allowed actions of each request, learned from outcomes.

    Action examples are parsed once per catalog and reused by every prediction (VW's ADF
    reduction adds the shared features to them and removes them again), so a request parses
    only its shared line.
    """

    def __init__(self, *, settings: BanditSettings) -> None:
        self.settings = settings
        self._arguments = vw_arguments(settings)
        self._scores = scores_costs(settings)
        self._factorised = self._scores and slot_factorisable(settings.interactions)
        self._workspace = _open_workspace(self._arguments, None)
        self._label_type = self._workspace.get_label_type()
        self._learned = 0
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

    def predict_one(self, query: BanditQuery) -> list[float]:
        """Probability of each allowed action (same order as ``query.allowed``)."""
        return self.probabilities(format_shared(query.namespaces), query.actions, query.allowed)

    def predicted_costs(self, query: BanditQuery) -> NDArray[np.float64]:
        """VW's predicted cost (−reward) of each allowed action (SquareCB only)."""
        return self.costs(format_shared(query.namespaces), query.actions, query.allowed)

    def learn_one(self, event: BanditEvent) -> None:
        """Learn one logged decision's outcome (:meth:`learn_actions`)."""
        self.learn_actions(format_shared(event.namespaces), event.actions, event.allowed,
                           event.chosen_position, event.reward, event.propensity)

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
        # Namespaces every allowed action shares score them all alike: learning them would only
        # take a share of the update (``[bandit] drop_constant_actions``).
        varying = actions.varying_lines(indices) if self.settings.drop_constant_actions else None
        lines = actions.select(indices) if varying is None else varying
        if not self._learn_reuses_examples:
            self.learn(shared, lines, chosen, reward, propensity)
            return
        _check(chosen, len(indices), propensity)
        workspace = self._workspace
        parsed = self._parsed_examples(actions)
        if self._scores:
            examples = parsed.stand_ins[: len(indices)]
        elif varying is None:
            examples = [parsed.actions[i] for i in indices]
        else:
            examples = [workspace.example(line) for line in lines]
        label = self._label(reward, propensity)
        examples[chosen] = workspace.example(f"{label} {lines[chosen]}")
        examples.insert(0, workspace.example(shared))
        workspace.learn(examples)
        self._learned += 1

    def snapshot(self) -> bytes:
        """The full learner state (weights, adaptive accumulators, SquareCB's t) as bytes."""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.vw")
            self._workspace.save(path)
            with open(path, "rb") as handle:
                model = handle.read()
        return msgspec.msgpack.encode(_SavedBandit(learned=self._learned, vw_model=model))

    def restore(self, data: bytes) -> None:
        """Replace the workspace with one loaded from a :meth:`snapshot` of these settings."""
        try:
            saved = msgspec.msgpack.decode(data, type=_SavedBandit)
            workspace = _open_workspace(self._arguments, saved.vw_model)
        except (msgspec.DecodeError, msgspec.ValidationError, RuntimeError) as exc:
            raise SnapshotError(f"not a VW bandit snapshot: {exc}") from exc
        self.close()
        self._workspace = workspace
        self._label_type = workspace.get_label_type()
        self._learned = saved.learned

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
        workspace = Workspace(arguments)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.vw")
            with open(path, "wb") as handle:
                handle.write(model_data)
            workspace = Workspace(f"{arguments} -i {path}")
    if workspace.get_prediction_type() not in _SCORED_PREDICTIONS:
        kind = workspace.get_prediction_type()
        workspace.finish()
        raise ValueError(f"VW predicts {kind!r}, not one score per action line")
    return workspace
