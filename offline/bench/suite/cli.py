"""``router bench-suite``: the router and the simple answers on every suite environment.

Runs each (environment, seed) job in its own process (``--jobs``), then prints a table per
environment, the mean normalised score by kind, the worst margin and issue 17's Targets.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from offline.bench.bandit_spec import BanditSpecError
from offline.bench.suite.registry import UnknownEnvironmentError, all_environments, find, select
from offline.bench.suite.report import format_summary, plot, write_json
from offline.bench.suite.router_contender import RouterVariant, router_variants
from offline.bench.suite.runner import JobResult, run_job
from offline.bench.suite.summary import summarise
from offline.plots import plots_unavailable
from router.public import load_settings

MAX_STEPS_SCALE = 10.0  # longest streams: ten times the simulated worlds' own length


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, default=3, help="seeds per environment, 1..N (3)")
    parser.add_argument("--envs", help="comma-separated names or shell patterns, e.g. "
                                       "'world-*,cls-wine' (default: every environment)")
    parser.add_argument("--steps-scale", type=float, default=1.0,
                        help="below 1, run this fraction of every stream (at least 1,000 "
                             "steps; a skyline still refers to the whole stream); above 1, "
                             "make the simulated worlds' streams this many times as long (the "
                             "classification and real-outcome streams keep their length)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="environment x seed jobs run in this many processes (2)")
    parser.add_argument("--router", action="append", default=[], metavar="NAME=SPEC",
                        help="another router contender with a bandit spec (vw, "
                             "vw:squarecb=10, vw:epsilon=0.05, ...); repeatable")
    parser.add_argument("--config", help="TOML config (default: configs/default.toml)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    parser.add_argument("--plot", metavar="FILE", help="also draw normalised scores (PNG)")
    parser.add_argument("--list", action="store_true", help="list the environments and exit")


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces a run with ``args``."""
    parts = ["router bench-suite", f"--seeds {args.seeds}"]
    if args.envs:
        parts.append(f"--envs '{args.envs}'")
    if args.steps_scale != 1.0:
        parts.append(f"--steps-scale {args.steps_scale:g}")
    parts.extend(f"--router {spec}" for spec in args.router)
    if args.config:
        parts.append(f"--config {args.config}")
    return " ".join(parts)


def _job(env: str, seed: int, variants: list[RouterVariant], scale: float) -> JobResult:
    return run_job(find(env), seed, variants, scale)


def run(args: argparse.Namespace) -> int:
    if args.seeds < 1 or args.jobs < 1 or not 0.0 < args.steps_scale <= MAX_STEPS_SCALE:
        print("router bench-suite: --seeds and --jobs must be >= 1, --steps-scale in "
              f"(0, {MAX_STEPS_SCALE:g}]",
              file=sys.stderr)
        return 2
    if args.plot and (reason := plots_unavailable()):
        print(f"router bench-suite: --plot: {reason}", file=sys.stderr)
        return 2
    settings = load_settings(args.config, {})
    try:
        variants = router_variants(settings.bandit, settings.drift, args.router)
        envs = select(all_environments(), args.envs)
    except (BanditSpecError, UnknownEnvironmentError) as exc:
        print(f"router bench-suite: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for env in envs:
            print(f"{env.name:<28}{env.kind:<16}{len(env.catalog):>5} actions")
        return 0
    started = time.perf_counter()
    tasks = [(env.name, seed) for env in envs for seed in range(1, args.seeds + 1)]
    results = _run_all(tasks, variants, args.steps_scale, args.jobs)
    order = {name: i for i, name in enumerate(env.name for env in envs)}
    results.sort(key=lambda r: (order[r.env], r.seed))
    seconds = time.perf_counter() - started
    summary = summarise(results, [v.name for v in variants])
    command = command_line(args)
    print(format_summary(summary, command, seconds))
    if args.json:
        write_json(Path(args.json), results, summary, command, seconds)
    if args.plot:
        plot(Path(args.plot), summary)
    return 0


def _run_all(tasks: Sequence[tuple[str, int]], variants: list[RouterVariant], scale: float,
             jobs: int) -> list[JobResult]:
    from offline.progress import progress_bar

    results: list[JobResult] = []
    # On stderr: stdout holds only the report.
    with progress_bar("bench-suite", len(tasks)) as bar:
        if jobs == 1:
            for env, seed in tasks:
                bar.describe(f"{env} seed {seed}")
                results.append(_job(env, seed, variants, scale))
                bar.advance()
            return results
        # spawn: each worker builds its own VW workspaces and environments from scratch.
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_job, env, seed, variants, scale) for env, seed in tasks]
            for future in as_completed(futures):
                result = future.result()
                bar.describe(f"{result.env} seed {result.seed}")
                results.append(result)
                bar.advance()
    return results
