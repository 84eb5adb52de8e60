"""Training labels of the batch models, from one logged outcome.

- success: the outcome was ``approved`` (1) or not (0);
- quality: the feedback's ``quality`` (0–10), when given;
- generation time: the feedback's ``generation_time_s``, when given;
- complexity: the feedback's optional ``complexity`` rating (0–10); without one, the
  *difficulty score* below.

Difficulty score (0–10): ten times the weighted mean of the components that are known,

==========================  ======  =================================================
component (each in [0, 1])  weight  value
==========================  ======  =================================================
failure                     0.40    0 approved, 0.5 modified, 1 rejected
regenerations               0.15    min(regenerations, 3) / 3
low quality                 0.20    1 − quality / 10 (only when quality was given)
code complexity             0.25    min(ln(1 + cyclomatic complexity) / ln(51), 1)
                                    (only when code was sent with the feedback)
==========================  ======  =================================================

It is a proxy: a hard task tends to fail, be regenerated, score low and need complex code.
"""

from __future__ import annotations

import math

import msgspec

from learners.code_metrics import CodeMetrics
from learners.reward import Verdict

FAILURE = {Verdict.APPROVED: 0.0, Verdict.MODIFIED: 0.5, Verdict.REJECTED: 1.0}
LOG_51 = math.log(51.0)


class OutcomeLabels(msgspec.Struct, frozen=True):
    """What one outcome says, as the batch models' targets see it."""

    verdict: Verdict
    quality: float | None = None
    generation_time_s: float | None = None
    regenerations: int = 0
    complexity_rating: float | None = None
    code_metrics: CodeMetrics | None = None
    reward: float | None = None

    @property
    def success(self) -> float:
        return 1.0 if self.verdict is Verdict.APPROVED else 0.0

    @property
    def complexity(self) -> float:
        """The rating when given, else :func:`difficulty_score`."""
        if self.complexity_rating is not None:
            return self.complexity_rating
        return difficulty_score(self)


def difficulty_score(labels: OutcomeLabels) -> float:
    parts = [(0.40, FAILURE[labels.verdict]), (0.15, min(labels.regenerations, 3) / 3.0)]
    if labels.quality is not None:
        parts.append((0.20, 1.0 - labels.quality / 10.0))
    if labels.code_metrics is not None and labels.code_metrics.code_lines > 0:
        cc = labels.code_metrics.cyclomatic_complexity
        parts.append((0.25, min(math.log1p(cc) / LOG_51, 1.0)))
    weight = sum(w for w, _ in parts)
    return round(10.0 * sum(w * v for w, v in parts) / weight, 4)
