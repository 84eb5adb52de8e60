"""Chaos runs against ``router serve`` on 127.0.0.1: kill -9 under load, a PostgreSQL outage, and
the throughput of PostgreSQL with 2% duplicate feedback against none.

Every run is bounded in requests and seconds and sends traffic to 127.0.0.1 only; PostgreSQL runs
use a fresh database they create and drop. Usage (from the repository root)::

    python -m offline.bench.chaos [kill|outage|throughput|all] [--duration 15]

Results are printed as one JSON object per run (docs/operations.md "Failure behaviour").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec

POSTGRES = os.environ.get("ROUTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TYPES = ["backend", "frontend", "data", "testing"]
LANGUAGES = ["python", "typescript", "go", "sql", "java"]
ROUNDS = 2


class Load(msgspec.Struct):
    """What a load run saw: acknowledged outcomes, status codes, latency and learned flags."""

    acknowledged: set[str] = msgspec.field(default_factory=set)
    statuses: Counter[int] = msgspec.field(default_factory=Counter)
    requests: int = 0
    learned_false: int = 0
    max_latency_s: float = 0.0
    missing_retry_after: int = 0
    elapsed_s: float = 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """``router serve`` as a child process on a free port, its log in a file."""

    def __init__(self, database_url: str, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        # A database other than a SQLite file needs the server secret (docs/security.md).
        env = {"ROUTER__SECURITY__SECRET": "chaos-run-secret", **os.environ}
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "router.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--database-url", database_url],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )

    async def wait_ready(self, within_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(base_url=self.url) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"router serve exited with {self.process.returncode}")
                try:
                    response = await client.get("/ready")
                    if response.status_code == 200:
                        ready: dict[str, Any] = response.json()
                        return ready
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("router serve did not become ready")

    def rss_mb(self) -> float:
        """Resident memory of the service and its children (the SQLite writer process)."""
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        total = 0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return round(total / 1024, 1)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def route_body(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "request_id": f"chaos-{n}-{rng.getrandbits(32)}",
        "task": {"type": rng.choice(TYPES), "language": rng.choice(LANGUAGES),
                 "description": "Implement a feature with caching and retries" + " ok" * (n % 7)},
        "context": {"project_id": f"p{n % 8}", "agent": "implementation"},
    }


async def run_load(url: str, *, seconds: float, max_requests: int, concurrency: int,
                   duplicate_rate: float, seed: int = 0, load: Load | None = None) -> Load:
    """Route then feedback, ``concurrency`` at a time; a ``duplicate_rate`` share of feedback
    is posted twice (half of them at the same time, half after the acknowledgement)."""
    load = load if load is not None else Load()
    started = time.monotonic()
    deadline = started + seconds
    counter = iter(range(max_requests))

    async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
        sent = time.monotonic()
        response = await client.post(path, json=body)
        load.max_latency_s = max(load.max_latency_s, time.monotonic() - sent)
        load.requests += 1
        load.statuses[response.status_code] += 1
        if response.status_code == 503 and "retry-after" not in response.headers:
            load.missing_retry_after += 1
        return response

    def acknowledge(response: httpx.Response) -> None:
        if response.status_code == 200:
            body = response.json()
            load.acknowledged.add(body["decision_id"])
            load.learned_false += not body["learned"]

    async def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            while time.monotonic() < deadline:
                n = next(counter, None)
                if n is None:
                    return
                try:
                    decision = await post(client, "/v1/route", route_body(rng, n))
                    if decision.status_code != 200:
                        continue
                    chosen = decision.json()
                    feedback = {"decision_id": chosen["decision_id"],
                                "outcome": rng.choice(["approved", "modified", "rejected"]),
                                "quality": round(rng.uniform(2, 9), 1)}
                    if rng.random() < duplicate_rate and rng.random() < 0.5:
                        answers = await asyncio.gather(post(client, "/v1/feedback", feedback),
                                                       post(client, "/v1/feedback", feedback))
                        for answer in answers:
                            acknowledge(answer)
                        continue
                    answer = await post(client, "/v1/feedback", feedback)
                    acknowledge(answer)
                    if rng.random() < duplicate_rate:
                        acknowledge(await post(client, "/v1/feedback", feedback))
                except httpx.TransportError:
                    await asyncio.sleep(0.05)  # the service was killed: stop soon

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    load.elapsed_s = round(time.monotonic() - started, 2)
    return load


async def caught_up(url: str, within_s: float = 30.0) -> tuple[dict[str, Any], float]:
    """Poll /ready until nothing is behind; (its body, seconds it took)."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url) as client:
        while True:
            ready: dict[str, Any] = (await client.get("/ready")).json()
            waited = time.monotonic() - started
            behind = ready.get("behind_outcomes",  # older services: sequence numbers
                               ready["log_outcomes"] - ready["learned_outcomes"])
            if behind == 0 or waited > within_s:
                return ready, round(waited, 2)
            await asyncio.sleep(0.02)


class Database:
    """A fresh SQLite file or PostgreSQL database for one run."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.name = f"chaos_{uuid.uuid4().hex[:10]}"
        self.path = workdir / f"{self.name}.db"
        base = POSTGRES.rsplit("/", 1)[0]
        self.dsn = f"{base}/{self.name}"
        self.url = (f"sqlite+aiosqlite:///{self.path}" if kind == "sqlite"
                    else self.dsn.replace("postgresql://", "postgresql+asyncpg://"))

    async def create(self) -> None:
        if self.kind == "postgres":
            await admin(f'CREATE DATABASE "{self.name}"')

    async def drop(self) -> None:
        if self.kind == "postgres":
            await admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    async def logged(self) -> set[str]:
        if self.kind == "sqlite":
            import sqlite3

            with sqlite3.connect(self.path) as conn:
                return {row[0] for row in conn.execute("SELECT decision_id FROM outcomes")}
        conn = await asyncpg.connect(self.dsn)
        try:
            return {row[0] for row in await conn.fetch("SELECT decision_id FROM outcomes")}
        finally:
            await conn.close()

    async def size_mb(self) -> float:
        if self.kind == "sqlite":
            files = [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
            return round(sum(f.stat().st_size for f in files if f.exists()) / 2**20, 1)
        conn = await asyncpg.connect(self.dsn)
        try:
            size = await conn.fetchval("SELECT pg_database_size(current_database())")
        finally:
            await conn.close()
        return round(int(size) / 2**20, 1)


async def admin(sql: str, *args: object) -> None:
    conn = await asyncpg.connect(POSTGRES)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def kill_run(kind: str, workdir: Path, seconds: float, concurrency: int) -> dict[str, Any]:
    """Load with 2% duplicates, kill -9 mid-load, restart: nothing acknowledged is lost."""
    database = Database(kind, workdir)
    await database.create()
    try:
        service = Service(database.url, workdir / f"{database.name}.log")
        await service.wait_ready()
        load_task = asyncio.create_task(run_load(
            service.url, seconds=seconds, max_requests=100_000, concurrency=concurrency,
            duplicate_rate=0.02))
        await asyncio.sleep(seconds * 0.7)
        rss_before_kill = service.rss_mb()
        service.kill()
        load = await load_task
        restarted = Service(database.url, workdir / f"{database.name}.log")
        started = time.monotonic()
        await restarted.wait_ready()
        ready, _ = await caught_up(restarted.url)
        recovery_s = round(time.monotonic() - started, 2)
        logged = await database.logged()
        result = {
            "run": f"kill -9 under load, {kind}", "requests": load.requests,
            "acknowledged": len(load.acknowledged), "logged": len(logged),
            "acknowledged_not_logged": len(load.acknowledged - logged),
            "learned_after_restart": ready["learned_outcomes"],
            "logged_after_restart": ready["log_outcomes"],
            "restart_to_caught_up_s": recovery_s, "rss_mb_before_kill": rss_before_kill,
            "rss_mb_after_restart": restarted.rss_mb(), "database_mb": await database.size_mb(),
            "statuses": dict(load.statuses),
        }
        restarted.stop()
        return result
    finally:
        await database.drop()


async def outage_run(workdir: Path, outage_s: float, concurrency: int) -> dict[str, Any]:
    """Connections to the database refused for ``outage_s``, then allowed again."""
    database = Database("postgres", workdir)
    await database.create()
    log_path = workdir / f"{database.name}.log"
    try:
        service = Service(database.url, log_path)
        await service.wait_ready()
        before = await run_load(service.url, seconds=2, max_requests=10_000,
                                concurrency=concurrency, duplicate_rate=0.02)
        outage_task = asyncio.create_task(run_load(
            service.url, seconds=outage_s, max_requests=100_000, concurrency=concurrency,
            duplicate_rate=0.02, seed=1))
        await admin(f'ALTER DATABASE "{database.name}" ALLOW_CONNECTIONS false')
        await admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1", database.name)
        during = await outage_task
        await admin(f'ALTER DATABASE "{database.name}" ALLOW_CONNECTIONS true')
        started = time.monotonic()
        await service.wait_ready()
        back_s = round(time.monotonic() - started, 2)
        after = await run_load(service.url, seconds=3, max_requests=10_000,
                               concurrency=concurrency, duplicate_rate=0.02, seed=2)
        ready, _ = await caught_up(service.url)
        service.stop()
        text = log_path.read_text()
        logged = await database.logged()
        acknowledged = before.acknowledged | during.acknowledged | after.acknowledged
        return {
            "run": f"PostgreSQL refuses connections for {outage_s:.0f} s",
            "during_statuses": dict(during.statuses),
            "during_max_latency_s": round(during.max_latency_s, 2),
            "during_503_without_retry_after": during.missing_retry_after,
            "ready_again_after_s": back_s, "after_statuses": dict(after.statuses),
            "log_lines_unavailable": text.count("the event log is unavailable"),
            "log_lines_available_again": text.count("available again"),
            "log_tracebacks": text.count("Traceback"),
            "log_lines": [line[:160] for line in text.splitlines() if "available" in line],
            "acknowledged_not_logged": len(acknowledged - logged),
            "learned": ready["learned_outcomes"], "logged": ready["log_outcomes"],
        }
    finally:
        await database.drop()


async def throughput_run(workdir: Path, seconds: float, concurrency: int,
                         duplicate_rate: float) -> dict[str, Any]:
    database = Database("postgres", workdir)
    await database.create()
    try:
        service = Service(database.url, workdir / f"{database.name}.log")
        await service.wait_ready()
        await run_load(service.url, seconds=2, max_requests=2_000, concurrency=concurrency,
                       duplicate_rate=duplicate_rate, seed=9)  # warm-up
        load = await run_load(service.url, seconds=seconds, max_requests=1_000_000,
                              concurrency=concurrency, duplicate_rate=duplicate_rate)
        ready, waited = await caught_up(service.url)
        service.stop()
        return {
            "run": f"PostgreSQL, {duplicate_rate:.0%} duplicate feedback",
            "requests_per_s": round(load.requests / load.elapsed_s, 1),
            "requests": load.requests, "statuses": dict(load.statuses),
            "learned_false_share": round(load.learned_false / max(1, len(load.acknowledged)), 3),
            "learned_equals_logged_after_s": waited,
            "learned": ready["learned_outcomes"], "logged": ready["log_outcomes"],
        }
    finally:
        await database.drop()


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["kill", "outage", "throughput", "all"])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per run")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    duration = min(args.duration, 120.0)
    with tempfile.TemporaryDirectory(prefix="router-chaos-") as tmp:
        workdir = Path(tmp)
        runs: list[dict[str, Any]] = []
        if args.scenario in ("kill", "all"):
            for kind in ("sqlite", "postgres"):
                runs.append(await kill_run(kind, workdir, duration, args.concurrency))
                print(msgspec.json.encode(runs[-1]).decode(), flush=True)
        if args.scenario in ("outage", "all"):
            runs.append(await outage_run(workdir, min(duration, 20.0), args.concurrency))
            print(msgspec.json.encode(runs[-1]).decode(), flush=True)
        if args.scenario in ("throughput", "all"):
            rates: dict[float, list[float]] = {0.0: [], 0.02: []}
            for _ in range(ROUNDS):  # alternated: a shared machine's load drifts
                for rate, seen in rates.items():
                    runs.append(await throughput_run(workdir, duration, args.concurrency, rate))
                    seen.append(runs[-1]["requests_per_s"])
                    print(msgspec.json.encode(runs[-1]).decode(), flush=True)
            ratio = round(sum(rates[0.02]) / sum(rates[0.0]), 2)
            print(msgspec.json.encode({"throughput_2pct_duplicates_over_none": ratio}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
