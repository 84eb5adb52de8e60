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

# RegCB (--regcb / --regcbopt) is left out: in vowpalwabbit 9.11 its cb_explore_adf predictions
# come back as 1.0 for every action or stay uniform after learning (tests/unit/learners).
Exploration = Literal["epsilon", "squarecb", "cover", "bag", "softmax"]


class BanditSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Hyper-parameters of the VW bandit (config section ``[bandit]``)."""

    exploration: Exploration = "squarecb"
    epsilon: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.05
    gamma_scale: Annotated[float, Meta(gt=0.0)] = 200.0
    bag_size: Annotated[int, Meta(ge=2, le=64)] = 5
    cover_size: Annotated[int, Meta(ge=1, le=64)] = 5
    softmax_lambda: Annotated[float, Meta(gt=0.0)] = 10.0
    bits: Annotated[int, Meta(ge=12, le=28)] = 18
    learning_rate: Annotated[float, Meta(gt=0.0, le=100.0)] = 0.5
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


def vw_arguments(settings: BanditSettings) -> str:
    """The VW command line for ``settings``."""
    args = ["--cb_explore_adf", "--quiet", f"-b {settings.bits}", f"-l {settings.learning_rate}"]
    args.append(f"--random_seed {settings.seed}")
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
        parsed = self._parsed.get(actions.key)
        if parsed is None:
            parsed = [self._workspace.example(line) for line in actions.lines]
            self._parsed[actions.key] = parsed
        workspace = self._workspace
        examples = [parsed[i] for i in indices]
        examples.insert(0, workspace.example(shared))
        pmf = workspace.predict(examples)
        return normalize(pmf)

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
