"""``GET /metrics`` (Prometheus text format): requests, decisions, outcomes and learning.

:class:`ServiceMetrics` belongs to one app (``create_app`` makes it; nothing is registered in
prometheus_client's global registry):

- ``router_http_request_duration_seconds{method,route,status}``: a histogram of every HTTP
  request, labelled with the route's path template (``/v1/decisions/{decision_id}``, never the
  raw path) or ``(unmatched)``, the method (``OTHER`` for a non-standard one) and the status; its
  ``_count`` is the request count. :class:`RequestObserver` measures it around the whole app.
- ``router_decisions_total{model,template}``: new decisions (replays of a ``request_id`` are not
  counted).
- ``router_reward{model}`` and ``router_feedback_delay_seconds{model}``: histograms of each new
  outcome's reward and of the seconds from its decision to the feedback.
- :class:`LearningCollector`: drift alarms and learned outcomes; on a SQLite file, the writer
  process's commits and restarts, the feedback look-ups by connection and the WAL checkpoints.

With several worker processes each keeps its own values, and a scrape reaches one of them: so
``router serve --workers N`` (N > 1) runs prometheus_client's multi-process mode (every worker
writes its values to files in ``PROMETHEUS_MULTIPROC_DIR``; a scrape adds up all workers'
counters and histograms). The learning collector's values are then those of the worker that
answered: its learner state (the same in every worker once each has folded the log) and its own
SQLite counters.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from litestar import Response, get
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from prometheus_client import Counter as CounterMetric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from router.logs import log_access

if TYPE_CHECKING:
    from router.services.learning import LearnerService

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "(unmatched)"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds: a route call takes about 1-10 ms; 503s wait up to the storage timeout (5 s).
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REWARD_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # rewards are in [0, 1]
# Seconds from a decision to its feedback: a generation takes seconds, a review hours or days.
DELAY_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0,
                 7 * 86400.0)


class ServiceMetrics:
    """The app's metrics and the registry ``GET /metrics`` serves.

    ``multiprocess_dir``: prometheus_client's multi-process directory when the process was
    started with ``PROMETHEUS_MULTIPROC_DIR`` set (the metrics' values then live in its files,
    and a scrape reads every process's files), else None.
    """

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        self.learning = LearningCollector()
        self.registry.register(self.learning)
        if multiprocess_dir is None:  # per-process collectors mean nothing summed over workers
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
        self.requests = Histogram(
            "router_http_request_duration_seconds",
            "HTTP requests by method, route (path template) and status: seconds from the "
            "request's arrival at the app to the end of its response (_count: requests)",
            ["method", "route", "status"], buckets=REQUEST_BUCKETS, registry=self.registry,
        )
        self.decisions = CounterMetric(
            "router_decisions", "New decisions by chosen model and prompt template",
            ["model", "template"], registry=self.registry,
        )
        self.rewards = Histogram(
            "router_reward", "Reward of each new outcome, by the decision's model",
            ["model"], buckets=REWARD_BUCKETS, registry=self.registry,
        )
        self.feedback_delay = Histogram(
            "router_feedback_delay_seconds",
            "Seconds from a decision to its (first) feedback, by the decision's model",
            ["model"], buckets=DELAY_BUCKETS, registry=self.registry,
        )
        # Labelled children by label values: ``labels()`` validates and locks on every call.
        self._request_children: dict[tuple[str, str, int], Histogram] = {}
        self._decision_children: dict[tuple[str, str], CounterMetric] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(method, route, str(status))
        child.observe(seconds)

    def count_decision(self, model: str, template: str) -> None:
        key = (model, template)
        child = self._decision_children.get(key)
        if child is None:
            child = self._decision_children[key] = self.decisions.labels(model, template)
        child.inc()

    def observe_outcome(self, model: str, reward: float, delay_s: float) -> None:
        self.rewards.labels(model).observe(reward)
        self.feedback_delay.labels(model).observe(max(delay_s, 0.0))

    def exposition(self) -> bytes:
        """The Prometheus text of this app (of every worker in multi-process mode)."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        registry.register(self.learning)
        return generate_latest(registry)


class RequestObserver:
    """ASGI wrapper around the whole app (routing included, so unknown paths and 405s count):
    times each HTTP request into :class:`ServiceMetrics` and, when ``access_log`` is on,
    writes one access line (router/logs.py) after the response."""

    __slots__ = ("access_log", "app", "metrics")

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, *, access_log: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # when the app fails before it answers

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - started
            # A client can send any method token: keep the labels bounded.
            method: str = scope["method"] if scope["method"] in METHODS else "OTHER"
            route = scope.get("path_template") or UNMATCHED
            self.metrics.observe_request(method, route, status, seconds)
            if self.access_log:
                log_access(scope["method"], scope["path"], route, status, seconds)


@get("/metrics", summary="Prometheus metrics", tags=["operations"], sync_to_thread=False)
def metrics(state: State) -> Response[bytes]:
    service_metrics: ServiceMetrics = state.metrics
    return Response(service_metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def clear_multiprocess_dir(path: Path) -> None:
    """Remove the value files a previous run left in a multi-process directory (they would be
    added to this run's)."""
    for file in path.glob("*.db"):
        file.unlink()


class LearningCollector(Collector):
    """What the online policies of this process know, computed at scrape time; reports the
    learner attached last (the app's lifespan attaches its learner and detaches it at the
    end)."""

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
