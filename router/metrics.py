"""``GET /metrics`` (Prometheus text format): the learning state of this process.

Litestar's :class:`PrometheusController` serves the default registry; :class:`LearningCollector`
adds, at scrape time, what the online policies know: drift alarms (active and raised so far, per
model and stream, over every tenant's learner state, without naming tenants) and the number of
outcomes learned; and, on a SQLite file, how the event log's
hot-path statements ran (on the loop's thread, or refused there because another process was
writing) and its WAL checkpoints (complete ones, after which the WAL starts over). The
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
        policies = [policy for _, policy in learner.policies.policies()]
        active = GaugeMetricFamily(
            "router_drift_alarm_active",
            "1 while a drift alarm of the model's outcome stream is in its adaptation period "
            "(in any tenant's learner state)",
            labels=["model", "stream"],
        )
        active_keys = {(a.model, a.stream) for p in policies for a in p.active_alarms}
        for model, stream in sorted(active_keys):
            active.add_metric([model, stream], 1.0)
        yield active
        raised = CounterMetricFamily(
            "router_drift_alarms", "Drift alarms raised since the log began (replayed on start)",
            labels=["model", "stream"],
        )
        for (model, stream), count in sorted(
            Counter((a.model, a.stream) for p in policies for a in p.raised_alarms).items()
        ):
            raised.add_metric([model, stream], float(count))
        yield raised
        yield GaugeMetricFamily(
            "router_learned_outcomes", "Outcomes folded into the online policy",
            value=float(learner.applied_seq),
        )
        inline = learner.log.inline
        if inline is None:  # PostgreSQL or in-memory SQLite
            return
        transactions = CounterMetricFamily(
            "router_sqlite_inline_transactions",
            "Hot-path SQLite transactions committed on the event loop's thread",
            labels=["kind"],
        )
        transactions.add_metric(["write"], float(inline.writes))
        transactions.add_metric(["read"], float(inline.reads))
        yield transactions
        yield CounterMetricFamily(
            "router_sqlite_busy_fallbacks",
            "Hot-path statements SQLite refused on the loop's thread because another "
            "connection held its lock; they ran in the writer or reader thread instead",
            value=float(inline.busy),
        )
        process = learner.log.process
        stats = None if process is None else process.stats
        if stats is not None:
            yield CounterMetricFamily(
                "router_sqlite_writer_process_transactions",
                "Hot-path SQLite transactions (decision batches, outcomes) committed by the "
                "writer process",
                value=float(stats.writes),
            )
        checkpoints = CounterMetricFamily(
            "router_sqlite_checkpoints",
            "WAL checkpoints; complete ones let the next write start the WAL over",
            labels=["complete"],
        )
        complete, total = inline.complete_checkpoints, inline.checkpoints
        if stats is not None:
            complete, total = complete + stats.complete_checkpoints, total + stats.checkpoints
        checkpoints.add_metric(["true"], float(complete))
        checkpoints.add_metric(["false"], float(total - complete))
        yield checkpoints
        last = inline.last_checkpoint
        wal_frames = (
            stats.wal_frames if stats is not None and stats.wal_frames >= 0
            else None if last is None else last.wal_frames
        )
        if wal_frames is not None:
            yield GaugeMetricFamily(
                "router_sqlite_wal_frames",
                "Frames in the WAL when the last checkpoint ran (it starts over after a "
                "complete one)",
                value=float(wal_frames),
            )


@functools.cache
def learning_collector() -> LearningCollector:
    """The process's collector, registered in prometheus_client's default registry."""
    collector = LearningCollector()
    REGISTRY.register(collector)
    return collector
