"""Drive a running router with simulated tasks and measure it against the world's ground truth.

Every step samples a task, asks ``POST /v1/route`` for an action, draws the outcome from the
:class:`~offline.world.World` and posts it to ``POST /v1/feedback`` (optionally a few decisions
later). The report compares the router's true expected reward with the per-task oracle, the best
fixed action in hindsight and uniform choice.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
import msgspec
import numpy as np
import numpy.typing as npt

from learners.catalog import Action, Catalog, format_action_id
from learners.reward import RewardProfile
from offline.plots import plots_unavailable
from offline.progress import Bar, progress_bar
from offline.world import SimOutcome, SimTask, World

FloatArray = npt.NDArray[np.float64]


class SimulationError(RuntimeError):
    """The router answered something the simulation cannot use (non-2xx, unknown action)."""


class _RouteAnswer(msgspec.Struct):
    decision_id: str
    model: str
    temperature: float
    template: str


class FeedbackBody(msgspec.Struct, frozen=True):
    """The JSON body of ``POST /v1/feedback`` for a simulated outcome."""

    decision_id: str
    outcome: str
    quality: float
    generation_time_s: float
    cost_usd: float
    tokens: int
    regenerations: int

    @classmethod
    def from_outcome(cls, decision_id: str, outcome: SimOutcome) -> FeedbackBody:
        return cls(decision_id=decision_id, outcome=outcome.verdict.value,
                   quality=outcome.quality, generation_time_s=outcome.generation_time_s,
                   cost_usd=outcome.cost_usd, tokens=outcome.tokens,
                   regenerations=outcome.regenerations)


class SimulationReport(msgspec.Struct, frozen=True):
    """Mean true expected rewards of the router and of the reference policies.

    The best fixed action is the catalog action with the highest mean over the run, where a
    language-specific action on a task outside its languages counts as its fallback: the same
    model and temperature with the first template usable for every language.
    """

    n: int
    window: int
    router_mean: float
    oracle_mean: float
    best_fixed_mean: float
    best_fixed_action: str
    uniform_mean: float
    router_first: float
    router_last: float
    oracle_first: float
    oracle_last: float
    router_rewards: list[float]
    oracle_rewards: list[float]
    best_fixed_rewards: list[float]
    uniform_rewards: list[float]

    def format_table(self) -> str:
        """A plain-text table of the mean rewards (whole run, first and last window)."""
        first = f"first {self.window}"
        last = f"last {self.window}"
        rows = [("policy", "mean", first, last)]
        for name, values in (
            ("router", self.router_rewards),
            ("oracle", self.oracle_rewards),
            (f"best fixed ({self.best_fixed_action})", self.best_fixed_rewards),
            ("uniform", self.uniform_rewards),
        ):
            head, tail = values[: self.window], values[-self.window :]
            rows.append((name, _fmt(values), _fmt(head), _fmt(tail)))
        regret = [o - r for o, r in zip(self.oracle_rewards, self.router_rewards, strict=True)]
        rows.append(("regret (oracle - router)", _fmt(regret), _fmt(regret[: self.window]),
                     _fmt(regret[-self.window :])))
        width = max(len(row[0]) for row in rows)
        lines = [f"{row[0]:<{width}}  {row[1]:>8}  {row[2]:>11}  {row[3]:>11}" for row in rows]
        lines.insert(1, "-" * len(lines[0]))
        return f"decisions: {self.n}\n" + "\n".join(lines)

    def save_plot(self, path: str | Path) -> None:
        """Write a PNG of the moving-average reward curves to ``path``."""
        from matplotlib.figure import Figure  # lazy: plotting is optional; Figure uses Agg

        span = max(1, min(500, self.n // 20))
        fig = Figure(figsize=(9, 5))
        ax = fig.add_subplot()
        for label, values in (("router", self.router_rewards), ("oracle", self.oracle_rewards),
                              (f"best fixed ({self.best_fixed_action})", self.best_fixed_rewards),
                              ("uniform", self.uniform_rewards)):
            curve = _moving_average(np.asarray(values, dtype=np.float64), span)
            ax.plot(np.arange(span, span + len(curve)), curve, label=label)
        ax.set_xlabel("decision")
        ax.set_ylabel(f"expected reward (moving average of {span})")
        ax.set_title("Router against oracle, best fixed action and uniform choice")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        fig.savefig(Path(path), format="png", dpi=110)


async def simulate(
    client: httpx.AsyncClient, world: World, *, n: int, seed: int, profile: RewardProfile,
    feedback_delay: int = 0, concurrency: int = 1, progress: Bar | None = None,
    request_prefix: str | None = None, objective: str = "balanced",
) -> SimulationReport:
    """Run ``n`` route/feedback rounds against the router behind ``client``.

    Each step uses its own generator seeded from (seed, step), so results do not depend on
    ``concurrency`` (the number of route calls in flight at once). A feedback is posted after
    0 to ``feedback_delay`` later decisions (uniform); all pending ones are posted at the end.
    ``progress`` is advanced by one per decision.
    ``request_prefix`` makes request ids unique; by default it includes a random token, so
    repeated runs against one service never reuse a decision.
    """
    if n < 1 or concurrency < 1 or feedback_delay < 0:
        raise ValueError("n and concurrency must be >= 1 and feedback_delay >= 0")
    catalog = world.catalog
    prefix = request_prefix or f"sim-{seed}-{uuid.uuid4().hex[:12]}"
    fallback = fallback_indices(catalog)
    router, oracle, uniform = np.zeros(n), np.zeros(n), np.zeros(n)
    per_action = np.zeros((n, len(catalog)))
    pending: list[tuple[int, int, FeedbackBody]] = []
    every = max(1, n // 20)
    for start in range(0, n, concurrency):
        steps = range(start, min(start + concurrency, n))
        rngs = [np.random.default_rng([seed, step]) for step in steps]
        tasks = [world.sample_task(rng, step=step) for rng, step in zip(rngs, steps, strict=True)]
        answers = await asyncio.gather(*(
            _route(client, task.route_body(f"{prefix}-{task.step}", objective))
            for task in tasks
        ))
        for rng, task, answer in zip(rngs, tasks, answers, strict=True):
            action = _resolve(catalog, answer)
            outcome = world.outcome(task, action, rng)
            rewards = np.array([world.expected_reward(task, a, profile) for a in catalog.actions])
            allowed = np.array([a.allows_language(task.language) for a in catalog.actions])
            if not allowed[action.index]:
                raise SimulationError(f"router chose {action.id}, not allowed for "
                                      f"language {task.language!r}")
            step = task.step
            router[step] = rewards[action.index]
            oracle[step] = rewards[allowed].max()
            uniform[step] = rewards[allowed].mean()
            per_action[step] = np.where(allowed, rewards, rewards[fallback])
            due = step + int(rng.integers(0, feedback_delay + 1))
            pending.append((due, step, FeedbackBody.from_outcome(answer.decision_id, outcome)))
        last = steps[-1]
        ready = sorted(p for p in pending if p[0] <= last)
        pending = [p for p in pending if p[0] > last]
        await _post_feedback(client, [p[2] for p in ready], concurrency)
        if progress is not None:
            if (last + 1) // every != start // every:
                recent = slice(max(0, last + 1 - every), last + 1)
                progress.describe(f"simulate: recent router {router[recent].mean():.3f}, "
                                  f"oracle {oracle[recent].mean():.3f}")
            progress.advance(len(steps))
    await _post_feedback(client, [p[2] for p in sorted(pending)], concurrency)
    means = per_action.mean(axis=0)
    best = int(np.argmax(means))
    window = min(1000, max(1, n // 5))
    return SimulationReport(
        n=n, window=window, router_mean=float(router.mean()), oracle_mean=float(oracle.mean()),
        best_fixed_mean=float(means[best]), best_fixed_action=catalog.actions[best].id,
        uniform_mean=float(uniform.mean()),
        router_first=float(router[:window].mean()), router_last=float(router[-window:].mean()),
        oracle_first=float(oracle[:window].mean()), oracle_last=float(oracle[-window:].mean()),
        router_rewards=router.tolist(), oracle_rewards=oracle.tolist(),
        best_fixed_rewards=per_action[:, best].tolist(), uniform_rewards=uniform.tolist(),
    )


async def _route(client: httpx.AsyncClient, body: msgspec.Struct) -> _RouteAnswer:
    response = await _post(client, "/v1/route", body)
    try:
        return msgspec.json.decode(response.content, type=_RouteAnswer)
    except msgspec.DecodeError as exc:
        raise SimulationError(f"POST /v1/route: unexpected answer {response.text!r}") from exc


async def _post_feedback(
    client: httpx.AsyncClient, bodies: list[FeedbackBody], concurrency: int
) -> None:
    for i in range(0, len(bodies), concurrency):
        chunk = bodies[i : i + concurrency]
        await asyncio.gather(*(_post(client, "/v1/feedback", body) for body in chunk))


async def _post(client: httpx.AsyncClient, path: str, body: msgspec.Struct) -> httpx.Response:
    response = await client.post(path, content=msgspec.json.encode(body),
                                 headers={"content-type": "application/json"})
    if not response.is_success:
        raise SimulationError(f"POST {path} answered {response.status_code}: {response.text}")
    return response


def _resolve(catalog: Catalog, answer: _RouteAnswer) -> Action:
    action = catalog.get(format_action_id(answer.model, answer.temperature, answer.template))
    if action is None:
        raise SimulationError(
            f"router chose {answer.model}/{answer.temperature}/{answer.template}, "
            "which is not in the simulation's catalog (is --config the service's config?)"
        )
    return action


def fallback_indices(catalog: Catalog) -> npt.NDArray[np.int64]:
    """For each action, itself or (language-specific template) the same model and temperature
    with the first template usable for every language."""
    general = [t for t in catalog.templates if not t.languages]
    indices = []
    for action in catalog.actions:
        target = action
        if action.template.languages and general:
            found = catalog.get(format_action_id(action.model.name, action.temperature,
                                                 general[0].name))
            target = found if found is not None else action
        indices.append(target.index)
    return np.asarray(indices, dtype=np.int64)


def _moving_average(values: FloatArray, span: int) -> FloatArray:
    if len(values) < span:
        return np.asarray([values.mean()]) if len(values) else values
    kernel = np.full(span, 1.0 / span)
    return np.convolve(values, kernel, mode="valid")


def _fmt(values: list[float]) -> str:
    return f"{float(np.mean(values)):.4f}" if values else "-"


# ------------------------------------------------------------------------------------ CLI
def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``router simulate`` options to ``parser``."""
    parser.add_argument("--n", type=int, default=5000, help="number of decisions (default 5000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the world and the tasks")
    parser.add_argument("--url", help="base URL of a running service; default: run in-process")
    parser.add_argument("--config",
                        help="config with the catalog (default configs/default.toml)")
    parser.add_argument("--profile", default="balanced", help="reward profile (default balanced)")
    parser.add_argument("--feedback-delay", type=int, default=0,
                        help="max number of later decisions before a feedback is posted")
    parser.add_argument("--concurrency", type=int, default=1, help="route calls in flight")
    parser.add_argument("--drift-model", help="model whose success drops at --drift-at")
    parser.add_argument("--drift-at", type=int, help="decision number where the drift starts")
    parser.add_argument("--plot", type=Path, metavar="PATH", help="write a PNG reward curve")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the report as JSON")
    parser.add_argument("--api-key", help="API key, sent as the X-API-Key header")
    parser.add_argument("--history-out", type=Path, metavar="FILE",
                        help="instead of driving the router, write --n decisions of a "
                        "uniform-random logging policy in the world to this history file "
                        "(.jsonl/.csv/.parquet) for router import / router train")


def run(args: argparse.Namespace) -> int:
    """Run the simulation described by ``args``; print the table. Returns the exit status."""
    if args.plot and (reason := plots_unavailable()):
        print(f"router simulate: --plot: {reason}", file=sys.stderr)
        return 2
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from router.public import load_settings  # lazy: the CLI, not the library, needs router

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns progress
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    with tempfile.TemporaryDirectory(prefix="router-sim-") as tmp:
        # ROUTER__... variables configure the in-process service (e.g. the exploration method).
        environ = dict(os.environ)
        if not args.url:
            environ["ROUTER__STORAGE__URL"] = f"sqlite+aiosqlite:///{tmp}/sim.db"
        settings = load_settings(args.config, environ)
        profile = settings.profiles.get(args.profile)
        if profile is None:
            print(f"--profile: unknown profile {args.profile!r}; known: "
                  f"{', '.join(sorted(settings.profiles))}", file=sys.stderr)
            return 2
        world = World(catalog=settings.catalog, seed=args.seed, drift_model=args.drift_model,
                      drift_at=args.drift_at)
        if args.history_out:
            from offline.history_file import write_history
            from offline.synthetic import generate_history

            write_history(args.history_out, generate_history(world, args.n, seed=args.seed))
            print(f"{args.n} logged decisions written to {args.history_out}")
            return 0
        if args.url:
            async with httpx.AsyncClient(base_url=args.url, headers=headers,
                                         timeout=60.0) as client:
                report = await _simulate(client, world, args, profile)
        else:
            from litestar.testing import AsyncTestClient

            from router.public import create_app

            async with AsyncTestClient(create_app(settings)) as test_client:
                test_client.headers.update(headers)
                report = await _simulate(test_client, world, args, profile,
                                         request_prefix=f"sim-{args.seed}")
    print(report.format_table())
    if args.plot:
        report.save_plot(args.plot)
    if args.json:
        args.json.write_bytes(msgspec.json.encode(report))
    return 0


async def _simulate(client: httpx.AsyncClient, world: World, args: argparse.Namespace,
                    profile: RewardProfile, request_prefix: str | None = None) -> SimulationReport:
    with progress_bar("simulate", args.n) as bar:
        return await simulate(client, world, n=args.n, seed=args.seed, profile=profile,
                              feedback_delay=args.feedback_delay, concurrency=args.concurrency,
                              progress=bar, request_prefix=request_prefix,
                              objective=args.profile)


__all__ = ["FeedbackBody", "SimTask", "SimulationError", "SimulationReport", "configure_parser",
           "run", "simulate"]
