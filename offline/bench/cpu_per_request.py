"""CPU time per route and per feedback call, in-process, on a fresh SQLite file.

Builds the app from ``configs/default.toml``, routes and gives feedback ``--concurrency`` calls
at a time through ``RoutingService`` (no HTTP), and prints, per request: the CPU time of the
event loop's thread (the service's bottleneck under load), of the whole service process (its
threads included), and of the SQLite writer process. CPU time moves much less with other load
on the machine than throughput does, so two versions of the code compare in one or two runs::

    python -m offline.bench.cpu_per_request --n 2000 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from collections.abc import Awaitable, Callable

import msgspec

from offline.bench.throughput import feedback_body, generate_route_bodies
from router.public import FeedbackRequest, RouteRequest, RoutingService, create_app, load_settings

TICKS = os.sysconf("SC_CLK_TCK")


def _process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 without one)."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def _measure(n: int, concurrency: int, seed: int) -> dict[str, tuple[float, ...]]:
    with tempfile.TemporaryDirectory(prefix="cpu-per-request-") as tmp:
        settings = load_settings(None, {"ROUTER__STORAGE__URL": f"sqlite+aiosqlite:///{tmp}/r.db"})
        app = create_app(settings)
        tenant = settings.auth.default_tenant
        requests = [msgspec.convert(b, RouteRequest) for b in generate_route_bodies(300, seed)]
        rng = random.Random(seed)
        async with app.lifespan():
            routing: RoutingService = app.state.routing
            writer = routing.log.writer

            async def routes(count: int) -> list[str]:
                ids: list[str] = []
                for start in range(0, count, concurrency):
                    answers = await asyncio.gather(*(
                        routing.route(tenant, requests[i % len(requests)])
                        for i in range(start, start + concurrency)))
                    ids += [answer.decision_id for answer in answers]
                return ids

            async def feedbacks(ids: list[str]) -> None:
                bodies = [msgspec.convert(feedback_body(i, rng), FeedbackRequest) for i in ids]
                for start in range(0, len(bodies), concurrency):
                    await asyncio.gather(*(routing.feedback(tenant, body)
                                           for body in bodies[start:start + concurrency]))

            async def timed(work: Callable[[], Awaitable[object]]) -> tuple[float, ...]:
                pid = None if writer is None else writer.pid
                loop, process = time.thread_time(), time.process_time()
                child, wall = _process_cpu_s(pid), time.perf_counter()
                await work()
                return tuple(x / n * 1e3 for x in (
                    time.thread_time() - loop, time.process_time() - process,
                    _process_cpu_s(pid) - child, time.perf_counter() - wall))

            await feedbacks(await routes(200))  # warm-up: caches, VW, SQLite pages
            route = await timed(lambda: routes(n))
            ids = await routes(n)
            feedback = await timed(lambda: feedbacks(ids))
    return {"route": route, "feedback": feedback}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="requests timed per endpoint")
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight at once")
    parser.add_argument("--seed", type=int, default=1, help="seed of the task bodies")
    args = parser.parse_args()
    results = asyncio.run(_measure(args.n, args.concurrency, args.seed))
    print(f"{'ms per request':14s} {'loop thread':>11s} {'process':>8s} {'writer':>7s} "
          f"{'wall':>7s}")
    for name, (loop, process, writer, wall) in results.items():
        print(f"{name:14s} {loop:11.3f} {process:8.3f} {writer:7.3f} {wall:7.3f}")


if __name__ == "__main__":
    main()
