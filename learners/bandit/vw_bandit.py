"""Contextual bandit over catalog actions with Vowpal Wabbit's ``cb_explore_adf``.

One :class:`VWBandit` owns one VW workspace for the life of the process (workspaces are not
thread-safe and are costly to create). Rewards enter as ``cost = -reward`` and the logged
propensity is the label's probability; both conventions stay inside this module.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Annotated, Literal

import msgspec
from msgspec import Meta
from vowpalwabbit import Example, Workspace

from learners.bandit.sampling import normalize
from learners.bandit.vw_format import format_action, format_label
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
    gamma_scale: Annotated[float, Meta(gt=0.0)] = 200.0
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

    def __post_init__(self) -> None:
        if not self.min_reward < self.max_reward:
            raise ValueError(
                f"min_reward ({self.min_reward}) must be below max_reward ({self.max_reward})"
            )


def vw_arguments(settings: BanditSettings) -> str:
    """The VW command line for ``settings``."""
    args = ["--cb_explore_adf", "--quiet", f"-b {settings.bits}", f"-l {settings.learning_rate}"]
    args.append(f"--random_seed {settings.seed}")
    if settings.update_rule != "default":
        args.append(_UPDATE_FLAGS[settings.update_rule])
    match settings.exploration:
        case "epsilon":
            args.append(f"--epsilon {settings.epsilon}")
        case "squarecb":
            args.append(f"--squarecb --gamma_scale {settings.gamma_scale}")
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
    (re-formatted only when the set of drifting models changes)."""

    def __init__(self, catalog: Catalog, drifting: frozenset[str] = frozenset()) -> None:
        self.fingerprint = catalog.fingerprint
        self.drifting = drifting
        self.key = f"{catalog.fingerprint}|{','.join(sorted(drifting))}"
        self.lines: tuple[str, ...] = tuple(
            format_action(a, a.model.name in drifting) for a in catalog.actions
        )

    def select(self, indices: Sequence[int]) -> list[str]:
        lines = self.lines
        return [lines[i] for i in indices]


class VWBandit:
    """``cb_explore_adf`` policy: a probability over the allowed actions of each request.

    Action examples are parsed once per catalog and reused by every prediction (VW's ADF
    reduction adds the shared features to them and removes them again), so a request parses
    only its shared line: about 6x faster than parsing every action line per request.
    """

    def __init__(self, *, settings: BanditSettings, model_data: bytes | None = None) -> None:
        self.settings = settings
        self._arguments = vw_arguments(settings)
        self._workspace = _open_workspace(self._arguments, model_data)
        self._parsed: dict[str, list[Example]] = {}
        # Learning may reuse the parsed action examples only under an adaptive update: VW counts
        # examples (its `t`) when a multi-line example is finished, and parsed examples are
        # never finished; adaptive updates do not use that count, the others decay the
        # learning rate with it (tests/unit/learners/test_bandit.py compares both paths).
        self._learn_reuses_examples = settings.update_rule in ("default", "adaptive")

    @property
    def arguments(self) -> str:
        return self._arguments

    def probabilities(
        self, shared: str, actions: ActionLines, indices: Sequence[int]
    ) -> list[float]:
        """Probability of each action ``actions.lines[i]`` for ``i`` in ``indices`` (float64,
        sums to 1)."""
        if not indices:
            raise ValueError("no action to choose from")
        parsed = self._parsed_examples(actions)
        workspace = self._workspace
        examples = [parsed[i] for i in indices]
        examples.insert(0, workspace.example(shared))
        pmf = workspace.predict(examples)
        return normalize(pmf)

    def _parsed_examples(self, actions: ActionLines) -> list[Example]:
        parsed = self._parsed.get(actions.key)
        if parsed is None:
            parsed = [self._workspace.example(line) for line in actions.lines]
            self._parsed[actions.key] = parsed
        return parsed

    def probabilities_for_lines(self, shared: str, lines: Sequence[str]) -> list[float]:
        """Probabilities over actions given as text lines (parsed per call)."""
        if not lines:
            raise ValueError("no action to choose from")
        workspace = self._workspace
        examples = [workspace.example(shared), *(workspace.example(line) for line in lines)]
        pmf = workspace.predict(examples)
        workspace.finish_example(examples)
        return normalize(pmf)

    def learn(
        self,
        shared: str,
        action_lines: Sequence[str],
        chosen: int,
        reward: float,
        propensity: float,
    ) -> None:
        """Learn from one logged decision: ``chosen`` indexes ``action_lines``."""
        if not 0 <= chosen < len(action_lines):
            raise ValueError(f"chosen index {chosen} outside the {len(action_lines)} actions")
        if not 0.0 < propensity <= 1.0:
            raise ValueError(f"propensity {propensity} outside (0, 1]")
        example = [shared, *action_lines]
        example[chosen + 1] = f"{format_label(reward, propensity)} {action_lines[chosen]}"
        self._workspace.learn(example)

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
        about 3x faster than parsing every line, with the same weights."""
        if not self._learn_reuses_examples:
            self.learn(shared, actions.select(indices), chosen, reward, propensity)
            return
        if not 0 <= chosen < len(indices):
            raise ValueError(f"chosen index {chosen} outside the {len(indices)} actions")
        if not 0.0 < propensity <= 1.0:
            raise ValueError(f"propensity {propensity} outside (0, 1]")
        workspace = self._workspace
        parsed = self._parsed_examples(actions)
        examples = [parsed[i] for i in indices]
        label = format_label(reward, propensity)
        examples[chosen] = workspace.example(f"{label} {actions.lines[indices[chosen]]}")
        examples.insert(0, workspace.example(shared))
        workspace.learn(examples)

    def save(self) -> bytes:
        """The full learner state (weights and adaptive accumulators) as bytes."""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.vw")
            self._workspace.save(path)
            with open(path, "rb") as handle:
                return handle.read()

    def close(self) -> None:
        self._parsed.clear()
        self._workspace.finish()


def _open_workspace(arguments: str, model_data: bytes | None) -> Workspace:
    if model_data is None:
        return Workspace(arguments)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.vw")
        with open(path, "wb") as handle:
            handle.write(model_data)
        return Workspace(f"{arguments} -i {path}")
