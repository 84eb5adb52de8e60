"""The served policy (default configuration) learns on suite worlds it was not tuned on.

Three representative worlds of ``router bench-suite``, one seed each: price uncorrelated with
quality and strongly contextual rewards; price anti-correlated with quality (pricier is worse);
feedback delayed by 50-200 decisions. The router must beat uniform choice clearly and stay
near the best fixed action in hindsight (above it where context pays, as in the uncorrelated
world). Measured with seed 11: normalised score 0.643 / 0.782 / 0.833 and mean minus best fixed
+0.089 / -0.015 / -0.017. Other seeds spread widely (seeds 11-14: anti-correlated -0.010 to
-0.109, delayed -0.017 to -0.085 below best fixed), which is issue 17's robustness problem, not
a reason to loosen these bounds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from offline.bench.suite.baselines import references
from offline.bench.suite.router_contender import RouterContender, router_variants
from offline.bench.suite.runner import run_contender
from offline.bench.suite.worlds import SyntheticWorld, anticorrelated, delayed, uncorrelated
from router.settings import load_settings

SEED = 11  # not one of the suite's seeds (1-3)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make", "min_normalised", "min_above_best_fixed"),
    [(uncorrelated, 0.5, 0.03), (anticorrelated, 0.65, -0.04), (delayed, 0.7, -0.04)],
    ids=["uncorrelated", "anticorrelated", "delayed"],
)
def test_router_beats_uniform_and_nears_the_best_fixed_action(
        make: Callable[[], SyntheticWorld], min_normalised: float,
        min_above_best_fixed: float) -> None:
    world = make()
    settings = load_settings(None, {})
    variant = router_variants(settings.bandit, settings.drift, [])[0]
    steps, table = world.expected(SEED)
    router = RouterContender(variant, world.catalog, world.name, SEED)
    try:
        chosen = run_contender(router, world, steps, SEED)
    finally:
        router.close()
    mean = float(np.mean([table[i, a] for i, a in enumerate(chosen)]))
    refs = references(table)
    normalised = (mean - refs.uniform) / (refs.oracle - refs.uniform)
    assert normalised >= min_normalised, (mean, refs)
    assert mean >= refs.best_fixed + min_above_best_fixed, (mean, refs)
