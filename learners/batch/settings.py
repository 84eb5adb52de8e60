"""Training options of the batch models (config section ``[training]``)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta


class TrainSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Training options (config section ``[training]``)."""

    holdout_fraction: Annotated[float, Meta(gt=0.0, lt=0.9)] = 0.2
    calibration_fraction: Annotated[float, Meta(gt=0.0, lt=0.9)] = 0.2
    folds: Annotated[int, Meta(ge=2, le=10)] = 3
    search_budget_s: Annotated[float, Meta(ge=0.0)] = 40.0
    max_trees: Annotated[int, Meta(ge=1, le=5000)] = 150
    min_examples: Annotated[int, Meta(ge=20)] = 200
    threads: Annotated[int, Meta(ge=1, le=64)] = 2
    seed: int = 7
    promotion_tolerance: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.02
