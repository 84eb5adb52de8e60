"""``router bench-models``: the batch models' speed targets, measured in one run.

1. Training: all five models on ``--n`` (default 100,000) logged decisions of the simulator's
   world (uniform logging policy), with the default training settings. Target: ≤ 120 s.
2. Serving: in-process ``RoutingService.route`` latency (default catalog, SQLite commit
   included) without any batch model and with the trained version current, measured in
   alternating blocks on the same request bodies so that machine noise hits both alike.
   Target: p50 with models at most 1 ms above p50 without.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

from learners.batch.models import dump_models
from learners.batch.settings import TrainSettings
from learners.batch.training import train_models
from offline.bench.throughput import generate_route_bodies
from offline.dataset import history_from_rows
from offline.synthetic import generate_history
from offline.world import World
from router.public import Settings, load_settings

TRAIN_TARGET_S = 120.0
P50_TARGET_MS = 1.0
BLOCKS = 4


def _progress(message: str) -> None:
    print(f"bench-models: {message}", file=sys.stderr, flush=True)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=100_000, help="logged decisions (100,000)")
    parser.add_argument("--route-n", type=int, default=1000,
                        help="route calls per block and configuration (default 1000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--config", help="TOML config (default: configs/default.toml)")
    parser.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    parser.add_argument("--steps", action="store_true",
                        help="also time the serving steps (main-thread CPU) in one more block")


class ModelsBenchReport(msgspec.Struct, frozen=True):
    decisions: int
    history_s: float
    train_s: float
    route_p50_without_ms: float
    route_p50_with_ms: float
    route_p99_without_ms: float
    route_p99_with_ms: float
    train_pass: bool
    latency_pass: bool


async def _route_latencies(settings: Settings, bodies: list[dict[str, object]], n: int,
                           register: bytes | None) -> list[float]:
    from router.public import RouteRequest, RoutingService, create_app

    requests = [msgspec.convert(body, RouteRequest) for body in bodies]
    samples: list[float] = []
    app = create_app(settings)
    async with app.lifespan():  # on this loop: routes call the app's objects directly
        routing: RoutingService = app.state.routing
        if register is not None:
            assert routing.models.current is not None
        tenant = settings.auth.default_tenant
        for request in requests[:100]:
            await routing.route(tenant, request)
        for i in range(n):
            started = time.perf_counter()
            await routing.route(tenant, requests[i % len(requests)])
            samples.append((time.perf_counter() - started) * 1e3)
    return samples


async def _register(settings: Settings, artifact: bytes, spec_hash: str) -> None:
    from datetime import UTC, datetime

    from router.public import CURRENT, ModelRegistry, NewVersion, create_engine, migrate

    engine = create_engine(settings.storage.url)
    try:
        await migrate(engine)
        now = datetime.now(UTC)
        await ModelRegistry(engine).add(NewVersion(
            version="bench", status=CURRENT, data_from=now, data_to=now, holdout_from=now,
            n_train=0, n_holdout=0, feature_spec_hash=spec_hash, metrics={}, gate=None,
            artifact=artifact, model_card="benchmark version\n"))
    finally:
        await engine.dispose()


def _serving_steps() -> list[tuple[str, Any, str]]:
    from learners.batch.models import BatchModels
    from learners.tabular import TabularEncoder
    from router.public import BatchView

    return [
        ("feature matrix, template ranking, predictions", BatchView, "compute"),
        ("  feature matrix", TabularEncoder, "matrix"),
        ("  template ranking", BatchModels, "rank_templates"),
        ("  predictions of the greedy and the chosen action", BatchModels, "predict_rows"),
        ("contributions of the chosen action", BatchModels, "success_contributions"),
    ]


@contextmanager
def _timed_steps(samples: dict[str, list[float]]) -> Iterator[None]:
    """Record each serving step's main-thread CPU time (``time.thread_time``, so that other
    processes on the machine count less than in wall time) while the block runs."""
    originals = [(owner, name, owner.__dict__[name]) for _, owner, name in _serving_steps()]

    def timed(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                samples.setdefault(label, []).append((time.thread_time() - started) * 1e3)
        return run

    try:
        for (label, owner, name), (_, _, original) in zip(_serving_steps(), originals,
                                                          strict=True):
            if isinstance(original, classmethod):
                setattr(owner, name, classmethod(timed(label, original.__func__)))
            else:
                setattr(owner, name, timed(label, original))
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config, {})
    catalog = settings.catalog
    _progress(f"generating {args.n} logged decisions")
    started = time.perf_counter()
    rows = generate_history(World(catalog=catalog, seed=args.seed), args.n, seed=args.seed)
    history = history_from_rows(rows, [catalog])
    history_s = time.perf_counter() - started
    _progress(f"history ready in {history_s:.1f} s; training five models")
    started = time.perf_counter()
    models, result, _ = train_models(history, catalog, TrainSettings())
    train_s = time.perf_counter() - started
    _progress(f"trained in {train_s:.1f} s; timing route without and with models")
    bodies = generate_route_bodies(2000, args.seed)
    with tempfile.TemporaryDirectory(prefix="router-bench-models-") as tmp:
        plain = load_settings(args.config, {"ROUTER__STORAGE__URL":
                                            f"sqlite+aiosqlite:///{tmp}/plain.db"})
        batch = load_settings(args.config, {"ROUTER__STORAGE__URL":
                                            f"sqlite+aiosqlite:///{tmp}/batch.db"})
        from router.public import load_keyring

        artifact = dump_models(models, load_keyring(batch))
        asyncio.run(_register(batch, artifact, models.encoder.spec_hash))
        without: list[float] = []
        with_models: list[float] = []
        p50_without: list[float] = []
        p50_with: list[float] = []
        for _ in range(BLOCKS):
            a = asyncio.run(_route_latencies(plain, bodies, args.route_n, None))
            b = asyncio.run(_route_latencies(batch, bodies, args.route_n, artifact))
            without += a
            with_models += b
            p50_without.append(statistics.median(a))
            p50_with.append(statistics.median(b))
        steps: dict[str, list[float]] = {}
        if args.steps:
            with _timed_steps(steps):
                asyncio.run(_route_latencies(batch, bodies, args.route_n, artifact))
    report = ModelsBenchReport(
        decisions=args.n, history_s=round(history_s, 2), train_s=round(train_s, 2),
        route_p50_without_ms=round(statistics.median(p50_without), 3),
        route_p50_with_ms=round(statistics.median(p50_with), 3),
        route_p99_without_ms=round(_percentile(without, 99), 3),
        route_p99_with_ms=round(_percentile(with_models, 99), 3),
        train_pass=train_s <= TRAIN_TARGET_S,
        latency_pass=statistics.median(p50_with) - statistics.median(p50_without)
        <= P50_TARGET_MS,
    )
    print(f"command: router bench-models --n {args.n} --route-n {args.route_n} "
          f"--seed {args.seed}{' --steps' if args.steps else ''}")
    print(f"training five models on {args.n} decisions: {report.train_s:.1f} s "
          f"(history features {report.history_s:.1f} s, not counted); "
          f"{'PASS' if report.train_pass else 'FAIL'} <= {TRAIN_TARGET_S:.0f} s")
    for name, r in result.reports.items():
        print(f"  {name:<11}{r.primary:<12}{r.score:>9.4f}  baseline "
              f"{r.baseline[r.primary]:.4f}  {'beats' if r.beats_baseline else 'does NOT beat'}")
    delta = report.route_p50_with_ms - report.route_p50_without_ms
    print(f"route p50 without models {report.route_p50_without_ms:.3f} ms, with models "
          f"{report.route_p50_with_ms:.3f} ms (+{delta:.3f} ms; p99 "
          f"{report.route_p99_without_ms:.2f} / {report.route_p99_with_ms:.2f} ms); "
          f"{'PASS' if report.latency_pass else 'FAIL'} <= +{P50_TARGET_MS:.0f} ms")
    for label, values in steps.items():
        print(f"  {label:<56}{statistics.median(values):7.3f} ms  (median CPU per route)")
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(report)))
    return 0 if report.train_pass and report.latency_pass else 1
