"""``GET /metrics`` (Prometheus text format): the learning state of this process.

Litestar's :class:`PrometheusController` serves the default registry; :class:`LearningCollector`
adds, at scrape time, what the online policies know: drift alarms (active and raised so far, per
model and stream, over every tenant's learner state, without naming tenants) and the number of
outcomes learned; and, on a SQLite file, the writer process's commits and restarts and its WAL
checkpoints (complete ones, after which the WAL starts over). The
request-timing middleware is left out on purpose: it costs every route call, and a reverse proxy
measures requests just as well. With several workers each process answers for itself
(Prometheus scrapes them as targets, or set ``PROMETHEUS_MULTIPROC_DIR`` for prometheus_client's
multi-process mode).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from router.services.learning import LearnerService


class LearningCollector(Collector):
    """Registered once per process; reports the learner of the app started last (a process
    serves one app; tests start several, and a metric name may be registered only once)."""

    def __init__(self) -> None:
        self._learners: list[LearnerService] = []

    def attach(self, learner: LearnerService) -> None:
        self._learners.append(learner)

    def detach(self, learner: LearnerService) -> None:
        self._learners = [x for x in self._learners if x is not learner]

    def collect(self) -> Iterator[Metric]:
        if not self._learners:
            return
        learner = self._learners[-1]
        monitors = [policy.drift for _, policy in learner.policies.policies()]
        active = GaugeMetricFamily(
            "router_drift_alarm_active",
            "1 while a drift alarm of the model's outcome stream is in its adaptation period "
            "(in any tenant's learner state)",
            labels=["model", "stream"],
        )
        for model, stream in sorted({(a.model, a.stream) for d in monitors for a in d.active}):
            active.add_metric([model, stream], 1.0)
        yield active
        raised = CounterMetricFamily(
            "router_drift_alarms", "Drift alarms raised since the log began (replayed on start)",
            labels=["model", "stream"],
        )
        for (model, stream), count in sorted(
            Counter((a.model, a.stream) for d in monitors for a in d.history).items()
        ):
            raised.add_metric([model, stream], float(count))
        yield raised
        yield GaugeMetricFamily(
            "router_learned_outcomes", "Outcomes folded into the online policy",
            value=float(learner.applied_seq),
        )
        writer = learner.log.writer
        if writer is None:  # PostgreSQL or in-memory SQLite
            return
        stats = writer.stats
        yield CounterMetricFamily(
            "router_sqlite_writer_process_transactions",
            "Hot-path SQLite transactions (decision batches, outcomes) committed by the "
            "running writer process",
            value=float(stats.writes),
        )
        yield CounterMetricFamily(
            "router_sqlite_writer_process_starts",
            "SQLite writer processes started (more than 1: one died and was replaced)",
            value=float(writer.starts),
        )
        lookups = CounterMetricFamily(
            "router_sqlite_lookups",
            "Point look-ups of the request path (a feedback's decision and outcome): on the "
            "event loop's connection, or on the async engine when SQLite refused them there",
            labels=["connection"],
        )
        lookups.add_metric(["loop"], float(learner.log.loop_reads))
        lookups.add_metric(["async_engine"], float(learner.log.busy_reads))
        yield lookups
        checkpoints = CounterMetricFamily(
            "router_sqlite_checkpoints",
            "WAL checkpoints of the running writer process; complete ones let the next write "
            "start the WAL over",
            labels=["complete"],
        )
        checkpoints.add_metric(["true"], float(stats.complete_checkpoints))
        checkpoints.add_metric(["false"], float(stats.checkpoints - stats.complete_checkpoints))
        yield checkpoints
        if stats.wal_frames >= 0:
            yield GaugeMetricFamily(
                "router_sqlite_wal_frames",
                "Frames in the WAL when the last checkpoint ran (it starts over after a "
                "complete one)",
                value=float(stats.wal_frames),
            )


@functools.cache
def learning_collector() -> LearningCollector:
    """The process's collector, registered in prometheus_client's default registry."""
    collector = LearningCollector()
    REGISTRY.register(collector)
    return collector
