"""``router models reseal``: artifacts sealed with a previous server secret are sealed again
with the current one (so the previous secret can be dropped); forged ones are left refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from learners.sealed import Keyring, SealError
from router.cli import main
from router.storage.database import create_engine, migrate
from router.storage.registry import CANDIDATE, ModelRegistry, NewVersion

PAYLOAD = b"an artifact's msgpack envelope"


async def _registry_with(url: str, artifacts: dict[str, bytes]) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
        now = datetime.now(UTC)
        for version, artifact in artifacts.items():
            await ModelRegistry(engine).add(NewVersion(
                version=version, status=CANDIDATE, data_from=now, data_to=now,
                holdout_from=now, n_train=1, n_holdout=1, feature_spec_hash="x", metrics={},
                gate=None, artifact=artifact, model_card="-\n"))
    finally:
        await engine.dispose()


async def _artifact(url: str, version: str) -> bytes:
    engine = create_engine(url)
    try:
        return await ModelRegistry(engine).artifact(version)
    finally:
        await engine.dispose()


def test_reseal_moves_artifacts_to_the_current_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/router.db"
    asyncio.run(_registry_with(url, {"old": Keyring(b"old-secret").seal(PAYLOAD),
                                     "forged": PAYLOAD}))
    monkeypatch.setenv("ROUTER__SECURITY__SECRET", "new-secret")
    monkeypatch.setenv("ROUTER__SECURITY__PREVIOUS_SECRETS", '["old-secret"]')
    assert main(["models", "reseal", "--database-url", url]) == 1  # one refused
    assert Keyring(b"new-secret").unseal(asyncio.run(_artifact(url, "old"))) == PAYLOAD
    with pytest.raises(SealError):
        Keyring(b"new-secret", [b"old-secret"]).unseal(asyncio.run(_artifact(url, "forged")))
