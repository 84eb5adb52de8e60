"""What a training run reports about each batch model (kept apart from training, so the
registry that stores the reports need not import the training libraries)."""

from __future__ import annotations

import msgspec


class ModelReport(msgspec.Struct, frozen=True):
    """One model's hold-out metrics next to its baseline's, and how it was trained. A metric
    is NaN where the hold-out cannot define it (an AUC over a single class)."""

    name: str
    n_train: int
    n_holdout: int
    metrics: dict[str, float]
    baseline: dict[str, float]
    primary: str
    lower_is_better: bool
    beats_baseline: bool
    params: dict[str, float]

    @property
    def score(self) -> float:
        return self.metrics[self.primary]
