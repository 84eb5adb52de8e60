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
    # Serving cost grows with trees (every route scores all allowed actions): on 100,000
    # simulated decisions a cap of 80 instead of 150 cost +0.001 success log-loss (0.5344 vs
    # 0.5334) and cut the success and quality ensembles from 149 + 113 to 61 + 72 trees.
    max_trees: Annotated[int, Meta(ge=1, le=5000)] = 80
    min_examples: Annotated[int, Meta(ge=20)] = 200
    threads: Annotated[int, Meta(ge=1, le=64)] = 2
    seed: int = 7
    promotion_tolerance: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.02
