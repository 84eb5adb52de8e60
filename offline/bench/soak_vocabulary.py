"""Soak ``router serve`` (SQLite) with mixed route and feedback traffic, bounded or open vocabulary.

Starts the service on 127.0.0.1 with a fresh SQLite file, then keeps ``--connections`` HTTP/1.1
keep-alive connections busy: each routes a request and posts its feedback, until ``--requests``
requests (routes plus feedbacks) or ``--max-seconds`` have passed. ``--vocabulary bounded``
draws ``task.type`` and ``context.project_id`` from a dozen values; ``--vocabulary unique``
makes both new on every request (the open-vocabulary attack). Prints the service's RSS after
the warm-up (``--warmup`` requests) and at the end, route latency p50/p99 after the warm-up, the
newest checkpoint's size and the database size::

    python -m offline.bench.soak_vocabulary --vocabulary unique --requests 400000

Traffic goes to 127.0.0.1 only; the service and its database are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

TASK_TYPES = ("backend", "frontend", "data", "infra", "testing", "docs")
LANGUAGES = ("python", "typescript", "go", "java")
PROJECTS = tuple(f"project-{i}" for i in range(12))
DESCRIPTION = "Build a REST API endpoint with JWT auth, pagination and a database migration"


class Decision(msgspec.Struct):
    decision_id: str


def route_body(rng: random.Random, n: int, unique: bool) -> bytes:
    task_type = f"type-{n}" if unique else rng.choice(TASK_TYPES)
    project = f"project-{n}" if unique else rng.choice(PROJECTS)
    return msgspec.json.encode({
        "task": {"type": task_type, "language": rng.choice(LANGUAGES),
                 "description": DESCRIPTION},
        "context": {"project_id": project, "agent": "implementation"},
    })


def feedback_body(rng: random.Random, decision_id: str) -> bytes:
    outcome = rng.choice(("approved", "approved", "modified", "rejected"))
    return msgspec.json.encode({"decision_id": decision_id, "outcome": outcome,
                                "quality": round(rng.uniform(3, 10), 1),
                                "generation_time_s": round(rng.uniform(3, 40), 1)})


async def post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str,
               body: bytes) -> tuple[int, bytes]:
    writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` and its children (the SQLite writer process)."""
    total = 0
    for p in [pid, *children(pid)]:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


class Soak:
    def __init__(self, args: argparse.Namespace, port: int, pid: int) -> None:
        self.args = args
        self.port = port
        self.pid = pid
        self.sent = 0
        self.errors = 0
        self.latencies: list[float] = []
        self.rss_warm: float | None = None
        self.deadline = time.monotonic() + args.max_seconds

    async def connection(self, seed: int) -> None:
        rng = random.Random(seed)
        unique = self.args.vocabulary == "unique"
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            while self.sent < self.args.requests and time.monotonic() < self.deadline:
                n = self.sent
                self.sent += 2
                started = time.perf_counter()
                status, body = await post(reader, writer, "/v1/route", route_body(rng, n, unique))
                if n >= self.args.warmup:
                    self.latencies.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    self.errors += 1
                    continue
                decision = msgspec.json.decode(body, type=Decision)
                status, _ = await post(reader, writer, "/v1/feedback",
                                       feedback_body(rng, decision.decision_id))
                self.errors += status != 200
                if self.rss_warm is None and self.sent >= self.args.warmup:
                    self.rss_warm = rss_mb(self.pid)
                if n % 20_000 == 0:
                    print(f"  {n} requests, RSS {rss_mb(self.pid):.0f} MB", flush=True)
        finally:
            writer.close()

    async def run(self) -> float:
        started = time.monotonic()
        await asyncio.gather(*(self.connection(i) for i in range(self.args.connections)))
        return time.monotonic() - started


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"router serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("router serve did not become ready")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocabulary", choices=("bounded", "unique"), default="unique")
    parser.add_argument("--requests", type=int, default=400_000)
    parser.add_argument("--warmup", type=int, default=None,
                        help="requests before the first RSS reading (default: a tenth)")
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--port", type=int, default=18731)
    args = parser.parse_args()
    args.warmup = args.requests // 10 if args.warmup is None else args.warmup
    with tempfile.TemporaryDirectory(prefix="router-soak-") as tmp:
        db = Path(tmp) / "router.db"
        env = {**os.environ, "ROUTER__SERVER__LOG_LEVEL": "warning"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "router.cli", "serve", "--host", "127.0.0.1",
             "--port", str(args.port), "--database-url", f"sqlite+aiosqlite:///{db}"],
            env=env,
        )
        try:
            wait_ready(args.port, proc)
            print(f"RSS at start {rss_mb(proc.pid):.0f} MB", flush=True)
            soak = Soak(args, args.port, proc.pid)
            elapsed = asyncio.run(soak.run())
            rss_end = rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
        with sqlite3.connect(db) as conn:
            checkpoint = conn.execute(
                "SELECT length(state), last_seq FROM checkpoints ORDER BY last_seq DESC LIMIT 1"
            ).fetchone()
        db_mb = sum(p.stat().st_size for p in Path(tmp).glob("router.db*")) / 1e6
    warm = soak.rss_warm or float("nan")
    print(f"vocabulary {args.vocabulary}: {soak.sent} requests in {elapsed:.0f} s "
          f"({soak.sent / elapsed:.0f}/s), {soak.errors} errors")
    print(f"RSS after warm-up ({args.warmup} requests) {warm:.0f} MB, at the end {rss_end:.0f} MB "
          f"({(rss_end / warm - 1) * 100:+.1f}%)")
    print(f"route latency after warm-up: p50 {percentile(soak.latencies, 0.5):.1f} ms, "
          f"p99 {percentile(soak.latencies, 0.99):.1f} ms")
    if checkpoint is not None:
        print(f"newest checkpoint {checkpoint[0] / 1e6:.2f} MB at outcome {checkpoint[1]}")
    print(f"database {db_mb:.0f} MB")


if __name__ == "__main__":
    main()
