"""A greedy VW ``cb_adf`` policy trained offline on logged decisions (ips, dr or mtr).

Replay trains one on the older part of a log and evaluates it on the rest. Like
:mod:`learners.bandit.vw_bandit`, it keeps VW's conventions (cost = −reward, the logged
propensity as the label's probability) inside this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from vowpalwabbit import Workspace

from learners.bandit.settings import BanditSettings
from learners.bandit.vw_format import format_label

CbType = Literal["ips", "dr", "mtr"]


def cb_adf_arguments(settings: BanditSettings, cb_type: CbType) -> str:
    args = ["--cb_adf", f"--cb_type {cb_type}", "--quiet", f"-b {settings.bits}",
            f"-l {settings.learning_rate}", f"--random_seed {settings.seed}"]
    for pair in settings.interactions:
        args.append(f"{'-q' if len(pair) == 2 else '--cubic'} {pair}")
    return " ".join(args)


class CbAdfPolicy:
    """Learns costs per action from logged (features, chosen action, reward, propensity) and
    chooses the action of lowest predicted cost."""

    def __init__(self, *, settings: BanditSettings, cb_type: CbType) -> None:
        self.settings = settings
        self.cb_type = cb_type
        self._workspace = Workspace(cb_adf_arguments(settings, cb_type))
        self.learned = 0

    def learn(self, shared: str, action_lines: Sequence[str], chosen: int, reward: float,
              propensity: float) -> None:
        if not 0 <= chosen < len(action_lines):
            raise ValueError(f"chosen index {chosen} outside the {len(action_lines)} actions")
        example = [shared, *action_lines]
        example[chosen + 1] = f"{format_label(reward, propensity)} {action_lines[chosen]}"
        self._workspace.learn(example)
        self.learned += 1

    def choose(self, shared: str, action_lines: Sequence[str]) -> int:
        """Position (in ``action_lines``) of the action with the lowest predicted cost."""
        if not action_lines:
            raise ValueError("no action to choose from")
        costs = self._workspace.predict([shared, *action_lines])
        return min(range(len(action_lines)), key=lambda i: (float(costs[i]), i))

    def close(self) -> None:
        self._workspace.finish()
