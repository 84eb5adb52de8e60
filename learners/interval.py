"""An off-policy estimate with its confidence intervals.

``offline.replay`` computes these; the router stores them as the evidence of a promotion
(``policy_promotions.estimates``), so the type lives where both may import it.
"""

from __future__ import annotations

import msgspec


class Interval(msgspec.Struct, frozen=True):
    """An estimate with its intervals. The intervals include the widening over unsupported
    actions and are clipped to the reward range; ``clipped`` is True when clipping moved an
    end (the estimate itself is never clipped). Any of the numbers may be NaN (too few rows
    for a variance)."""

    value: float
    ci: tuple[float, float]
    ci_analytic: tuple[float, float]
    se: float
    clipped: bool = False
