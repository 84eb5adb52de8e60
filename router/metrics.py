"""``GET /metrics`` (Prometheus text format): the learning state of this process.

Litestar's :class:`PrometheusController` serves the default registry; :class:`LearningCollector`
adds, at scrape time, what the online policy knows: drift alarms (active and raised so far, per
model and stream) and the number of outcomes learned. The request-timing middleware is left out
on purpose: it costs every route call, and a reverse proxy measures requests just as well.
With several workers each process answers for itself (Prometheus scrapes them as targets, or set
``PROMETHEUS_MULTIPROC_DIR`` for prometheus_client's multi-process mode).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from router.services.learning import LearnerService


class LearningCollector(Collector):
    def __init__(self, learner: LearnerService) -> None:
        self.learner = learner

    def collect(self) -> Iterator[Metric]:
        drift = self.learner.policy.drift
        active = GaugeMetricFamily(
            "router_drift_alarm_active",
            "1 while a drift alarm of the model's outcome stream is in its adaptation period",
            labels=["model", "stream"],
        )
        for alarm in drift.active:
            active.add_metric([alarm.model, alarm.stream], 1.0)
        yield active
        raised = CounterMetricFamily(
            "router_drift_alarms", "Drift alarms raised since the log began (replayed on start)",
            labels=["model", "stream"],
        )
        for (model, stream), count in sorted(
            Counter((a.model, a.stream) for a in drift.history).items()
        ):
            raised.add_metric([model, stream], float(count))
        yield raised
        yield GaugeMetricFamily(
            "router_learned_outcomes", "Outcomes folded into the online policy",
            value=float(self.learner.applied_seq),
        )
