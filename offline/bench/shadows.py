"""``router bench-shadows``: what shadow policies add to a route call, measured in-process.

``RoutingService.route`` (default catalog, SQLite commit included) is timed on the same request
bodies without shadows and with ``--shadows`` of them (epsilon-greedy and softmax candidates,
alternately), in alternating blocks so that machine noise hits both alike. Each shadow costs
one more VW prediction over the allowed actions and its probabilities in the decision row.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time

import msgspec

from offline.bench.throughput import generate_route_bodies
from offline.progress import progress_bar
from router.public import Settings, load_settings

CANDIDATES = ({"EXPLORATION": "epsilon", "EPSILON": "0.1"},
              {"EXPLORATION": "softmax", "SOFTMAX_LAMBDA": "5"})


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--route-n", type=int, default=1000,
                        help="route calls per block and configuration (default 1000)")
    parser.add_argument("--blocks", type=int, default=4, help="alternating blocks (default 4)")
    parser.add_argument("--shadows", type=int, default=2, help="shadows to compare (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--config", help="TOML config (default: configs/default.toml)")


def shadow_environ(count: int) -> dict[str, str]:
    """``ROUTER__SHADOW__...`` overrides for ``count`` candidate configurations."""
    environ: dict[str, str] = {}
    for i in range(count):
        for key, value in CANDIDATES[i % len(CANDIDATES)].items():
            environ[f"ROUTER__SHADOW__C{i}__{key}"] = value
        environ[f"ROUTER__SHADOW__C{i}__SEED"] = str(100 + i)
    return environ


async def route_latencies(settings: Settings, bodies: list[dict[str, object]],
                          n: int) -> list[float]:
    from router.public import RouteRequest, RoutingService, create_app

    requests = [msgspec.convert(body, RouteRequest) for body in bodies]
    samples: list[float] = []
    app = create_app(settings)
    async with app.lifespan():  # on this loop: routes call the app's objects directly
        routing: RoutingService = app.state.routing
        tenant = settings.auth.default_tenant
        for request in requests[:100]:  # warm-up: caches, VW, SQLite pages
            await routing.route(tenant, request)
        for i in range(n):
            started = time.perf_counter()
            await routing.route(tenant, requests[i % len(requests)])
            samples.append((time.perf_counter() - started) * 1e3)
    return samples


def run(args: argparse.Namespace) -> int:
    if args.route_n < 1 or args.blocks < 1 or not 1 <= args.shadows <= 8:
        print("router bench-shadows: --route-n and --blocks must be >= 1, --shadows 1-8",
              file=sys.stderr)
        return 2
    bodies = generate_route_bodies(2000, args.seed)
    results: dict[int, tuple[list[float], list[float]]] = {0: ([], []), args.shadows: ([], [])}
    with (tempfile.TemporaryDirectory(prefix="router-bench-shadows-") as tmp,
          progress_bar("bench-shadows", args.blocks * len(results)) as bar):
        for block in range(args.blocks):
            for count, (samples, p50s) in results.items():
                settings = load_settings(args.config, {
                    "ROUTER__STORAGE__URL": f"sqlite+aiosqlite:///{tmp}/s{count}-{block}.db",
                    **shadow_environ(count)})
                block_samples = asyncio.run(route_latencies(settings, bodies, args.route_n))
                samples += block_samples
                p50s.append(statistics.median(block_samples))
                bar.log(f"bench-shadows: block {block + 1}/{args.blocks}, {count} shadows: p50 "
                        f"{p50s[-1]:.3f} ms")
                bar.advance()
    print(f"command: router bench-shadows --route-n {args.route_n} --blocks {args.blocks} "
          f"--shadows {args.shadows} --seed {args.seed}")
    print(f"{'RoutingService.route':<28}{'calls':>8}{'p50 ms':>10}{'p99 ms':>10}")
    for count, (samples, p50s) in results.items():
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        print(f"{f'{count} shadows':<28}{len(samples):>8,}{statistics.median(p50s):>10.3f}"
              f"{p99:>10.3f}")
    base, shadowed = (statistics.median(p50s) for _, p50s in results.values())
    print(f"p50 added by {args.shadows} shadows: {shadowed - base:+.3f} ms "
          "(median of the per-block p50s)")
    return 0
