"""``router bench``: HTTP throughput and latency of the router against a bare echo app.

One run, one load generator (:mod:`offline.bench.loadgen`: ``wrk``, or the Python fallback), the
same connections, warm-up and duration for every endpoint:

1. ``POST /echo`` of :mod:`offline.bench.echo_app` (Litestar + msgspec and nothing else), posted the
   same route bodies as ``/v1/route``: the reference;
2. ``POST /v1/route`` on the configured catalog (a few hundred distinct task bodies, cycled);
3. ``POST /v1/feedback``, every post for a distinct decision created beforehand (a repeated
   feedback is the cheap duplicate path, so the run is repeated with more decisions if it ran out).

Echo and route are measured in alternating rounds (``--rounds``; echo, route, then route, echo,
...), each ``duration / rounds`` seconds, and each endpoint's figures pool its rounds. The shared
machines change speed by up to 2x over minutes; measured one after the other, the two endpoints
saw different machines and the ratio moved with the phase (0.09-0.21 for one commit), while
alternating rounds expose both to the same phases. The per-round ratios are reported beside the
pooled one.

Both servers run side by side, as ``router serve`` runs them (uvicorn, one worker, access log
off), on free loopback ports (the router with a temporary SQLite database); the one not under load
is idle. The load generator runs in a process of its own. Then the decision latency is measured
in-process: ``RoutingService.route`` (including the SQLite commit) and the pure decision
(features, allowed actions, VW probabilities).

Speed targets are ratios to the echo reference of the same run, reported as PASS/FAIL; the command
returns 0 whatever the verdicts and non-zero only when the measurement itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import msgspec

from offline.bench.loadgen import (
    Generator,
    LoadGenError,
    LoadResult,
    LoadSpec,
    available_generator,
    percentile,
    run_load,
)
from offline.progress import progress_bar

ROUTE_RATIO_TARGET = 0.25
ROUTE_P99_TARGET_MS = 20.0
ROUTE_BODIES = 300
READY_TIMEOUT_S = 90.0
FEEDBACK_HEADROOM = 2.0
OBJECTIVES = ("balanced", "balanced", "quality", "cost")


class BenchError(RuntimeError):
    """The benchmark could not measure (a server did not start, a request failed)."""


class Endpoint(msgspec.Struct, frozen=True):
    name: str
    load: LoadResult
    ratio_to_echo: float


class LatencyStats(msgspec.Struct, frozen=True):
    name: str
    n: int
    p50_ms: float
    p99_ms: float


class Verdict(msgspec.Struct, frozen=True):
    target: str
    passed: bool
    detail: str


class BenchReport(msgspec.Struct, frozen=True):
    command: str
    generator: str
    connections: int
    duration_s: float
    warmup_s: float
    catalog_actions: int
    endpoints: list[Endpoint]
    in_process: list[LatencyStats]
    verdicts: list[Verdict]
    rounds: int = 1
    round_ratios: list[float] = []  # route/echo of each round
    storage: dict[str, float] = {}  # the router's SQLite counters after the run (/metrics)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of measured load per endpoint (default 10)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating echo/route rounds the duration is split into "
                             "(default 5, i.e. 2 s each)")
    parser.add_argument("--connections", type=int, default=16,
                        help="concurrent keep-alive connections (default 16)")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds of unmeasured load before each endpoint (default 3)")
    parser.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    parser.add_argument("--config",
                        help="TOML config of the router (default: configs/default.toml)")
    parser.add_argument("--in-process-n", type=int, default=2000,
                        help="decisions timed in-process (default 2000)")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto",
                        help="load generator (default: wrk if installed, else python)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated task bodies")
    parser.add_argument("--in-process-only", action="store_true",
                        help="only the in-process decision latency (no HTTP load); with "
                             "--config configs/catalog-200.toml: the 200-action target")


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- request bodies -----------------------------------------------------------------------

_LANGUAGES: dict[str, list[str | None]] = {
    "python": ["fastapi", "django", "flask", None],
    "typescript": ["react", "nextjs", "express", None],
    "go": ["gin", "echo", None],
    "java": ["spring", None],
    "rust": ["axum", "actix", None],
    "kotlin": ["ktor", None],
    "sql": [None],
}
_TYPES = ["backend", "frontend", "data-pipeline", "devops", "testing", "refactor", "migration"]
_AGENTS = ["implementation", "review", "testing", "planning"]
_DESCRIPTION_TEXT = (
    "build an endpoint that validates input stores records in the database handles pagination "
    "retries failed calls with backoff emits metrics caches results invalidates stale entries "
    "parses configuration files streams large uploads checks permissions per tenant writes "
    "integration tests refactors the legacy module keeps backward compatibility documents the api"
)
_REQUIREMENTS = [
    "authentication", "rate limiting", "unit tests", "type hints", "async io", "logging",
    "openapi schema", "migrations", "error handling", "idempotency", "caching", "i18n",
]


def generate_route_bodies(n: int, seed: int) -> list[dict[str, object]]:
    """``n`` distinct, varied ``POST /v1/route`` bodies (no constraints: the whole catalog)."""
    rng = random.Random(seed)
    words = _DESCRIPTION_TEXT.split()
    bodies: list[dict[str, object]] = []
    for i in range(n):
        language = rng.choice(list(_LANGUAGES))
        task: dict[str, object] = {
            "type": rng.choice(_TYPES),
            "language": language,
            "description": f"task {i}: " + " ".join(rng.choices(words, k=rng.randint(6, 80))),
            "requirements": rng.sample(_REQUIREMENTS, k=rng.randint(0, 5)),
        }
        framework = rng.choice(_LANGUAGES[language])
        if framework is not None:
            task["framework"] = framework
        context: dict[str, object] = {
            "project_id": f"p{rng.randint(1, 20)}",
            "user_id": f"u{rng.randint(1, 50)}",
            "agent": rng.choice(_AGENTS),
        }
        if rng.random() < 0.4:
            context["rag"] = {"examples": rng.randint(0, 8),
                              "avg_similarity": round(rng.random(), 3),
                              "avg_quality": round(rng.uniform(4.0, 10.0), 2)}
        bodies.append({"task": task, "context": context, "objective": OBJECTIVES[i % 4]})
    return bodies


def feedback_body(decision_id: str, rng: random.Random) -> dict[str, object]:
    outcome = rng.choices(["approved", "modified", "rejected"], weights=[6, 3, 1])[0]
    return {"decision_id": decision_id, "outcome": outcome,
            "quality": round(rng.uniform(3.0, 10.0), 1),
            "generation_time_s": round(rng.uniform(2.0, 40.0), 2),
            "cost_usd": round(rng.uniform(0.0005, 0.05), 5)}


def _write_lines(path: Path, bodies: Sequence[object]) -> Path:
    path.write_bytes(b"".join(msgspec.json.encode(body) + b"\n" for body in bodies))
    return path


# --- servers ------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


@contextlib.contextmanager
def serve(name: str, command: list[str], port: int, log_path: Path) -> Iterator[str]:
    """Run a server command until ``GET /ready`` answers 200; yield its base URL; stop it."""
    base = f"http://127.0.0.1:{port}"
    _progress(f"starting {name} on {base}")
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise BenchError(f"{name} exited with {process.returncode}:\n{_log_tail(log_path)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/ready", timeout=2.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchError(f"{name} not ready after {READY_TIMEOUT_S:g} s:\n"
                                 f"{_log_tail(log_path)}")
            time.sleep(0.2)
        yield base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _progress(f"stopped {name}")


# --- HTTP measurements --------------------------------------------------------------------

def _load(label: str, spec: LoadSpec, generator: Generator) -> LoadResult:
    result = run_load(spec, generator)
    if result.failed:
        raise BenchError(f"{label}: {result.non_2xx} non-2xx responses and "
                         f"{result.socket_errors} socket errors in {result.requests} requests")
    return result


def pool(results: Sequence[LoadResult]) -> LoadResult:
    """Rounds of one endpoint as one result: requests and time summed, the median round's p50,
    the highest round's p99 (the pooled distribution is not known, so its p99 is bounded by the
    worst round's)."""
    if not results:
        raise ValueError("no rounds to pool")
    duration = sum(r.duration_s for r in results)
    requests = sum(r.requests for r in results)
    p50s = sorted(r.p50_ms for r in results)
    return LoadResult(
        generator=results[0].generator, url=results[0].url, requests=requests,
        duration_s=duration, requests_per_s=requests / duration if duration > 0 else 0.0,
        p50_ms=percentile(p50s, 50), p99_ms=max(r.p99_ms for r in results),
        non_2xx=sum(r.non_2xx for r in results),
        socket_errors=sum(r.socket_errors for r in results),
        exhausted=any(r.exhausted for r in results),
    )


_STORAGE_METRICS = {
    "router_sqlite_writer_process_transactions_total": "writer process writes",
    "router_sqlite_writer_process_starts_total": "writer process starts",
    'router_sqlite_checkpoints_total{complete="true"}': "complete checkpoints",
    'router_sqlite_checkpoints_total{complete="false"}': "incomplete checkpoints",
    "router_sqlite_wal_frames": "WAL frames at the last checkpoint",
}


def storage_counters(metrics_text: str) -> dict[str, float]:
    """The router's SQLite counters from its ``/metrics`` text (none on PostgreSQL)."""
    found: dict[str, float] = {}
    for line in metrics_text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in _STORAGE_METRICS:
            found[_STORAGE_METRICS[name]] = float(value)
    return found


def round_order(round_index: int, labels: Sequence[str]) -> list[str]:
    """``labels`` in order on even rounds and reversed on odd ones (A B, B A, A B, ...), so a
    steady drift of the machine's speed favours neither endpoint."""
    return list(labels) if round_index % 2 == 0 else list(reversed(labels))


def measure_alternating(specs: dict[str, LoadSpec], rounds: int, warmup_s: float,
                        generator: Generator) -> dict[str, list[LoadResult]]:
    """Each spec's load in ``rounds`` alternating rounds of ``spec.duration_s / rounds`` s,
    after ``warmup_s`` s of unmeasured load each; every round's result, per label."""
    labels = list(specs)
    results: dict[str, list[LoadResult]] = {label: [] for label in labels}
    loads = len(labels) * (rounds + (warmup_s > 0))
    with progress_bar("bench", loads) as bar:
        if warmup_s > 0:
            for label in labels:
                bar.describe(f"bench: {label} warm-up {warmup_s:g} s")
                _load(label, msgspec.structs.replace(specs[label], duration_s=warmup_s),
                      generator)
                bar.advance()
        for index in range(rounds):
            for label in round_order(index, labels):
                bar.describe(f"bench: {label} round {index + 1}/{rounds}")
                spec = specs[label]
                part = msgspec.structs.replace(spec, duration_s=spec.duration_s / rounds)
                result = _load(label, part, generator)
                results[label].append(result)
                bar.log(f"bench: {label} round {index + 1}/{rounds}: "
                        f"{result.requests_per_s:.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                        f"p99 {result.p99_ms:.2f} ms")
                bar.advance()
    return results


async def create_decisions(base: str, bodies: Sequence[bytes], count: int,
                           concurrency: int) -> list[str]:
    """Ask the router for ``count`` decisions (``concurrency`` at a time); their ids."""
    ids: list[str] = []
    indices = itertools.count()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60.0, limits=limits) as client:

        async def worker() -> None:
            while (i := next(indices)) < count:
                response = await client.post("/v1/route", content=bodies[i % len(bodies)],
                                             headers={"Content-Type": "application/json"})
                if response.status_code != 200:
                    raise BenchError(f"POST /v1/route answered {response.status_code}: "
                                     f"{response.text[:500]}")
                ids.append(msgspec.json.decode(response.content)["decision_id"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids


def _feedback_file(path: Path, base: str, route_bodies: Sequence[bytes], count: int,
                   connections: int, rng: random.Random) -> Path:
    _progress(f"feedback: creating {count} decisions")
    started = time.perf_counter()
    ids = asyncio.run(create_decisions(base, route_bodies, count, connections))
    _progress(f"feedback: {len(ids)} decisions in {time.perf_counter() - started:.1f} s")
    return _write_lines(path, [feedback_body(i, rng) for i in ids])


def measure_feedback(base: str, tmp: Path, route_bodies: Sequence[bytes], route_rps: float,
                     args: argparse.Namespace, generator: Generator) -> LoadResult:
    """Feedback for distinct decisions; reruns with more decisions if the run used them all."""
    rng = random.Random(args.seed)
    url = f"{base}/v1/feedback"
    if args.warmup > 0:
        warm = _feedback_file(tmp / "feedback-warmup.jsonl", base, route_bodies,
                              int(route_rps * args.warmup * FEEDBACK_HEADROOM) + 100,
                              args.connections, rng)
        _progress(f"feedback: warm-up {args.warmup:g} s")
        _load("feedback", LoadSpec(url=url, bodies_path=str(warm), duration_s=args.warmup,
                                   connections=args.connections, unique=True), generator)
    count = int(route_rps * args.duration * FEEDBACK_HEADROOM) + 100
    for attempt in range(3):
        bodies = _feedback_file(tmp / f"feedback-{attempt}.jsonl", base, route_bodies, count,
                                args.connections, rng)
        _progress(f"feedback: measuring {args.duration:g} s, {args.connections} connections")
        result = _load("feedback", LoadSpec(url=url, bodies_path=str(bodies),
                                            duration_s=args.duration,
                                            connections=args.connections, unique=True), generator)
        if not result.exhausted:
            _progress(f"feedback: {result.requests_per_s:.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                      f"p99 {result.p99_ms:.2f} ms")
            return result
        count = int(result.requests * 1.5) + 100
        _progress(f"feedback: ran out of decisions after {result.requests} posts; retrying")
    raise BenchError("feedback run kept running out of distinct decisions")


# --- in-process decision latency ----------------------------------------------------------

def _stats(name: str, samples_ms: list[float]) -> LatencyStats:
    ordered = sorted(samples_ms)
    return LatencyStats(name=name, n=len(ordered), p50_ms=percentile(ordered, 50),
                        p99_ms=percentile(ordered, 99))


async def measure_in_process(config: str | None, tmp: Path, bodies: Sequence[dict[str, object]],
                             n: int) -> tuple[list[LatencyStats], int]:
    """Latency of ``RoutingService.route`` and of the pure decision, in this process."""
    from learners.context import DecisionContext
    from learners.features import extract_features
    from router.public import (
        RouteRequest,
        RoutingService,
        allowed_actions,
        create_app,
        load_settings,
    )

    settings = load_settings(config, {"ROUTER__STORAGE__URL": f"sqlite+aiosqlite:///{tmp}/inproc.db"})
    requests = [msgspec.convert(body, RouteRequest) for body in bodies]
    tenant = settings.auth.default_tenant
    route_ms: list[float] = []
    decision_ms: list[float] = []
    vw_ms: list[float] = []
    app = create_app(settings)
    async with app.lifespan():  # on this loop: routes call the app's objects directly
        routing: RoutingService = app.state.routing
        for request in requests[: min(100, n)]:  # warm-up: caches, VW, SQLite pages
            await routing.route(tenant, request)
        for i in range(n):
            request = requests[i % len(requests)]
            started = time.perf_counter()
            await routing.route(tenant, request)
            route_ms.append((time.perf_counter() - started) * 1e3)
        for i in range(n):
            request = requests[i % len(requests)]
            started = time.perf_counter()
            features = extract_features(DecisionContext(
                task=request.task, caller=request.context, features=dict(request.features),
                objective=request.objective or settings.default_profile))
            rag = request.context.rag.examples if request.context.rag else 0
            allowed = allowed_actions(routing.catalog, request.task, request.constraints,
                                      features.complexity, rag)
            vw_started = time.perf_counter()
            routing.learner.policies.for_tenant(tenant).probabilities(
                features, routing.catalog, allowed)
            finished = time.perf_counter()
            decision_ms.append((finished - started) * 1e3)
            vw_ms.append((finished - vw_started) * 1e3)
        actions = len(routing.catalog)
    return [
        _stats("RoutingService.route (incl. SQLite commit)", route_ms),
        _stats("decision: features + allowed + VW", decision_ms),
        _stats("VW probabilities only", vw_ms),
    ], actions


# --- report -------------------------------------------------------------------------------

def _generator_name(generator: Generator) -> str:
    if generator == "python":
        return "python asyncio keep-alive fallback (python -m offline.bench.loadgen; wrk not used)"
    wrk = shutil.which("wrk") or "wrk"
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    version = (done.stdout or done.stderr).split("[")[0].strip() or "wrk"
    return f"{version}, 1 thread, Lua-scripted POST bodies"


def verdicts(echo: LoadResult, route: LoadResult) -> list[Verdict]:
    ratio = route.requests_per_s / echo.requests_per_s
    return [
        Verdict(target=f"route/echo throughput >= {ROUTE_RATIO_TARGET:g}",
                passed=ratio >= ROUTE_RATIO_TARGET,
                detail=f"{ratio:.3f} = {route.requests_per_s:.0f} / "
                       f"{echo.requests_per_s:.0f} req/s"),
        Verdict(target=f"route p99 <= {ROUTE_P99_TARGET_MS:g} ms",
                passed=route.p99_ms <= ROUTE_P99_TARGET_MS,
                detail=f"p99 {route.p99_ms:.2f} ms at {route.requests_per_s:.0f} req/s"),
    ]


def format_report(report: BenchReport) -> str:
    lines = [
        f"command: {report.command}",
        f"load generator: {report.generator}; {report.connections} connections, "
        f"{report.duration_s:g} s per endpoint after {report.warmup_s:g} s warm-up; echo and "
        f"route in {report.rounds} alternating rounds",
        f"server: uvicorn, 1 worker, access log off, SQLite; catalog: "
        f"{report.catalog_actions} actions",
        "",
        f"{'endpoint':<20} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'ratio to echo':>14}",
    ]
    for endpoint in report.endpoints:
        load = endpoint.load
        lines.append(f"{endpoint.name:<20} {load.requests_per_s:>9.0f} {load.p50_ms:>9.2f} "
                     f"{load.p99_ms:>9.2f} {endpoint.ratio_to_echo:>14.3f}")
    if report.round_ratios:
        ordered = sorted(report.round_ratios)
        lines.append(
            f"route/echo by round: {' '.join(f'{r:.3f}' for r in report.round_ratios)} "
            f"(median {percentile(ordered, 50):.3f}); route p99 is the highest round's")
    if report.storage:
        lines.append("router SQLite after the run: " + ", ".join(
            f"{name} {value:.0f}" for name, value in report.storage.items()))
    lines += ["", f"{'in-process':<44} {'n':>6} {'p50 ms':>9} {'p99 ms':>9}"]
    for stats in report.in_process:
        lines.append(f"{stats.name:<44} {stats.n:>6} {stats.p50_ms:>9.3f} {stats.p99_ms:>9.3f}")
    lines.append("")
    for verdict in report.verdicts:
        lines.append(f"{'PASS' if verdict.passed else 'FAIL'}  {verdict.target}: {verdict.detail}")
    return "\n".join(lines)


def _command_line(args: argparse.Namespace) -> str:
    if args.in_process_only:
        parts = ["router bench --in-process-only", f"--in-process-n {args.in_process_n}"]
        if args.config:
            parts.append(f"--config {args.config}")
        return " ".join(parts)
    parts = ["router bench", f"--duration {args.duration:g}", f"--rounds {args.rounds}",
             f"--connections {args.connections}", f"--warmup {args.warmup:g}",
             f"--in-process-n {args.in_process_n}"]
    if args.config:
        parts.append(f"--config {args.config}")
    if args.generator != "auto":
        parts.append(f"--generator {args.generator}")
    return " ".join(parts)


def _bench(args: argparse.Namespace, tmp: Path) -> BenchReport:
    generator: Generator = available_generator() if args.generator == "auto" else args.generator
    _progress(f"load generator: {generator}")
    body_dicts = generate_route_bodies(ROUTE_BODIES, args.seed)
    bodies_path = _write_lines(tmp / "route.jsonl", body_dicts)
    route_bodies = [msgspec.json.encode(body) for body in body_dicts]

    def spec(url: str) -> LoadSpec:
        return LoadSpec(url=url, bodies_path=str(bodies_path), duration_s=args.duration,
                        connections=args.connections)

    echo_port = _free_port()
    echo_command = [sys.executable, "-m", "offline.bench.echo_app", "--host", "127.0.0.1",
                    "--port", str(echo_port)]
    router_port = _free_port()
    router_command = [sys.executable, "-m", "router.cli", "serve", "--host", "127.0.0.1",
                      "--port", str(router_port), "--workers", "1",
                      "--database-url", f"sqlite+aiosqlite:///{tmp}/router.db"]
    if args.config:
        router_command += ["--config", args.config]
    with serve("echo server", echo_command, echo_port, tmp / "echo.log") as echo_base, \
            serve("router", router_command, router_port, tmp / "router.log") as base:
        rounds = measure_alternating(
            {"echo": spec(f"{echo_base}/echo"), "route": spec(f"{base}/v1/route")},
            args.rounds, args.warmup, generator)
        echo, route = pool(rounds["echo"]), pool(rounds["route"])
        _progress(f"echo pooled: {echo.requests_per_s:.0f} req/s; route pooled: "
                  f"{route.requests_per_s:.0f} req/s")
        feedback = measure_feedback(base, tmp, route_bodies, route.requests_per_s, args,
                                    generator)
        storage = storage_counters(httpx.get(f"{base}/metrics", timeout=30.0).text)

    _progress(f"in-process: timing {args.in_process_n} decisions")
    in_process, actions = asyncio.run(
        measure_in_process(args.config, tmp, body_dicts, args.in_process_n))
    endpoints = [
        Endpoint(name=name, load=load, ratio_to_echo=load.requests_per_s / echo.requests_per_s)
        for name, load in
        [("POST /echo", echo), ("POST /v1/route", route), ("POST /v1/feedback", feedback)]
    ]
    return BenchReport(
        command=_command_line(args), generator=_generator_name(generator),
        connections=args.connections, duration_s=args.duration, warmup_s=args.warmup,
        catalog_actions=actions, endpoints=endpoints, in_process=in_process,
        verdicts=verdicts(echo, route), rounds=args.rounds, storage=storage,
        round_ratios=[r.requests_per_s / e.requests_per_s
                      for r, e in zip(rounds["route"], rounds["echo"], strict=True)],
    )


def run(args: argparse.Namespace) -> int:
    if args.duration <= 0 or args.connections < 1 or args.warmup < 0 or args.in_process_n < 1:
        print("router bench: --duration and --connections must be positive, --warmup >= 0, "
              "--in-process-n >= 1", file=sys.stderr)
        return 2
    if args.rounds < 1 or args.duration / args.rounds < 1:
        print("router bench: --rounds must be at least 1 and at most --duration (rounds of at "
              "least 1 s)", file=sys.stderr)
        return 2
    from router.public import SettingsError

    if args.in_process_only:
        return _in_process_only(args)
    try:
        with tempfile.TemporaryDirectory(prefix="router-bench-") as tmp:
            report = _bench(args, Path(tmp))
    except (BenchError, LoadGenError, SettingsError, OSError, subprocess.SubprocessError) as exc:
        print(f"router bench: error: {exc}", file=sys.stderr)
        return 1
    print(format_report(report))
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(report)) + b"\n")
        _progress(f"results saved to {args.json}")
    return 0



DECISION_P99_TARGET_MS = 2.0


def _in_process_only(args: argparse.Namespace) -> int:
    """Issue 4's hot-path target: in-process decision p99 <= 2 ms (at 200 actions with
    ``--config configs/catalog-200.toml``)."""
    body_dicts = generate_route_bodies(ROUTE_BODIES, args.seed)
    with tempfile.TemporaryDirectory(prefix="router-bench-") as tmp:
        stats, actions = asyncio.run(
            measure_in_process(args.config, Path(tmp), body_dicts, args.in_process_n))
    print(f"command: {_command_line(args)}")
    print(f"catalog: {actions} actions")
    for stat in stats:
        print(f"  {stat.name:<45} p50 {stat.p50_ms:7.3f} ms   p99 {stat.p99_ms:7.3f} ms")
    decision = stats[1]
    ok = decision.p99_ms <= DECISION_P99_TARGET_MS
    print(f"decision p99 {decision.p99_ms:.3f} ms: {'PASS' if ok else 'FAIL'} <= "
          f"{DECISION_P99_TARGET_MS:g} ms")
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(
            {"catalog_actions": actions, "in_process": stats, "decision_p99_pass": ok})))
    return 0 if ok else 1
