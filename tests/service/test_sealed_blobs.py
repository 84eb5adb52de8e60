"""Blobs read back from the database never run code: a forged batch-model artifact or learner
checkpoint (a pickle that calls ``os.system``) is refused before it is decoded, with one logged
error, and the service keeps serving (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from router.app import create_app
from router.settings import Settings
from router.storage.database import create_engine
from router.storage.models import Checkpoint
from tests.support import evil_pickle, insert_forged_version, make_settings

TASK = {"type": "backend", "language": "python", "description": "Build a REST API with JWT auth"}
SEAL_HEADER = 4 + 32  # magic and HMAC-SHA256 tag (learners/sealed.py)
SHADOW = {"ROUTER__SHADOW__EPS__EXPLORATION": "epsilon", "ROUTER__SHADOW__EPS__EPSILON": "0.2"}


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The error lines about refused blobs, from the ``router`` loggers."""
    return [r.getMessage() for r in caplog.records if r.name.startswith("router")
            and r.levelno >= logging.ERROR and "refused" in r.getMessage()]


async def _learn(client: AsyncTestClient[Any], n: int) -> None:
    for i in range(n):
        decision = await client.post("/v1/route", json={"task": TASK, "request_id": f"r{i}"})
        assert decision.status_code == 200, decision.text
        feedback = await client.post("/v1/feedback", json={
            "decision_id": decision.json()["decision_id"], "outcome": "approved"})
        assert feedback.status_code == 200, feedback.text


async def test_a_forged_model_version_never_runs_and_the_service_keeps_serving(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "pwned-by-artifact"
    settings = make_settings(database_url, ROUTER__BATCH__POLL_INTERVAL_S="0.05")
    async with AsyncTestClient(create_app(settings)) as client:
        await insert_forged_version(settings, marker)
        await asyncio.sleep(0.6)  # about ten polls
        response = await client.post("/v1/route", json={"task": TASK})
        assert response.status_code == 200, response.text
        assert response.json()["predictions"]["source"] != "batch"
    assert not marker.exists()
    refused = refusals(caplog)
    assert len([m for m in refused if "forged" in m]) == 1, refused


def _forge(state: bytes, marker: Path, *, keep_seal: bool) -> bytes:
    """The snapshot with its outcome statistics replaced by a pickle that runs a command:
    without a seal (``keep_seal`` False), or under the original seal (one tampered part)."""
    sealed = state.startswith(b"ARS1")
    payload = state[SEAL_HEADER:] if sealed else state
    snapshot = msgspec.msgpack.decode(payload)
    snapshot["stats"] = evil_pickle(marker)
    forged = msgspec.msgpack.encode(snapshot)
    return state[:SEAL_HEADER] + forged if keep_seal and sealed else forged


@pytest.mark.parametrize("keep_seal", [False, True], ids=["unsealed", "tampered"])
async def test_forged_checkpoints_never_run_and_the_learners_fold_from_the_log(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, keep_seal: bool
) -> None:
    marker = tmp_path / "pwned-by-checkpoint"
    settings = make_settings(database_url, **SHADOW)
    async with AsyncTestClient(create_app(settings)) as client:
        await _learn(client, 4)
    engine = create_engine(settings.storage.url)
    try:
        async with engine.begin() as conn:
            rows = (await conn.execute(select(Checkpoint.id, Checkpoint.state))).all()
            assert len(rows) == 2  # the served policy's and the shadow's
            for row_id, state in rows:
                await conn.execute(update(Checkpoint).where(Checkpoint.id == row_id).values(
                    state=_forge(bytes(state), marker, keep_seal=keep_seal)))
    finally:
        await engine.dispose()
    async with AsyncTestClient(create_app(settings)) as client:
        ready = (await client.get("/ready")).json()
        assert ready["restored_checkpoint_seq"] == 0
        assert ready["learned_outcomes"] == ready["log_outcomes"] == 4
        await _learn(client, 1)
    assert not marker.exists()
    # At most one error per forged row: the shadow's is not even read once the served
    # policy folds from the start (a checkpoint ahead of the fold is never restored).
    assert 1 <= len(refusals(caplog)) <= 2, refusals(caplog)


async def test_checkpoints_sealed_with_a_previous_secret_restore_while_it_is_listed(
    database_url: str,
) -> None:
    def settings(**environ: str) -> Settings:
        return make_settings(database_url, **environ)

    async with AsyncTestClient(create_app(settings(ROUTER__SECURITY__SECRET="first-secret"))
                               ) as client:
        await _learn(client, 3)
    rotated = settings(ROUTER__SECURITY__SECRET="second-secret",
                       ROUTER__SECURITY__PREVIOUS_SECRETS='["first-secret"]')
    async with AsyncTestClient(create_app(rotated)) as client:
        assert (await client.get("/ready")).json()["restored_checkpoint_seq"] == 3
    forgotten = settings(ROUTER__SECURITY__SECRET="third-secret")
    async with AsyncTestClient(create_app(forgotten)) as client:
        ready = (await client.get("/ready")).json()
        assert ready["restored_checkpoint_seq"] == 0
        assert ready["learned_outcomes"] == 3
