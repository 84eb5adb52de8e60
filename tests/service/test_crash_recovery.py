"""SIGKILL in the middle of a feedback stream loses no acknowledged feedback and no learning.

Service A runs as a real process (``router serve``) and is killed with SIGKILL while a feedback
post is in flight. After a restart on the same database it must (a) hold every acknowledged
outcome and (b) give exactly the choice probabilities of a twin service B that received the
same decisions and the same logged outcomes without ever crashing.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from router.app import create_app
from tests.support import make_settings

pytestmark = pytest.mark.slow

CHECKPOINT_EVERY = 25
STEPS = 140
KILL_AT = 110
LANGUAGES = ["python", "typescript", "go", "sql", "java"]
TYPES = ["backend", "frontend", "data", "testing"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def route_body(step: int) -> dict[str, Any]:
    rng = random.Random(step)
    return {
        "request_id": f"stream-{step}",
        "task": {
            "type": rng.choice(TYPES),
            "language": rng.choice(LANGUAGES),
            "description": f"Implement feature {step} with caching and retries "
            + "and validation " * rng.randint(0, 5),
        },
        "context": {"project_id": f"p{step % 4}", "agent": "implementation"},
    }


def feedback_body(decision: dict[str, Any]) -> dict[str, Any]:
    good = decision["model"] in {"code-specialist", "frontier-large"}
    return {
        "decision_id": decision["decision_id"],
        "outcome": "approved" if good else "rejected",
        "quality": 8.5 if good else 3.0,
        "generation_time_s": 10.0 + decision["temperature"] * 5,
    }


PROBES = [route_body(10_000 + i) | {"request_id": f"probe-{i}"} for i in range(8)]


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and has not exited (a zombie awaiting its reaper has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class Service:
    """``router serve`` as a child process on a free port."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.port = _free_port()
        env = {
            **os.environ,
            "ROUTER__LEARNING__CHECKPOINT_EVERY_OUTCOMES": str(CHECKPOINT_EVERY),
            "ROUTER__LEARNING__CHECKPOINT_EVERY_S": "3600",
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "router.cli",
                "serve",
                "--port",
                str(self.port),
                "--database-url",
                f"sqlite+aiosqlite:///{db}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    async def wait_ready(self) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url) as client:
            for _ in range(300):
                if self.process.poll() is not None:
                    raise RuntimeError(f"service exited with {self.process.returncode}")
                try:
                    response = await client.get("/ready")
                    if response.status_code == 200:
                        body: dict[str, Any] = response.json()
                        return body
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("service did not become ready")

    def children(self) -> list[int]:
        pid = self.process.pid
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(child) for child in text.split()]

    def kill(self) -> None:
        """SIGKILL the service; its SQLite writer process (router/storage/writer_process.py)
        must then finish the commit it holds and exit by itself, without being signalled."""
        writers = self.children()
        assert len(writers) == 1
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        deadline = time.monotonic() + 30
        while any(_running(pid) for pid in writers):
            assert time.monotonic() < deadline, "the writer process outlived the service"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "router.db"


async def probe_probabilities(client: httpx.AsyncClient) -> list[list[float]]:
    result = []
    for body in PROBES:
        decision = (await client.post("/v1/route", json=body)).json()
        view = (await client.get(f"/v1/decisions/{decision['decision_id']}")).json()
        result.append(view["probabilities"])
    return result


async def test_sigkill_loses_no_feedback_and_no_learning(db: Path, tmp_path: Path) -> None:
    service = Service(db)
    acknowledged: list[str] = []
    try:
        await service.wait_ready()
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
            for step in range(STEPS):
                decision = (await client.post("/v1/route", json=route_body(step))).json()
                if step < KILL_AT:
                    response = await client.post("/v1/feedback", json=feedback_body(decision))
                    assert response.status_code == 200
                    acknowledged.append(decision["decision_id"])
                    continue
                # Kill while this feedback post is in flight.
                pending = asyncio.create_task(
                    client.post("/v1/feedback", json=feedback_body(decision))
                )
                await asyncio.sleep(random.Random(7).uniform(0.0, 0.004))
                service.kill()
                try:
                    response = await pending
                    if response.status_code == 200:
                        acknowledged.append(decision["decision_id"])
                except httpx.TransportError:
                    pass
                break
    finally:
        service.stop()

    # (a) every acknowledged feedback is in the log.
    with sqlite3.connect(db) as conn:
        logged = [row[0] for row in conn.execute("SELECT decision_id FROM outcomes ORDER BY seq")]
        checkpoints = conn.execute("SELECT max(last_seq) FROM checkpoints").fetchone()[0]
    assert set(acknowledged) <= set(logged)
    assert checkpoints is not None
    assert 0 < checkpoints < len(logged)

    # Twin B: the same decisions and the same logged outcomes, in order, with no crash.
    twin_settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/twin.db")
    logged_set = set(logged)
    async with AsyncTestClient(create_app(twin_settings)) as twin:
        for step in range(STEPS):
            decision = (await twin.post("/v1/route", json=route_body(step))).json()
            if decision["decision_id"] in logged_set:
                response = await twin.post("/v1/feedback", json=feedback_body(decision))
                assert response.json()["duplicate"] is False
            if step >= KILL_AT:
                break
        twin_probabilities = await probe_probabilities(twin)  # type: ignore[arg-type]

    # (b) A restarted: newest checkpoint plus the outcomes after it, equal to the twin.
    restarted = Service(db)
    try:
        ready = await restarted.wait_ready()
        assert ready["restored_checkpoint_seq"] == checkpoints
        assert ready["learned_outcomes"] == ready["log_outcomes"] == len(logged)
        async with httpx.AsyncClient(base_url=restarted.url, timeout=10) as client:
            restarted_probabilities = await probe_probabilities(client)
    finally:
        restarted.stop()
    assert restarted_probabilities == twin_probabilities
    # The probe is sensitive: an untrained policy gives other probabilities.
    assert any(len(set(p)) > 1 for p in twin_probabilities)
